//! `preprocess`: the exact tensor a model sees, for parity checks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use embed_core::{DecodeOptions, PreprocessSpec, decode_file, npy};

use crate::ModelKind;

/// Arguments of `preprocess`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which model's preprocessing to apply: `clip` or `dinov2`.
    #[arg(long, value_parser = super::model_kind)]
    pub model: ModelKind,
    /// Checkpoint folder whose `preprocessor_config.json` overrides the model's defaults.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Rotate by the EXIF orientation tag first (the reference does not).
    #[arg(long)]
    pub exif_orientation: bool,
    /// Opt-in fast mode, not exact: decode a large JPEG at 1/2, 1/4 or 1/8 size in the DCT
    /// domain while its shorter side stays at least twice the resize target (as `embed
    /// --fast-jpeg`), to see what the model is given in that mode.
    #[arg(long)]
    pub fast_jpeg: bool,
    /// The image file (any supported format; detected from its bytes).
    pub image: PathBuf,
    /// Output `.npy` (float32, 1×3×H×W).
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.force {
        anyhow::bail!(
            "{} exists; pass --force to overwrite it",
            args.out.display()
        );
    }
    super::create_parent(&args.out)?;
    let defaults = match args.model {
        ModelKind::Clip => PreprocessSpec::clip(),
        ModelKind::Dinov2 => PreprocessSpec::dinov2(),
    };
    let spec = match &args.weights {
        Some(dir) => {
            let path = dir.join("preprocessor_config.json");
            PreprocessSpec::from_file(&path, defaults)?
        }
        None => defaults,
    };
    let options = DecodeOptions {
        apply_exif_orientation: args.exif_orientation,
        jpeg_dct_downscale_min_side: if args.fast_jpeg {
            spec.fast_jpeg_min_side()
        } else {
            None
        },
        ..Default::default()
    };
    let image = decode_file(&args.image, &options)?;
    let pixels = spec.preprocess(&image)?;
    let batch = pixels.insert_axis(ndarray::Axis(0));
    npy::write_f32_file(&args.out, &batch)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: {}×{} → {:?} written to {}",
        args.image.display(),
        image.width(),
        image.height(),
        batch.shape(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
