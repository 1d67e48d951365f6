//! Photo-like noise: large synthetic pictures with detail at every scale, for measuring
//! decoding and resizing of camera-sized JPEGs (`image-sim bench --photo-size`).

use image::{Rgb, RgbImage};
use rand::Rng;

/// A `w × h` image of noise at every scale: a pyramid built from the coarsest level down, each
/// level the one above upscaled 2× (bilinear) plus fresh noise of the same amplitude, so every
/// octave from 2 px to the whole image carries about the same energy (photographs' amplitude
/// spectrum falls roughly as 1/f); scaled to a spread of 50 levels around mid-grey. About 4
/// bits per pixel at JPEG quality 90: the detailed end of camera JPEGs.
pub fn photo_like(rng: &mut impl Rng, w: u32, h: u32) -> RgbImage {
    let mut sizes = vec![(w as usize, h as usize)];
    while let Some(&(lw, lh)) = sizes.last().filter(|&&(lw, lh)| lw.max(lh) > 2) {
        sizes.push((lw.div_ceil(2), lh.div_ceil(2)));
    }
    // Interleaved RGB f32 levels.
    let mut level: Vec<f32> = Vec::new();
    let mut prev = (0, 0);
    for (k, &(lw, lh)) in sizes.iter().enumerate().rev() {
        let mut next = if level.is_empty() {
            vec![0f32; lw * lh * 3]
        } else {
            upscale2(&level, prev, (lw, lh))
        };
        // No noise of its own at full size: the finest detail is 2 px, as in a camera's JPEG.
        // Channels share most of it (brightness) and differ a little (colour), as in photos.
        if k > 0 {
            for px in next.chunks_exact_mut(3) {
                let luma = rng.gen_range(-1.0f32..1.0);
                for v in px {
                    *v += luma + 0.4 * rng.gen_range(-1.0f32..1.0);
                }
            }
        }
        level = next;
        prev = (lw, lh);
    }
    let n = level.len().max(1) as f64;
    let mean = level.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = level
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let gain = 50.0 / var.sqrt().max(1e-9);
    let to_u8 = |v: f32| (127.5 + (f64::from(v) - mean) * gain).clamp(0.0, 255.0) as u8;
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y as usize * w as usize + x as usize) * 3;
        Rgb([to_u8(level[i]), to_u8(level[i + 1]), to_u8(level[i + 2])])
    })
}

/// Bilinear upscale of an interleaved RGB `f32` image from `(pw, ph)` to `(w, h)`, about 2×
/// (pixel centres aligned, edges clamped).
fn upscale2(src: &[f32], (pw, ph): (usize, usize), (w, h): (usize, usize)) -> Vec<f32> {
    let taps = |out: usize, inp: usize| -> Vec<(usize, usize, f32)> {
        (0..out)
            .map(|x| {
                let pos = ((x as f32 + 0.5) * inp as f32 / out as f32 - 0.5).max(0.0);
                let i0 = (pos as usize).min(inp - 1);
                let i1 = (i0 + 1).min(inp - 1);
                (i0, i1, pos - i0 as f32)
            })
            .collect()
    };
    let (tx, ty) = (taps(w, pw), taps(h, ph));
    let mut out = vec![0f32; w * h * 3];
    for (y, &(y0, y1, fy)) in ty.iter().enumerate() {
        for (x, &(x0, x1, fx)) in tx.iter().enumerate() {
            for c in 0..3 {
                let at = |xx: usize, yy: usize| src[(yy * pw + xx) * 3 + c];
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                out[(y * w + x) * 3 + c] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn photo_like_has_the_size_spread_and_detail_at_every_scale() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let img = photo_like(&mut rng, 301, 200);
        assert_eq!(img.dimensions(), (301, 200));
        let luma: Vec<f64> = img
            .pixels()
            .map(|p| p.0.iter().map(|&v| f64::from(v)).sum::<f64>() / 3.0)
            .collect();
        let mean = luma.iter().sum::<f64>() / luma.len() as f64;
        let sd = (luma.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / luma.len() as f64).sqrt();
        assert!(
            (110.0..145.0).contains(&mean) && sd > 25.0,
            "mean {mean} sd {sd}"
        );
        // Energy both in fine detail (neighbouring pixels differ) and at large scale (the
        // image's quarters have different means).
        let fine = luma.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / luma.len() as f64;
        assert!(fine > 2.0, "fine detail {fine}");
        let quarter = |x0: u32, y0: u32| {
            let mut s = 0.0;
            for y in y0..y0 + 100 {
                for x in x0..x0 + 150 {
                    s += luma[(y * 301 + x) as usize];
                }
            }
            s / 15_000.0
        };
        let q = [
            quarter(0, 0),
            quarter(150, 0),
            quarter(0, 100),
            quarter(150, 100),
        ];
        let spread =
            q.iter().cloned().fold(f64::MIN, f64::max) - q.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 3.0, "quarters {q:?}");
    }

    #[test]
    fn upscale2_keeps_constants_and_interpolates() {
        let src = vec![10.0f32; 3 * 3 * 2];
        assert!(
            upscale2(&src, (3, 2), (5, 4))
                .iter()
                .all(|&v| (v - 10.0).abs() < 1e-5)
        );
        // One row 0, 1 (per channel): centres of the 4 outputs fall at -0.25, 0.25, 0.75, 1.25.
        let ramp = [0.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
        let up = upscale2(&ramp, (2, 1), (4, 1));
        let red: Vec<f32> = up.chunks(3).map(|p| p[0]).collect();
        assert_eq!(red, vec![0.0, 0.25, 0.75, 1.0]);
    }
}
