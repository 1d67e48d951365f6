//! Cosine similarity of two images under CLIP and/or DINOv2, as the original `clip.py` and
//! `dinov2.py` print it (also their `(cos + 1) / 2` score).
//!
//! ```text
//! cargo run --release --example compare_pair -- IMAGE_A IMAGE_B [--model clip|dinov2|both]
//!     [--weights-clip DIR_OR_ID] [--weights-dinov2 DIR_OR_ID] [--device auto|cpu|cuda[:N]]
//!     [--precision f32|f16|bf16]
//! ```
//!
//! Weights default to `openai/clip-vit-base-patch32` and `facebook/dinov2-base` in the local
//! Hugging Face cache.

use std::path::PathBuf;

use anyhow::{Context, bail};
use embed_clip::ClipEmbedder;
use embed_core::{DecodeOptions, Embedder, cosine_similarity, decode_file};
use embed_dinov2::{Dinov2Embedder, Pooling};
use embed_torch::TorchOptions;
use ndarray::{Array4, Axis};

struct Args {
    images: Vec<PathBuf>,
    model: String,
    weights_clip: String,
    weights_dinov2: String,
    device: Option<String>,
    precision: Option<String>,
}

const USAGE: &str = "usage: compare_pair IMAGE_A IMAGE_B [--model clip|dinov2|both] \
[--weights-clip DIR_OR_ID] [--weights-dinov2 DIR_OR_ID] [--device D] [--precision P]";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        images: Vec::new(),
        model: "both".into(),
        weights_clip: embed_clip::DEFAULT_MODEL_ID.into(),
        weights_dinov2: embed_dinov2::DEFAULT_MODEL_ID.into(),
        device: None,
        precision: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--model" => args.model = value("--model")?,
            "--weights-clip" => args.weights_clip = value("--weights-clip")?,
            "--weights-dinov2" => args.weights_dinov2 = value("--weights-dinov2")?,
            "--device" => args.device = Some(value("--device")?),
            "--precision" => args.precision = Some(value("--precision")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n{USAGE}"),
            _ => args.images.push(PathBuf::from(a)),
        }
    }
    if args.images.len() != 2 {
        bail!("expected two images, got {}\n{USAGE}", args.images.len());
    }
    if !["clip", "dinov2", "both"].contains(&args.model.as_str()) {
        bail!("--model must be clip, dinov2 or both\n{USAGE}");
    }
    Ok(args)
}

/// Decodes and preprocesses both images with the model's spec and returns their cosine.
fn similarity(model: &dyn Embedder, images: &[PathBuf]) -> anyhow::Result<f32> {
    let spec = model.preprocess_spec();
    let mut batch = Array4::<f32>::zeros((0, 3, 0, 0));
    for (i, path) in images.iter().enumerate() {
        let image = decode_file(path, &DecodeOptions::default())
            .with_context(|| format!("decoding {}", path.display()))?;
        let pixels = spec.preprocess(&image)?;
        if i == 0 {
            let (c, h, w) = pixels.dim();
            batch = Array4::zeros((images.len(), c, h, w));
        }
        batch.index_axis_mut(Axis(0), i).assign(&pixels);
    }
    let rows = model.embed_batch(batch.view())?;
    let (a, b) = (rows.row(0).to_vec(), rows.row(1).to_vec());
    Ok(cosine_similarity(&a, &b)?)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let options = TorchOptions::parse(args.device.as_deref(), args.precision.as_deref())?;
    if let Some(warning) = options.slow_precision_warning() {
        eprintln!("warning: {warning}");
    }
    println!(
        "{} vs {}",
        args.images[0].display(),
        args.images[1].display()
    );
    if args.model != "dinov2" {
        let clip = ClipEmbedder::from_pretrained(&args.weights_clip, options)?;
        let cos = similarity(&clip, &args.images)?;
        println!(
            "CLIP   ({}): cosine {cos:.4}, similarity score (cos+1)/2 {:.4}",
            clip.model_id(),
            (cos + 1.0) / 2.0
        );
    }
    if args.model != "clip" {
        let dino = Dinov2Embedder::from_pretrained(&args.weights_dinov2, Pooling::Mean, options)?;
        let cos = similarity(&dino, &args.images)?;
        println!(
            "DINOv2 ({}): cosine {cos:.4}, similarity score (cos+1)/2 {:.4}",
            dino.model_id(),
            (cos + 1.0) / 2.0
        );
    }
    Ok(())
}
