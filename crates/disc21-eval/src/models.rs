//! Loading the two encoders behind one function, for the command line and the benchmark.

use anyhow::Context as _;
use embed_clip::ClipEmbedder;
use embed_core::Embedder;
use embed_dinov2::{Dinov2Embedder, Pooling};
use embed_torch::{TorchEmbedder, TorchOptions};

/// The model families of the study.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// OpenAI CLIP (image tower + projection).
    Clip,
    /// Meta DINOv2.
    Dinov2,
}

impl ModelKind {
    /// The checkpoint of the original study (`openai/clip-vit-base-patch32`,
    /// `facebook/dinov2-base`).
    pub fn default_weights(self) -> &'static str {
        match self {
            Self::Clip => embed_clip::DEFAULT_MODEL_ID,
            Self::Dinov2 => embed_dinov2::DEFAULT_MODEL_ID,
        }
    }
}

/// How to load an encoder.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// A checkpoint folder, or a Hugging Face model id looked up in the local cache. `None`: the
    /// study's checkpoint (`openai/clip-vit-base-patch32`, `facebook/dinov2-base`).
    pub weights: Option<String>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default).
    pub device: Option<String>,
    /// `f32` (default), `f16` or `bf16`.
    pub precision: Option<String>,
    /// DINOv2 pooling: `mean` (default, the study's), `cls`, `patch-mean`, `cls-patch-mean`.
    pub pooling: Option<String>,
}

/// Loads an encoder on the device and in the precision asked for, as a device-resident
/// [`TorchEmbedder`].
pub fn load_torch_embedder(
    kind: ModelKind,
    options: &ModelOptions,
) -> anyhow::Result<Box<dyn TorchEmbedder>> {
    let torch = TorchOptions::parse(options.device.as_deref(), options.precision.as_deref())?;
    if let Some(warning) = torch.slow_precision_warning() {
        log::warn!("{warning}");
    }
    let weights = options.weights.as_deref().unwrap_or(kind.default_weights());
    Ok(match kind {
        ModelKind::Clip => {
            if options.pooling.is_some() {
                anyhow::bail!(
                    "--pooling applies to DINOv2 only (CLIP's embedding is its projected CLS token)"
                );
            }
            Box::new(
                ClipEmbedder::from_pretrained(weights, torch)
                    .with_context(|| format!("loading CLIP from `{weights}`"))?,
            )
        }
        ModelKind::Dinov2 => {
            let pooling: Pooling = options
                .pooling
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default();
            Box::new(
                Dinov2Embedder::from_pretrained(weights, pooling, torch)
                    .with_context(|| format!("loading DINOv2 from `{weights}`"))?,
            )
        }
    })
}

/// Loads an encoder (see [`load_torch_embedder`]).
pub fn load_embedder(kind: ModelKind, options: &ModelOptions) -> anyhow::Result<Box<dyn Embedder>> {
    let model: Box<dyn Embedder> = load_torch_embedder(kind, options)?;
    Ok(model)
}
