#![doc = include_str!("../README.md")]

mod error;
mod model_kind;
#[cfg(feature = "torch")]
pub mod models;
pub mod synthetic;

#[cfg(feature = "cli")]
pub mod cli;

pub use error::{Error, Result};
pub use model_kind::ModelKind;

// The member crates, each under its own name.
pub use embed_collection;
pub use embed_core;
pub use embed_pipeline;
pub use ndarray;
pub use vecindex;
#[cfg(feature = "torch")]
pub use {embed_clip, embed_dinov2, embed_torch, tch};
