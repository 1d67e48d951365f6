#![doc = include_str!("../README.md")]

pub mod atomic;
pub mod cache;
#[cfg(feature = "torch")]
pub mod device;
mod error;
mod extract;
mod host;
mod list;
mod model;
mod options;
mod ring;
pub mod test_model;

pub use cache::{CacheKey, CacheOptions, extract_cached};
#[cfg(feature = "torch")]
pub use device::{normalize_nchw, normalize_u8_nhwc, resize_crop_on_device};
pub use embed_core::Embedder;
/// The encoders' libtorch layer, whose `TorchEmbedder` [`Model::Torch`] takes.
#[cfg(feature = "torch")]
pub use embed_torch;
pub use error::{PipelineError, Result};
pub use extract::{
    BatchResult, ExtractStats, Extraction, Skipped, decode_only, extract, extract_streaming,
};
pub use list::{Shard, check_unique_ids, file_stem_id, list_images, read_list};
pub use model::{Model, ResizeOn, Transfer};
pub use ndarray;
pub use options::{ExtractOptions, MAX_WORKERS, ProgressFn, ProgressReport};
