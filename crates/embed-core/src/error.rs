//! The error type of `embed-core`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding, preprocessing or embedding images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an image in a supported format.
    #[error("{}unrecognised image format{}", path_prefix(.path), .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    UnknownFormat {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the first bytes looked like.
        detail: Option<String>,
    },
    /// The image is damaged, truncated or uses an unsupported feature.
    #[error("{}cannot decode {format} image: {message}", path_prefix(.path))]
    Decode {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The container format.
        format: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// The image header claims a size beyond the configured limits (decompression bomb guard).
    #[error("{}image of {width}×{height} exceeds the decoding limit ({reason})", path_prefix(.path))]
    TooLarge {
        /// The file, when known.
        path: Option<PathBuf>,
        /// Claimed width.
        width: u64,
        /// Claimed height.
        height: u64,
        /// Which limit it broke.
        reason: String,
    },
    /// A preprocessing configuration is unusable.
    #[error("invalid preprocessing configuration: {0}")]
    Config(String),
    /// Arrays of the wrong shape were passed or returned.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A `.npy` file is malformed or holds another dtype or rank.
    #[error("{}: {message}", .path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model failed (errors of the backend, e.g. libtorch). Displays as the backend's error.
    #[error(transparent)]
    Model(Box<dyn std::error::Error + Send + Sync + 'static>),
}

fn path_prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl Error {
    /// Attaches a file path to a decoding error that does not have one yet.
    #[must_use]
    pub fn with_path(mut self, file: &std::path::Path) -> Self {
        if let Error::UnknownFormat { path, .. }
        | Error::Decode { path, .. }
        | Error::TooLarge { path, .. } = &mut self
            && path.is_none()
        {
            *path = Some(file.to_path_buf());
        }
        self
    }
}
