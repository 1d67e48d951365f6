//! The crate's error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong reading or writing a collection. Errors about a file name it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call failed on `path`.
    #[error("{path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the collection is missing, damaged or disagrees with `collection.json`.
    #[error("{path}: {message}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The folder holds no collection (no `collection.json`).
    #[error("{0}: no collection here (no collection.json)")]
    NotACollection(PathBuf),
    /// `create` found a collection already there.
    #[error("{0}: a collection already exists here (replace it explicitly)")]
    AlreadyExists(PathBuf),
    /// Another process holds the collection's writer lock.
    #[error("{0}: another process is writing this collection")]
    Busy(PathBuf),
    /// A live writer is committing and did not finish in time.
    #[error("{0}: a commit by another process is still in progress")]
    CommitInProgress(PathBuf),
    /// The caller passed something inconsistent (wrong length, bad value).
    #[error("{0}")]
    Invalid(String),
    /// An image path or id is already in the collection.
    #[error("{what} {value:?} is already in the collection")]
    Duplicate {
        /// `image_path` or `id`.
        what: &'static str,
        /// The repeated value.
        value: String,
    },
    /// An append or merge was refused because the collections do not match.
    #[error("{0}")]
    Mismatch(String),
    /// Shards given to `merge` do not form one complete set.
    #[error("{0}")]
    Shards(String),
    /// The vector index failed.
    #[error("vector index")]
    Index(#[from] vecindex::Error),
    /// Shard selection from the Slurm environment failed.
    #[error(transparent)]
    ShardEnv(#[from] crate::slurm::ShardEnvError),
    /// A simulated crash (test builds only).
    #[cfg(test)]
    #[error("simulated crash at {0}")]
    SimulatedCrash(&'static str),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A closure turning an `io::Error` into [`Error::Io`] for `path`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// [`Error::Damaged`] for `path`.
pub(crate) fn damaged(path: &Path, message: impl Into<String>) -> Error {
    Error::Damaged {
        path: path.to_path_buf(),
        message: message.into(),
    }
}
