//! The retrieval gallery: for a sample of queries, the query, each model's top references (the
//! true copy framed in green) and the true copy itself, in one PNG.

use std::collections::HashMap;
use std::path::Path;

use image::{Rgb, RgbImage, imageops};

use super::{ReportError, Result};
use crate::benchmark::BenchmarkResult;
use crate::dataset::EvalSet;
use crate::generate::font::{draw_text, text_width};

/// How the gallery is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GalleryOptions {
    /// Queries shown (those with a copy, evenly spaced through the list).
    pub queries: usize,
    /// References shown per model.
    pub top: usize,
    /// Side of a thumbnail in pixels.
    pub thumb: u32,
}

impl Default for GalleryOptions {
    fn default() -> Self {
        Self {
            queries: 8,
            top: 5,
            thumb: 120,
        }
    }
}

const PAD: u32 = 8;
const GAP: u32 = 24;
const TEXT: u32 = 2; // font scale: 10-pixel-high characters
const LABEL_H: u32 = 14;
const HEADER_H: u32 = 30;
const BG: [u8; 3] = [245, 245, 245];
const GREEN: [u8; 3] = [0, 170, 60];
const RED: [u8; 3] = [200, 30, 30];
const GREY: [u8; 3] = [150, 150, 150];
const INK: [u8; 3] = [20, 20, 20];

fn frame(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, width: u32, colour: [u8; 3]) {
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            let border =
                xx < x + width || yy < y + width || xx + width >= x + w || yy + width >= y + h;
            if border {
                img.put_pixel(xx, yy, Rgb(colour));
            }
        }
    }
}

/// Pastes `path` fitted into a `side × side` box at `(x, y)`; a grey cross when unreadable.
fn paste_thumb(canvas: &mut RgbImage, path: Option<&Path>, x: u32, y: u32, side: u32) {
    let loaded = path.and_then(|p| image::open(p).ok()).map(|i| i.to_rgb8());
    match loaded {
        Some(img) => {
            let scale = (side as f32 / img.width() as f32).min(side as f32 / img.height() as f32);
            let w = ((img.width() as f32 * scale) as u32).clamp(1, side);
            let h = ((img.height() as f32 * scale) as u32).clamp(1, side);
            let small = imageops::thumbnail(&img, w, h);
            imageops::replace(
                canvas,
                &small,
                i64::from(x + (side - w) / 2),
                i64::from(y + (side - h) / 2),
            );
        }
        None => {
            for i in 0..side {
                for (xx, yy) in [(x + i, y + i), (x + side - 1 - i, y + i)] {
                    canvas.put_pixel(xx, yy, Rgb(GREY));
                }
            }
        }
    }
}

fn label(canvas: &mut RgbImage, text: &str, x: u32, y: u32, max_w: u32, colour: [u8; 3]) {
    let w = text_width(text, TEXT);
    let x = x + max_w.saturating_sub(w) / 2;
    draw_text(canvas, text, i64::from(x), i64::from(y), TEXT, colour);
}

/// Draws the gallery of `result` into `path` (PNG).
pub fn write_gallery(
    path: &Path,
    set: &EvalSet,
    result: &BenchmarkResult,
    options: &GalleryOptions,
) -> Result<()> {
    let with_copy: Vec<usize> = set
        .queries
        .iter()
        .enumerate()
        .filter(|(_, q)| !set.ground_truth.references_of(&q.id).is_empty())
        .map(|(i, _)| i)
        .collect();
    let n = options.queries.min(with_copy.len());
    let sample: Vec<usize> = (0..n)
        .map(|i| with_copy[i * with_copy.len() / n.max(1)])
        .collect();
    let refs: HashMap<&str, &Path> = set
        .references
        .iter()
        .map(|e| (e.id.as_str(), e.path.as_path()))
        .collect();

    let t = options.thumb;
    let cell_h = t + LABEL_H * 2 + PAD;
    let block_w = options.top as u32 * (t + PAD);
    let n_models = result.models.len() as u32;
    let width = PAD + (t + PAD) + GAP + n_models * (block_w + GAP) + (t + PAD) + PAD;
    let height = HEADER_H + sample.len().max(1) as u32 * cell_h + PAD;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb(BG));

    // Column headers.
    let mut x = PAD;
    label(&mut canvas, "QUERY", x, 8, t, INK);
    x += t + PAD + GAP;
    for m in &result.models {
        // The font has letters and digits only.
        let head = format!("{} TOP {}", m.label().replace(['(', ')'], ""), options.top);
        label(&mut canvas, &head, x, 8, block_w, INK);
        x += block_w + GAP;
    }
    label(&mut canvas, "TRUE COPY", x, 8, t, INK);

    for (row, &qi) in sample.iter().enumerate() {
        let q = &set.queries[qi];
        let truth = set.ground_truth.references_of(&q.id);
        let y = HEADER_H + row as u32 * cell_h;
        let mut x = PAD;
        paste_thumb(&mut canvas, Some(&q.path), x, y, t);
        label(&mut canvas, &q.id, x, y + t + 3, t, INK);
        x += t + PAD + GAP;
        for m in &result.models {
            let ranked = m.ranked.get(qi).map(Vec::as_slice).unwrap_or(&[]);
            for (j, (rid, score)) in ranked.iter().take(options.top).enumerate() {
                let cx = x + j as u32 * (t + PAD);
                paste_thumb(&mut canvas, refs.get(rid.as_str()).copied(), cx, y, t);
                let hit = truth.iter().any(|r| r == rid);
                if hit {
                    frame(&mut canvas, cx, y, t, t, 5, GREEN);
                }
                label(
                    &mut canvas,
                    rid,
                    cx,
                    y + t + 3,
                    t,
                    if hit { GREEN } else { INK },
                );
                label(
                    &mut canvas,
                    &format!("{score:.3}"),
                    cx,
                    y + t + 3 + LABEL_H,
                    t,
                    GREY,
                );
            }
            let found = ranked
                .iter()
                .take(options.top)
                .any(|(r, _)| truth.contains(r));
            if !found {
                // A red bar under the block: the true copy is not among these.
                for yy in y + t + 2 * LABEL_H..y + t + 2 * LABEL_H + 3 {
                    for xx in x..x + block_w - PAD {
                        if yy < canvas.height() {
                            canvas.put_pixel(xx, yy, Rgb(RED));
                        }
                    }
                }
            }
            x += block_w + GAP;
        }
        if let Some(tid) = truth.first() {
            paste_thumb(&mut canvas, refs.get(tid.as_str()).copied(), x, y, t);
            frame(&mut canvas, x, y, t, t, 5, GREEN);
            label(&mut canvas, tid, x, y + t + 3, t, GREEN);
        }
    }
    canvas.save(path).map_err(|e| ReportError::Draw {
        what: "gallery.png",
        message: e.to_string(),
    })
}
