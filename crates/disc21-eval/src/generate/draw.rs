//! Procedural pictures: a textured background and a handful of coloured shapes, different
//! enough from one another that the copy of one is not mistaken for another.

use image::{Rgb, RgbImage};
use rand::Rng;

/// A random saturated colour (HSV with random hue).
pub(crate) fn random_colour(rng: &mut impl Rng) -> [u8; 3] {
    let h = rng.gen_range(0.0f32..6.0);
    let s = rng.gen_range(0.3f32..1.0);
    let v = rng.gen_range(0.25f32..1.0);
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let to8 = |f: f32| ((f + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [to8(r), to8(g), to8(b)]
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let f = |x: u8, y: u8| (f32::from(x) * (1.0 - t) + f32::from(y) * t).round() as u8;
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2])]
}

fn blend(img: &mut RgbImage, x: u32, y: u32, colour: [u8; 3], alpha: f32) {
    let p = img.get_pixel(x, y).0;
    img.put_pixel(x, y, Rgb(mix(p, colour, alpha)));
}

/// Fills `width × height` with one of several backgrounds.
fn background(rng: &mut impl Rng, width: u32, height: u32) -> RgbImage {
    let (a, b) = (random_colour(rng), random_colour(rng));
    let (w, h) = (width as f32, height as f32);
    match rng.gen_range(0..5) {
        0 => {
            // Linear gradient at a random angle.
            let angle = rng.gen_range(0.0f32..std::f32::consts::TAU);
            let (dx, dy) = (angle.cos(), angle.sin());
            let span = w * dx.abs() + h * dy.abs();
            RgbImage::from_fn(width, height, |x, y| {
                let t = ((x as f32 - w / 2.0) * dx + (y as f32 - h / 2.0) * dy) / span + 0.5;
                Rgb(mix(a, b, t))
            })
        }
        1 => {
            // Stripes.
            let period = rng.gen_range(6.0f32..40.0);
            let angle = rng.gen_range(0.0f32..std::f32::consts::PI);
            let (dx, dy) = (angle.cos(), angle.sin());
            RgbImage::from_fn(width, height, |x, y| {
                let t = (x as f32 * dx + y as f32 * dy) / period;
                Rgb(if t.rem_euclid(1.0) < 0.5 { a } else { b })
            })
        }
        2 => {
            // Checkerboard.
            let cell = rng.gen_range(8..48u32);
            RgbImage::from_fn(width, height, |x, y| {
                Rgb(if (x / cell + y / cell) % 2 == 0 { a } else { b })
            })
        }
        3 => {
            // Smooth value noise: a coarse random grid, bilinearly interpolated.
            let g = rng.gen_range(3..9usize);
            let grid: Vec<f32> = (0..(g + 1) * (g + 1))
                .map(|_| rng.gen_range(0.0f32..1.0))
                .collect();
            RgbImage::from_fn(width, height, |x, y| {
                let fx = x as f32 / w * g as f32;
                let fy = y as f32 / h * g as f32;
                let (ix, iy) = ((fx as usize).min(g - 1), (fy as usize).min(g - 1));
                let (tx, ty) = (fx - ix as f32, fy - iy as f32);
                let at = |i: usize, j: usize| grid[j * (g + 1) + i];
                let top = at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx;
                let bottom = at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx;
                Rgb(mix(a, b, top * (1.0 - ty) + bottom * ty))
            })
        }
        _ => {
            // Radial gradient around a random centre.
            let (cx, cy) = (rng.gen_range(0.0..w), rng.gen_range(0.0..h));
            let r = (w * w + h * h).sqrt() * rng.gen_range(0.3f32..0.8);
            RgbImage::from_fn(width, height, |x, y| {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                Rgb(mix(a, b, d / r))
            })
        }
    }
}

/// Draws one random shape.
pub(crate) fn shape(img: &mut RgbImage, rng: &mut impl Rng) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let colour = random_colour(rng);
    let alpha = rng.gen_range(0.6f32..1.0);
    let size = w.min(h) * rng.gen_range(0.08f32..0.4);
    let (cx, cy) = (rng.gen_range(0.0..w), rng.gen_range(0.0..h));
    let kind = rng.gen_range(0..5);
    // Triangle vertices (used by kind 3).
    let tri: Vec<(f32, f32)> = (0..3)
        .map(|_| {
            (
                cx + rng.gen_range(-size..size),
                cy + rng.gen_range(-size..size),
            )
        })
        .collect();
    let aspect = rng.gen_range(0.4f32..2.5);
    let thickness = rng.gen_range(0.15f32..0.45);
    let angle = rng.gen_range(0.0f32..std::f32::consts::PI);
    let (ca, sa) = (angle.cos(), angle.sin());
    let x0 = (cx - 2.0 * size).max(0.0) as u32;
    let x1 = ((cx + 2.0 * size).min(w - 1.0)).max(0.0) as u32;
    let y0 = (cy - 2.0 * size).max(0.0) as u32;
    let y1 = ((cy + 2.0 * size).min(h - 1.0)).max(0.0) as u32;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (px, py) = (x as f32 - cx, y as f32 - cy);
            // Coordinates in the shape's rotated frame.
            let (u, v) = (px * ca + py * sa, -px * sa + py * ca);
            let inside = match kind {
                0 => {
                    (u / (size * aspect.sqrt())).powi(2) + (v * aspect.sqrt() / size).powi(2) <= 1.0
                }
                1 => {
                    let d = (px * px + py * py).sqrt();
                    d <= size && d >= size * (1.0 - thickness)
                }
                2 => u.abs() <= size * aspect.sqrt() && v.abs() <= size / aspect.sqrt(),
                3 => in_triangle((x as f32, y as f32), tri[0], tri[1], tri[2]),
                _ => u.abs() <= size * 1.5 && v.abs() <= size * thickness * 0.4,
            };
            if inside {
                blend(img, x, y, colour, alpha);
            }
        }
    }
}

fn in_triangle(p: (f32, f32), a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> bool {
    let sign = |p1: (f32, f32), p2: (f32, f32), p3: (f32, f32)| {
        (p1.0 - p3.0) * (p2.1 - p3.1) - (p2.0 - p3.0) * (p1.1 - p3.1)
    };
    let (d1, d2, d3) = (sign(p, a, b), sign(p, b, c), sign(p, c, a));
    let neg = d1 < 0.0 || d2 < 0.0 || d3 < 0.0;
    let pos = d1 > 0.0 || d2 > 0.0 || d3 > 0.0;
    !(neg && pos)
}

/// A complete picture: background, 3–9 shapes, and a light grain.
pub(crate) fn picture(rng: &mut impl Rng, width: u32, height: u32) -> RgbImage {
    let mut img = background(rng, width, height);
    for _ in 0..rng.gen_range(3..10) {
        shape(&mut img, rng);
    }
    let grain = rng.gen_range(0..10i16);
    if grain > 0 {
        for p in img.pixels_mut() {
            for c in &mut p.0 {
                *c = (i16::from(*c) + rng.gen_range(-grain..=grain)).clamp(0, 255) as u8;
            }
        }
    }
    img
}
