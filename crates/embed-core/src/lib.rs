#![doc = include_str!("../README.md")]

pub mod decode;
pub mod embedder;
pub mod error;
pub mod npy;
pub mod preprocess;

pub use decode::{DecodeLimits, DecodeOptions, RgbImage, decode_bytes, decode_file};
pub use embedder::{Embedder, cosine_similarity, embed_paths, l2_normalize_rows};
pub use error::{Error, Result};
/// The array crate of [`Embedder`]'s signatures, re-exported so callers use the same version.
pub use ndarray;
pub use preprocess::{CropSize, Geometry, PreprocessSpec, Region, Resample, ResizeSpec};
