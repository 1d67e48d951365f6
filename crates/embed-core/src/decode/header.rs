//! The size an image's header claims, read from its first bytes without decoding anything.
//!
//! Decoders refuse some pictures too large for them before saying how large they are (the
//! `image` crate's BMP decoder past 65,535 pixels a side, for one); this lets the error name
//! the size anyway. It is consulted only once a decoder has failed, so a header it misreads
//! can change an error's wording, never refuse a picture that decodes.

use super::ImageFormat;

/// `(width, height)` as the header of an image in `format` claims it, `None` where the header
/// is cut short or laid out otherwise than this reads (JPEG: libjpeg-turbo reads it).
pub(super) fn claimed_size(format: ImageFormat, bytes: &[u8]) -> Option<(u64, u64)> {
    let b = Bytes(bytes);
    match format {
        ImageFormat::Png => {
            // The signature, the IHDR chunk's length, its type, then width and height.
            (bytes.get(12..16)? == b"IHDR").then_some(())?;
            Some((b.u32_be(16)?.into(), b.u32_be(20)?.into()))
        }
        // The logical screen, which is what is decoded (the first frame drawn on it).
        ImageFormat::Gif => Some((b.u16_le(6)?.into(), b.u16_le(8)?.into())),
        ImageFormat::Bmp => match b.u32_le(14)? {
            // BITMAPCOREHEADER: unsigned 16-bit sides.
            12 => Some((b.u16_le(18)?.into(), b.u16_le(20)?.into())),
            // BITMAPINFOHEADER and its successors: signed 32-bit sides, a negative height for
            // rows stored top down.
            16.. => {
                let width = u64::try_from(b.i32_le(18)?).ok()?;
                Some((width, b.i32_le(22)?.unsigned_abs().into()))
            }
            _ => None,
        },
        ImageFormat::WebP => webp(b),
        ImageFormat::Tiff => tiff(bytes),
        ImageFormat::Jpeg => None,
    }
}

/// The canvas of a WebP: its first chunk's (`VP8X` extended, `VP8L` lossless or `VP8 ` lossy).
fn webp(b: Bytes<'_>) -> Option<(u64, u64)> {
    match b.0.get(12..16)? {
        b"VP8X" => Some((u64::from(b.u24_le(24)?) + 1, u64::from(b.u24_le(27)?) + 1)),
        b"VP8L" => {
            (*b.0.get(20)? == 0x2f).then_some(())?;
            let bits = b.u32_le(21)?;
            Some((
                u64::from(bits & 0x3fff) + 1,
                u64::from((bits >> 14) & 0x3fff) + 1,
            ))
        }
        b"VP8 " => {
            // A 3-byte frame tag, the start code, then 14-bit sides (2 bits of scaling above).
            (b.0.get(23..26)? == [0x9d, 0x01, 0x2a]).then_some(())?;
            Some((
                u64::from(b.u16_le(26)? & 0x3fff),
                u64::from(b.u16_le(28)? & 0x3fff),
            ))
        }
        _ => None,
    }
}

/// ImageWidth (256) and ImageLength (257) of a classic TIFF's first IFD, SHORT or LONG.
fn tiff(bytes: &[u8]) -> Option<(u64, u64)> {
    let big_endian = match bytes.get(..4)? {
        [b'I', b'I', 42, 0] => false,
        [b'M', b'M', 0, 42] => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let v: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let v: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let (mut width, mut height) = (None, None);
    for i in 0..usize::from(u16_at(ifd)?) {
        let entry = ifd + 2 + 12 * i;
        let value = match u16_at(entry + 2)? {
            3 => u64::from(u16_at(entry + 8)?),
            4 => u64::from(u32_at(entry + 8)?),
            _ => continue,
        };
        match u16_at(entry)? {
            256 => width = Some(value),
            257 => height = Some(value),
            _ => {}
        }
    }
    Some((width?, height?))
}

/// Fixed-width integers at byte offsets, `None` past the end.
#[derive(Clone, Copy)]
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn array<const N: usize>(self, at: usize) -> Option<[u8; N]> {
        self.0.get(at..at + N)?.try_into().ok()
    }
    fn u16_le(self, at: usize) -> Option<u16> {
        self.array(at).map(u16::from_le_bytes)
    }
    fn u24_le(self, at: usize) -> Option<u32> {
        let [a, b, c] = self.array(at)?;
        Some(u32::from_le_bytes([a, b, c, 0]))
    }
    fn u32_le(self, at: usize) -> Option<u32> {
        self.array(at).map(u32::from_le_bytes)
    }
    fn i32_le(self, at: usize) -> Option<i32> {
        self.array(at).map(i32::from_le_bytes)
    }
    fn u32_be(self, at: usize) -> Option<u32> {
        self.array(at).map(u32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_size_reads_what_encoders_write() {
        let img = image::RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8, y as u8, 9]));
        for (format, ours) in [
            (image::ImageFormat::Png, ImageFormat::Png),
            (image::ImageFormat::Gif, ImageFormat::Gif),
            (image::ImageFormat::WebP, ImageFormat::WebP),
            (image::ImageFormat::Bmp, ImageFormat::Bmp),
            (image::ImageFormat::Tiff, ImageFormat::Tiff),
        ] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, format).unwrap();
            let bytes = bytes.into_inner();
            assert_eq!(ImageFormat::sniff(&bytes), Some(ours));
            assert_eq!(claimed_size(ours, &bytes), Some((7, 5)), "{format:?}");
            assert_eq!(
                claimed_size(ours, &bytes[..8]),
                None,
                "{format:?} cut short"
            );
        }
    }

    #[test]
    fn claimed_size_of_other_layouts() {
        // Lossy WebP: frame tag, start code, 14-bit sides under 2 bits of scaling.
        let mut vp8 = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\x10\x02\0\x9d\x01\x2a".to_vec();
        vp8.extend_from_slice(&(0xC000u16 | 640).to_le_bytes());
        vp8.extend_from_slice(&480u16.to_le_bytes());
        assert_eq!(claimed_size(ImageFormat::WebP, &vp8), Some((640, 480)));
        // Big-endian TIFF, width a SHORT and height a LONG.
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x02".to_vec();
        tiff.extend_from_slice(&[1, 0, 0, 3, 0, 0, 0, 1, 0x01, 0x2c, 0, 0]);
        tiff.extend_from_slice(&[1, 1, 0, 4, 0, 0, 0, 1, 0, 1, 0x86, 0xa0]);
        assert_eq!(claimed_size(ImageFormat::Tiff, &tiff), Some((300, 100_000)));
        // A top-down BMP (negative height).
        let mut bmp = vec![0u8; 26];
        bmp[..2].copy_from_slice(b"BM");
        bmp[14..18].copy_from_slice(&40u32.to_le_bytes());
        bmp[18..22].copy_from_slice(&20i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&(-30i32).to_le_bytes());
        assert_eq!(claimed_size(ImageFormat::Bmp, &bmp), Some((20, 30)));
        assert_eq!(claimed_size(ImageFormat::Jpeg, &[0xFF, 0xD8, 0xFF]), None);
    }
}
