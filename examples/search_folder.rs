//! Index a folder of images, query it with an image, print the top-k with their scores and write
//! a contact sheet PNG: the query on the left, its results to the right, each with its score.
//!
//! ```text
//! cargo run --release --example search_folder -- FOLDER QUERY [--model clip|dinov2]
//!     [--weights DIR_OR_ID] [--k 5] [--sheet contact_sheet.png] [--test-model] [--force]
//! ```
//!
//! Scores are cosine similarities (embeddings are L2-normalised, the index is inner product).
//! `--test-model` uses the weightless grid-mean embedder of `disc21-eval run --test-model`, for a
//! demonstration without checkpoints.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use embed_core::{DecodeOptions, PreprocessSpec, decode_file};
use embed_pipeline::test_model::GridMeanEmbedder;
use embed_pipeline::{ExtractOptions, Model, extract, list_images};
use image::{Rgb, RgbImage, imageops};
use image_sim::ModelKind;
use image_sim::models::{LoadedModel, ModelOptions, load};
use vecindex::{FlatIndex, Metric, VectorIndex};

/// Index a folder, search it with one image, write a contact sheet.
#[derive(Parser)]
struct Args {
    /// Folder of images to index.
    folder: PathBuf,
    /// The query image.
    query: PathBuf,
    /// Model family.
    #[arg(long, default_value = "dinov2", value_parser = |s: &str| s.parse::<ModelKind>())]
    model: ModelKind,
    /// Checkpoint folder or Hugging Face id (default: the study's checkpoint of the family).
    #[arg(long)]
    weights: Option<String>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default).
    #[arg(long)]
    device: Option<String>,
    /// Results shown.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Contact sheet to write.
    #[arg(long, default_value = "contact_sheet.png")]
    sheet: PathBuf,
    /// Use a weightless grid-mean embedder instead of the model.
    #[arg(long)]
    test_model: bool,
    /// Overwrite an existing contact sheet.
    #[arg(long)]
    force: bool,
}

const THUMB: u32 = 160;
const PAD: u32 = 8;
const LABEL: u32 = 24;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.sheet.exists() && !args.force {
        bail!(
            "{} exists (use --force to overwrite it)",
            args.sheet.display()
        );
    }
    let test_model;
    let loaded: LoadedModel;
    // A libtorch model goes in as `Model::Torch`: on a GPU its batches travel as 8-bit pixels.
    let model = if args.test_model {
        let spec = match args.model {
            ModelKind::Clip => PreprocessSpec::clip(),
            ModelKind::Dinov2 => PreprocessSpec::dinov2(),
        };
        test_model = GridMeanEmbedder::new(spec, 4);
        Model::Host(&test_model)
    } else {
        let options = ModelOptions {
            weights: args.weights.clone(),
            device: args.device.clone(),
            ..ModelOptions::default()
        };
        loaded = load(args.model, &options)?;
        Model::Torch(loaded.embedder.as_ref())
    };

    // Index the folder; unreadable files are skipped and listed.
    let paths = list_images(&args.folder)?;
    let found = extract(model, &paths, &ExtractOptions::default())?;
    for s in &found.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
    if found.ids.is_empty() {
        bail!("no image in {} could be indexed", args.folder.display());
    }
    let vectors = found.embeddings.as_standard_layout();
    let index = FlatIndex::from_vectors(
        model.dim(),
        Metric::InnerProduct,
        &found.ids,
        vectors.as_slice().unwrap_or_default(),
    )?
    .with_model_id(model.model_id());
    println!(
        "indexed {} images of {} with {} ({} skipped)",
        index.len(),
        args.folder.display(),
        model.model_id(),
        found.skipped.len()
    );

    let query = extract(model, &[&args.query], &ExtractOptions::default())?;
    let Some(q) = query.embeddings.rows().into_iter().next() else {
        let reason = query
            .skipped
            .first()
            .map_or("unknown", |s| s.reason.as_str());
        bail!("cannot embed the query {}: {reason}", args.query.display());
    };
    let q = q.to_vec();
    let hits = index
        .search(&q, args.k)?
        .into_iter()
        .next()
        .unwrap_or_default();
    println!("top {} for {}:", hits.len(), args.query.display());
    let mut results = Vec::with_capacity(hits.len());
    for (rank, hit) in hits.iter().enumerate() {
        let path = paths[found.indices[hit.row]].as_path();
        println!("{:>3}. {:.4}  {}", rank + 1, hit.score, path.display());
        results.push((path, hit.score));
    }

    write_sheet(&args.sheet, &args.query, &results)?;
    println!("contact sheet: {}", args.sheet.display());
    Ok(())
}

