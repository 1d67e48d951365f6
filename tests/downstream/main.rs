//! A crate outside the workspace that depends on `image-sim` alone, as an application would:
//! it embeds a folder with CLIP (from a checkpoint folder), indexes it, queries it, and does
//! the same with an `Embedder` of its own. `scripts/downstream.sh` builds and runs it from a
//! temporary folder; it exits non-zero when anything is off.
//!
//! usage: downstream IMAGES_DIR CLIP_CHECKPOINT_DIR

use std::error::Error;

use image_sim::ModelKind;
use image_sim::embed_core::{Embedder, PreprocessSpec};
use image_sim::embed_pipeline::{ExtractOptions, Model, extract, list_images};
use image_sim::models::{ModelOptions, load};
use image_sim::ndarray::{Array2, ArrayView4, Axis};
use image_sim::vecindex::{FlatIndex, Metric, VectorIndex};

/// An embedder of our own: the mean colour of each quarter of the image.
struct QuarterColours {
    spec: PreprocessSpec,
}

impl Embedder for QuarterColours {
    fn model_id(&self) -> &str {
        "downstream/quarter-colours"
    }
    fn dim(&self) -> usize {
        12
    }
    fn preprocess_spec(&self) -> &PreprocessSpec {
        &self.spec
    }
    fn embed_batch(
        &self,
        pixels: ArrayView4<'_, f32>,
    ) -> image_sim::embed_core::Result<Array2<f32>> {
        let (n, _, h, w) = pixels.dim();
        let mut out = Array2::zeros((n, 12));
        for (img, mut row) in pixels.axis_iter(Axis(0)).zip(out.rows_mut()) {
            for c in 0..3 {
                for q in 0..4 {
                    let (y0, x0) = ((q / 2) * h / 2, (q % 2) * w / 2);
                    let cell = img.slice(image_sim::ndarray::s![c, y0..y0 + h / 2, x0..x0 + w / 2]);
                    row[c * 4 + q] = cell.mean().unwrap_or(0.0);
                }
            }
        }
        Ok(out)
    }
}

/// Embeds `paths` with `model`, indexes them, and checks that every image finds itself first.
fn index_and_query(model: Model<'_>, paths: &[std::path::PathBuf]) -> Result<(), Box<dyn Error>> {
    let found = extract(model, paths, &ExtractOptions::default())?;
    if found.ids.len() != paths.len() {
        return Err(format!("{} of {} images embedded", found.ids.len(), paths.len()).into());
    }
    let rows = found.embeddings.as_standard_layout();
    let flat = rows.as_slice().ok_or("rows not contiguous")?;
    let index = FlatIndex::from_vectors(model.dim(), Metric::InnerProduct, &found.ids, flat)?;
    let hits = index.search(flat, 1)?;
    for (q, h) in hits.iter().enumerate() {
        let top = index.id(h[0].row).ok_or("hit without id")?;
        if top != found.ids[q] {
            return Err(format!("{} found {top} first", found.ids[q]).into());
        }
    }
    println!(
        "{}: {} images indexed, each its own nearest neighbour",
        model.model_id(),
        index.len()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, images, checkpoint] = args.as_slice() else {
        return Err("usage: downstream IMAGES_DIR CLIP_CHECKPOINT_DIR".into());
    };
    let paths = list_images(images.as_ref())?;
    let clip = load(
        ModelKind::Clip,
        &ModelOptions {
            weights: Some(checkpoint.clone()),
            device: Some("cpu".into()),
            ..ModelOptions::default()
        },
    )?;
    index_and_query(Model::Torch(clip.embedder.as_ref()), &paths)?;
    let own = QuarterColours {
        spec: PreprocessSpec::clip(),
    };
    index_and_query(Model::Host(&own), &paths)?;
    println!("downstream: ok");
    Ok(())
}
