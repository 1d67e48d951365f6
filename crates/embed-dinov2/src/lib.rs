//! DINOv2 on libtorch, numerically equal to Hugging Face `transformers`' `Dinov2Model` and
//! `Dinov2WithRegistersModel`: all sizes (small, base, large, giant with its SwiGLU MLP),
//! position embeddings resized to the input grid as `transformers` does, and a [`Pooling`]
//! enum (default: the mean of all tokens, the original study's choice).
//!
//! ```no_run
//! use embed_core::Embedder;
//! use embed_dinov2::{Dinov2Embedder, Pooling};
//! use embed_torch::TorchOptions;
//!
//! let dino = Dinov2Embedder::from_pretrained("facebook/dinov2-base", Pooling::Mean, TorchOptions::default())?;
//! let pixels = ndarray::Array4::<f32>::zeros((2, 3, 224, 224));
//! let rows = dino.embed_batch(pixels.view())?; // 2 × 768, not normalised
//! assert_eq!(rows.dim(), (2, dino.dim()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod error;
pub mod model;
pub mod pooling;

use std::path::Path;

use embed_core::{Embedder, PreprocessSpec};
use embed_torch::{Checkpoint, TorchEmbedder, TorchOptions, embed_array_with, resolve_model};
use ndarray::{Array2, ArrayView4};
use tch::{Device, Kind, Tensor};

pub use config::Dinov2Config;
pub use error::{Error, Result};
pub use model::{Dinov2Model, Dinov2Output};
pub use pooling::Pooling;
/// The crates of this crate's public signatures, re-exported so callers use the same versions.
pub use {embed_torch, ndarray, tch};

/// The checkpoint of the original study.
pub const DEFAULT_MODEL_ID: &str = "facebook/dinov2-base";

/// DINOv2 as an [`Embedder`], pooling the final-layernormed sequence with a [`Pooling`].
#[derive(Debug)]
pub struct Dinov2Embedder {
    model: Dinov2Model,
    pooling: Pooling,
    spec: PreprocessSpec,
    model_id: String,
}

impl Dinov2Embedder {
    /// Loads from a checkpoint folder or a model id in the local Hugging Face cache.
    pub fn from_pretrained(
        folder_or_id: &str,
        pooling: Pooling,
        options: TorchOptions,
    ) -> Result<Self> {
        let resolved = resolve_model(folder_or_id)?;
        Self::from_dir(&resolved.dir, resolved.model_id, pooling, options)
    }

    /// Loads `config.json`, `model.safetensors` (strictly) and `preprocessor_config.json`
    /// (DINOv2's defaults when absent) from `dir`. The model id gets a `#pooling=NAME` suffix
    /// for any pooling but the default, so vectors pooled differently are never mixed.
    pub fn from_dir(
        dir: &Path,
        model_id: impl Into<String>,
        pooling: Pooling,
        options: TorchOptions,
    ) -> Result<Self> {
        let config = Dinov2Config::from_file(&dir.join("config.json"))?;
        let mut ckpt = Checkpoint::open_dir(dir, options)?;
        let model = Dinov2Model::new(&config, &mut ckpt)?;
        ckpt.finish()?;
        let pp = dir.join("preprocessor_config.json");
        let spec = if pp.is_file() {
            PreprocessSpec::from_file(&pp, PreprocessSpec::dinov2())?
        } else {
            PreprocessSpec::dinov2()
        };
        let mut model_id = model_id.into();
        if pooling != Pooling::Mean {
            model_id = format!("{model_id}#pooling={pooling}");
        }
        Ok(Self {
            model,
            pooling,
            spec,
            model_id,
        })
    }

    /// The underlying backbone (for the last hidden state).
    pub fn model(&self) -> &Dinov2Model {
        &self.model
    }

    /// The pooling in use.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }
}

impl Embedder for Dinov2Embedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.pooling.dim(self.model.config().hidden_size as usize)
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

impl TorchEmbedder for Dinov2Embedder {
    fn device(&self) -> Device {
        self.model.device()
    }

    fn kind(&self) -> Kind {
        self.model.kind()
    }

    fn embed_tensor(&self, pixels: &Tensor) -> embed_core::Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let out = self.model.forward(pixels)?;
        let pooled = self.pooling.apply(
            &out.last_hidden_state,
            self.model.config().num_register_tokens,
        )?;
        Ok(pooled
            .f_to_kind(Kind::Float)
            .map_err(embed_torch::Error::from)?)
    }
}
