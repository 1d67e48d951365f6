//! The error type of `embed-dinov2`.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading or running DINOv2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Locating, loading or running the model on libtorch failed (includes bad configurations
    /// and strict-loading errors naming the tensor).
    #[error(transparent)]
    Torch(#[from] embed_torch::Error),
    /// The preprocessing configuration could not be read.
    #[error(transparent)]
    Preprocess(#[from] embed_core::Error),
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Self::Torch(e.into())
    }
}

impl From<Error> for embed_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Preprocess(e) => e,
            other => embed_core::Error::Model(Box::new(other)),
        }
    }
}
