//! The CLIP vision encoder (vision tower + `visual_projection`) on libtorch, numerically equal
//! to Hugging Face `transformers`' `CLIPModel.get_image_features`.
//!
//! Loads `config.json` of a full `CLIPModel` (its text tower is skipped knowingly) or of a
//! `CLIPVisionModelWithProjection`, with any patch and image size, depth, width, heads,
//! `quick_gelu` or `gelu`, and the configured LayerNorm epsilon.
//!
//! ```no_run
//! use embed_clip::ClipEmbedder;
//! use embed_core::Embedder;
//! use embed_torch::TorchOptions;
//!
//! let clip = ClipEmbedder::from_pretrained("openai/clip-vit-base-patch32", TorchOptions::default())?;
//! let pixels = ndarray::Array4::<f32>::zeros((1, 3, 224, 224));
//! let rows = clip.embed_batch(pixels.view())?; // 1 × 512, not normalised
//! assert_eq!(rows.dim(), (1, clip.dim()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod error;
pub mod model;

use std::path::Path;

use embed_core::{Embedder, PreprocessSpec};
use embed_torch::{Checkpoint, TorchEmbedder, TorchOptions, embed_array_with, resolve_model};
use ndarray::{Array2, ArrayView4};
use tch::{Device, Kind, Tensor};

pub use config::ClipVisionConfig;
pub use error::{Error, Result};
pub use model::{ClipVisionModel, ClipVisionOutput};
/// The crates of this crate's public signatures, re-exported so callers use the same versions.
pub use {embed_torch, ndarray, tch};

/// The checkpoint of the original study.
pub const DEFAULT_MODEL_ID: &str = "openai/clip-vit-base-patch32";

/// CLIP as an [`Embedder`]: the embedding is the projected, post-layernormed CLS token.
#[derive(Debug)]
pub struct ClipEmbedder {
    model: ClipVisionModel,
    spec: PreprocessSpec,
    model_id: String,
}

impl ClipEmbedder {
    /// Loads from a checkpoint folder or a model id in the local Hugging Face cache.
    pub fn from_pretrained(folder_or_id: &str, options: TorchOptions) -> Result<Self> {
        let resolved = resolve_model(folder_or_id)?;
        Self::from_dir(&resolved.dir, resolved.model_id, options)
    }

    /// Loads `config.json`, `model.safetensors` (strictly) and `preprocessor_config.json`
    /// (CLIP's defaults when absent) from `dir`.
    pub fn from_dir(
        dir: &Path,
        model_id: impl Into<String>,
        options: TorchOptions,
    ) -> Result<Self> {
        let config = ClipVisionConfig::from_file(&dir.join("config.json"))?;
        let mut ckpt = Checkpoint::open_dir(dir, options)?;
        let model = ClipVisionModel::new(&config, &mut ckpt)?;
        ckpt.finish()?;
        let pp = dir.join("preprocessor_config.json");
        let spec = if pp.is_file() {
            PreprocessSpec::from_file(&pp, PreprocessSpec::clip())?
        } else {
            PreprocessSpec::clip()
        };
        Ok(Self {
            model,
            spec,
            model_id: model_id.into(),
        })
    }

    /// The underlying model (for the pooled output and the last hidden state).
    pub fn model(&self) -> &ClipVisionModel {
        &self.model
    }
}

impl Embedder for ClipEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.model.config().projection_dim as usize
    }

    fn preprocess_spec(&self) -> &PreprocessSpec {
        &self.spec
    }

    fn embed_batch(&self, pixels: ArrayView4<'_, f32>) -> embed_core::Result<Array2<f32>> {
        embed_array_with(self, pixels)
    }

    fn on_accelerator(&self) -> bool {
        self.model.device().is_cuda()
    }
}

impl TorchEmbedder for ClipEmbedder {
    fn device(&self) -> Device {
        self.model.device()
    }

    fn kind(&self) -> Kind {
        self.model.kind()
    }

    fn embed_tensor(&self, pixels: &Tensor) -> embed_core::Result<Tensor> {
        let embeds = self.model.image_embeds(pixels)?;
        Ok(embeds
            .f_to_kind(Kind::Float)
            .map_err(embed_torch::Error::from)?)
    }
}
