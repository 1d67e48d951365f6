//! The edits that turn a reference into a query: the kinds of copies DISC21 contains.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::Rng;
use rand::seq::SliceRandom;

use super::{draw, font};

/// One edit applied to a reference to make a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Keep a random 50–90 % window.
    Crop,
    /// Resize by 0.4–1.5, possibly changing the aspect ratio.
    Rescale,
    /// Rotate by a right angle or by up to ±30°.
    Rotate,
    /// Mirror horizontally or vertically.
    Flip,
    /// Hue rotation, brightness, contrast, greyscale or channel swap.
    Colour,
    /// Gaussian blur, σ 1–4.
    Blur,
    /// Re-encode as JPEG at quality 8–40.
    Jpeg,
    /// Overlay a caption.
    Text,
    /// Overlay shapes.
    Shapes,
    /// Paste the (shrunken) image into another picture.
    Paste,
}

impl Transform {
    /// Every transform.
    pub const ALL: [Transform; 10] = [
        Transform::Crop,
        Transform::Rescale,
        Transform::Rotate,
        Transform::Flip,
        Transform::Colour,
        Transform::Blur,
        Transform::Jpeg,
        Transform::Text,
        Transform::Shapes,
        Transform::Paste,
    ];
}

/// Picks 1–3 distinct transforms in random order.
pub(crate) fn pick(rng: &mut impl Rng) -> Vec<Transform> {
    let n = rng.gen_range(1..=3);
    let mut all = Transform::ALL.to_vec();
    all.shuffle(rng);
    all.truncate(n);
    all
}

const WORDS: &[&str] = &[
    "LOL", "COPY", "MEME", "SALE", "2021", "WOW", "TOP 10", "NEWS", "FAKE", "DISC", "HI MOM",
    "BEST",
];

/// Applies one transform.
pub(crate) fn apply(t: Transform, img: RgbImage, rng: &mut impl Rng) -> RgbImage {
    let (w, h) = img.dimensions();
    match t {
        Transform::Crop => {
            let cw = ((w as f32 * rng.gen_range(0.5f32..0.9)) as u32)
                .max(16)
                .min(w);
            let ch = ((h as f32 * rng.gen_range(0.5f32..0.9)) as u32)
                .max(16)
                .min(h);
            let x = rng.gen_range(0..=w - cw);
            let y = rng.gen_range(0..=h - ch);
            imageops::crop_imm(&img, x, y, cw, ch).to_image()
        }
        Transform::Rescale => {
            let sx = rng.gen_range(0.4f32..1.5);
            let sy = if rng.gen_bool(0.5) {
                sx
            } else {
                sx * rng.gen_range(0.75f32..1.33)
            };
            let nw = ((w as f32 * sx) as u32).clamp(24, 1024);
            let nh = ((h as f32 * sy) as u32).clamp(24, 1024);
            imageops::resize(&img, nw, nh, FilterType::Triangle)
        }
        Transform::Rotate => match rng.gen_range(0..4) {
            0 => imageops::rotate90(&img),
            1 => imageops::rotate180(&img),
            2 => imageops::rotate270(&img),
            _ => {
                let deg = rng.gen_range(5.0f32..30.0) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                rotate(&img, deg.to_radians(), draw::random_colour(rng))
            }
        },
        Transform::Flip => {
            if rng.gen_bool(0.7) {
                imageops::flip_horizontal(&img)
            } else {
                imageops::flip_vertical(&img)
            }
        }
        Transform::Colour => match rng.gen_range(0..5) {
            0 => imageops::huerotate(&img, rng.gen_range(40..320)),
            1 => imageops::brighten(
                &img,
                rng.gen_range(25..70) * if rng.gen_bool(0.5) { 1 } else { -1 },
            ),
            2 => imageops::contrast(&img, rng.gen_range(-60.0f32..60.0)),
            3 => {
                let grey = imageops::grayscale(&img);
                RgbImage::from_fn(w, h, |x, y| {
                    let v = grey.get_pixel(x, y).0[0];
                    Rgb([v, v, v])
                })
            }
            _ => {
                let mut out = img;
                for p in out.pixels_mut() {
                    p.0 = [p.0[2], p.0[0], p.0[1]];
                }
                out
            }
        },
        Transform::Blur => imageops::blur(&img, rng.gen_range(1.0f32..4.0)),
        Transform::Jpeg => {
            let quality = rng.gen_range(8..=40u8);
            reencode(&img, quality).unwrap_or(img)
        }
        Transform::Text => {
            let mut out = img;
            let word = WORDS[rng.gen_range(0..WORDS.len())];
            let max_scale = (w / font::text_width(word, 1).max(1)).clamp(1, 8);
            let scale = rng.gen_range(1..=max_scale).max(2.min(max_scale));
            let tw = font::text_width(word, scale);
            let x = rng.gen_range(0..=w.saturating_sub(tw).max(1)) as i64;
            let y = rng.gen_range(0..=h.saturating_sub(5 * scale).max(1)) as i64;
            let colour = if rng.gen_bool(0.5) {
                [255, 255, 255]
            } else {
                draw::random_colour(rng)
            };
            // A dark outline keeps white text readable, as meme captions do.
            for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                font::draw_text(&mut out, word, x + dx, y + dy, scale, [0, 0, 0]);
            }
            font::draw_text(&mut out, word, x, y, scale, colour);
            out
        }
        Transform::Shapes => {
            let mut out = img;
            for _ in 0..rng.gen_range(1..=3) {
                draw::shape(&mut out, rng);
            }
            out
        }
        Transform::Paste => {
            let bw = rng.gen_range(160..=360u32);
            let bh = rng.gen_range(160..=360u32);
            let mut canvas = draw::picture(rng, bw, bh);
            let s = rng.gen_range(0.45f32..0.85) * (bw as f32 / w as f32).min(bh as f32 / h as f32);
            let pw = ((w as f32 * s) as u32).clamp(16, bw);
            let ph = ((h as f32 * s) as u32).clamp(16, bh);
            let small = imageops::resize(&img, pw, ph, FilterType::Triangle);
            let x = rng.gen_range(0..=bw - pw);
            let y = rng.gen_range(0..=bh - ph);
            imageops::replace(&mut canvas, &small, i64::from(x), i64::from(y));
            canvas
        }
    }
}

/// Rotates about the centre by `angle` radians (bilinear), keeping the size; uncovered corners
/// get `fill`.
fn rotate(img: &RgbImage, angle: f32, fill: [u8; 3]) -> RgbImage {
    let (w, h) = img.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (c, s) = (angle.cos(), angle.sin());
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        let sx = c * dx + s * dy + cx - 0.5;
        let sy = -s * dx + c * dy + cy - 0.5;
        imageops::interpolate_bilinear(img, sx, sy).unwrap_or(Rgb(fill))
    })
}

/// Encodes as JPEG at `quality` and decodes again.
pub(crate) fn reencode(img: &RgbImage, quality: u8) -> Option<RgbImage> {
    let bytes = super::encode_jpeg(img, quality).ok()?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .ok()
        .map(|d| d.to_rgb8())
}
