//! Shared ground for the image-sim encoders: the [`Embedder`] trait, image decoding that
//! matches PIL, and preprocessing that matches Hugging Face's image processors value for value.
//!
//! ```no_run
//! use embed_core::{DecodeOptions, PreprocessSpec, decode_file};
//!
//! let image = decode_file("cat.jpg".as_ref(), &DecodeOptions::default())?;
//! let pixels = PreprocessSpec::clip().preprocess(&image)?; // 3 × 224 × 224, f32
//! assert_eq!(pixels.shape(), &[3, 224, 224]);
//! # Ok::<(), embed_core::Error>(())
//! ```
//!
//! Resizing and normalisation pick SIMD kernels at run time (AVX2; AVX-512 VBMI + VNNI where
//! the CPU has them); all give the same bytes as the portable code. Setting
//! [`EMBED_CORE_SIMD`](preprocess::SIMD_ENV) to `avx2` or `scalar` caps the level, e.g. to
//! measure what a CPU without AVX-512 would do.
//!
//! With [`DecodeOptions::window_for`] a JPEG is decoded only where a preprocessing spec reads
//! it (same values, less work); setting [`EMBED_CORE_JPEG_WINDOW`](decode::JPEG_WINDOW_ENV) to
//! `0` turns that off for comparisons.

pub mod decode;
pub mod embedder;
pub mod error;
pub mod npy;
pub mod preprocess;

pub use decode::{DecodeLimits, DecodeOptions, RgbImage, decode_bytes, decode_file};
pub use embedder::{Embedder, cosine_similarity, embed_paths, l2_normalize_rows};
pub use error::{Error, Result};
pub use preprocess::{CropSize, Geometry, PreprocessSpec, Region, Resample, ResizeSpec};
