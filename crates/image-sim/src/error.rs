//! The facade's error type.

use std::path::PathBuf;

/// Errors of loading models and computing their fingerprints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option is out of range or does not apply to the model.
    #[error("{0}")]
    InvalidOption(String),
    /// Reading a checkpoint file failed.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Loading CLIP failed.
    #[cfg(feature = "torch")]
    #[error("loading CLIP from `{weights}`")]
    Clip {
        /// The folder or model id given.
        weights: String,
        /// What went wrong.
        #[source]
        source: embed_clip::Error,
    },
    /// Loading DINOv2 failed.
    #[cfg(feature = "torch")]
    #[error("loading DINOv2 from `{weights}`")]
    Dinov2 {
        /// The folder or model id given.
        weights: String,
        /// What went wrong.
        #[source]
        source: embed_dinov2::Error,
    },
    /// The device, precision or checkpoint lookup failed.
    #[cfg(feature = "torch")]
    #[error(transparent)]
    Torch(#[from] embed_torch::Error),
}

/// Result alias of the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;