/// Query on the left (framed in blue), results to the right, score under each thumbnail.
fn write_sheet(out: &Path, query: &Path, results: &[(&Path, f32)]) -> anyhow::Result<()> {
    let cols = 1 + results.len() as u32;
    let width = PAD + cols * (THUMB + PAD) + PAD;
    let height = PAD + THUMB + LABEL + PAD;
    let mut sheet = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut paste = |path: &Path, col: u32, label: &str| -> anyhow::Result<()> {
        let x = PAD + col * (THUMB + PAD) + if col > 0 { PAD } else { 0 };
        let img = decode_file(path, &DecodeOptions::default())
            .with_context(|| format!("reading {}", path.display()))?;
        let img = RgbImage::from_raw(img.width(), img.height(), img.as_raw().to_vec())
            .context("decoded image buffer")?;
        let thumb = imageops::thumbnail(&img, THUMB, THUMB);
        let (tw, th) = thumb.dimensions();
        imageops::overlay(
            &mut sheet,
            &thumb,
            i64::from(x + (THUMB - tw) / 2),
            i64::from(PAD + (THUMB - th) / 2),
        );
        draw_digits(&mut sheet, label, x + 4, PAD + THUMB + 6, 3);
        Ok(())
    };
    paste(query, 0, "")?;
    for (i, (path, score)) in results.iter().enumerate() {
        paste(path, i as u32 + 1, &format!("{score:.3}"))?;
    }
    // Blue frame around the query.
    for t in 0..3 {
        for x in PAD - 3 + t..PAD + THUMB + 3 - t {
            sheet.put_pixel(x, PAD - 3 + t, Rgb([40, 90, 220]));
            sheet.put_pixel(x, PAD + THUMB + 2 - t, Rgb([40, 90, 220]));
        }
        for y in PAD - 3 + t..PAD + THUMB + 3 - t {
            sheet.put_pixel(PAD - 3 + t, y, Rgb([40, 90, 220]));
            sheet.put_pixel(PAD + THUMB + 2 - t, y, Rgb([40, 90, 220]));
        }
    }
    let tmp = out.with_extension("png.tmp");
    sheet
        .save_with_format(&tmp, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// Draws digits, `.` and `-` with a 3×5 pixel font, each pixel `scale`×`scale`.
fn draw_digits(img: &mut RgbImage, text: &str, x: u32, y: u32, scale: u32) {
    const GLYPHS: [(char, [u8; 5]); 12] = [
        ('0', [7, 5, 5, 5, 7]),
        ('1', [2, 6, 2, 2, 7]),
        ('2', [7, 1, 7, 4, 7]),
        ('3', [7, 1, 7, 1, 7]),
        ('4', [5, 5, 7, 1, 1]),
        ('5', [7, 4, 7, 1, 7]),
        ('6', [7, 4, 7, 5, 7]),
        ('7', [7, 1, 1, 1, 1]),
        ('8', [7, 5, 7, 5, 7]),
        ('9', [7, 5, 7, 1, 7]),
        ('.', [0, 0, 0, 0, 2]),
        ('-', [0, 0, 7, 0, 0]),
    ];
    for (i, ch) in text.chars().enumerate() {
        let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == ch) else {
            continue;
        };
        let x0 = x + i as u32 * 4 * scale;
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..3u32 {
                if bits & (4 >> c) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (x0 + c * scale + dx, y + r as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgb([0, 0, 0]));
                        }
                    }
                }
            }
        }
    }
}
