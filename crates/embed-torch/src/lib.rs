//! Shared ground of the libtorch image encoders (`embed-clip`, `embed-dinov2`):
//!
//! - [`vit`]: the Vision Transformer parts both models use (attention through
//!   `scaled_dot_product_attention`, MLP and SwiGLU, pre-norm block with optional LayerScale,
//!   LayerNorm with the configured epsilon), written once;
//! - [`weights`]: strict safetensors loading ([`Checkpoint`]): every needed tensor present with
//!   the right shape, unexpected keys reported, dtype converted to the requested precision,
//!   NaN/Inf rejected, each error naming the key;
//! - [`hub`]: finding a checkpoint folder from a path or a model id in the local Hugging Face
//!   cache;
//! - `download` (feature `download`, on by default): fetching a checkpoint from the Hugging Face
//!   hub into the local cache;
//! - [`device`]: device (`cpu`, `cuda`, `cuda:N`, `auto`) and precision (`f32`, `f16`, `bf16`);
//! - [`TorchEmbedder`]: the device-resident extension of [`embed_core::Embedder`];
//! - [`cuda_event`]: waiting for part of the work queued on a CUDA device ([`CudaEvent`]).
//!
//! ```no_run
//! use embed_torch::{Checkpoint, TorchOptions, resolve_model};
//!
//! let model = resolve_model("facebook/dinov2-base")?;
//! let mut ckpt = Checkpoint::open_dir(&model.dir, TorchOptions::default())?;
//! let cls = ckpt.tensor("embeddings.cls_token", &[1, 1, 768])?;
//! # Ok::<(), embed_torch::Error>(())
//! ```

pub mod config;
pub mod cuda_event;
mod cuda_link;
pub mod device;
#[cfg(feature = "download")]
pub mod download;
pub mod embedder;
pub mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod hub;
pub mod vit;
pub mod weights;

pub use cuda_event::{CudaEvent, cuda_events_available};
pub use device::{Precision, TorchOptions, check_device_name, parse_device};
pub use embedder::{
    TorchEmbedder, array4_to_tensor, check_pixels, embed_array_with, tensor_to_array2,
};
pub use error::{Error, Result};
pub use hub::{ResolvedModel, hf_cache_dirs, resolve_model, resolve_model_in};
pub use weights::Checkpoint;
/// The crates of this crate's public signatures (`Tensor`, `Device`, `Kind`; arrays), re-exported
/// so callers use the same versions.
pub use {ndarray, tch};

/// Reads and parses a JSON file (`config.json`), with errors naming the file.
pub fn read_json(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: Some(path.to_path_buf()),
        message: e.to_string(),
    })
}
