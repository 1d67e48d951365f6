//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Functions never panic on bad input: they return
/// one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector or query has a different dimension than the index.
    #[error("dimension mismatch: the index has dimension {expected}, got {got}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The dimension that was passed.
        got: usize,
    },
    /// A flat buffer of vectors whose length is not a multiple of the dimension.
    #[error("buffer of {len} floats is not a whole number of {dim}-dimensional vectors")]
    RaggedInput {
        /// Buffer length in floats.
        len: usize,
        /// The index's dimension.
        dim: usize,
    },
    /// The number of ids differs from the number of vectors.
    #[error("{ids} ids for {vectors} vectors")]
    IdCountMismatch {
        /// Number of ids passed.
        ids: usize,
        /// Number of vectors passed.
        vectors: usize,
    },
    /// A vector or query holds NaN or an infinity.
    #[error("row {row} holds a non-finite value (NaN or infinity)")]
    NonFinite {
        /// Row (within the batch passed) of the offending vector.
        row: usize,
    },
    /// `k = 0` was asked for.
    #[error("k must be at least 1")]
    ZeroK,
    /// A dimension of 0 or above [`MAX_DIM`](crate::MAX_DIM).
    #[error("invalid dimension {0} (must be 1..={max})", max = crate::MAX_DIM)]
    InvalidDimension(usize),
    /// An id that is already in the index.
    #[error("duplicate id {0:?}")]
    DuplicateId(String),
    /// An empty id or one holding a line break (ids are stored one per line in sidecars).
    #[error("invalid id {0:?}: ids must be non-empty and hold no line break")]
    InvalidId(String),
    /// HNSW parameters outside the accepted ranges.
    #[error("invalid HNSW parameters: {0}")]
    InvalidParams(String),
    /// The operation needs the other metric or kind of index.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// No index kind fits a memory budget ([`crate::choose_kind`]).
    #[error("over the memory budget: {0}")]
    OverBudget(String),
    /// The index would exceed the supported size.
    #[error("index too large: {0}")]
    TooLarge(String),
    /// An I/O error while reading or writing `path` (the cause is its [`source`]).
    ///
    /// [`source`]: std::error::Error::source
    #[error("I/O error on {path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that is truncated, corrupted, of the wrong kind, or otherwise invalid.
    #[error("invalid index file {path}: {message}")]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file that differs from the length and checksum recorded when it was written (in the
    /// `.meta.json` sidecar of a FAISS file): damaged since.
    #[error("{path} is damaged: {message}")]
    Damaged {
        /// The damaged file.
        path: PathBuf,
        /// How it differs from the record.
        message: String,
    },
    /// The stored model id differs from the expected one.
    #[error("index was built from model {found:?}, expected {expected:?}")]
    ModelMismatch {
        /// The model id the caller expected.
        expected: String,
        /// The model id stored in the index.
        found: String,
    },
    /// An HNSW graph operation that cannot be done (saving an empty index, a graph beyond
    /// `u32` rows).
    #[error("HNSW index: {0}")]
    Hnsw(String),
    /// The compute backend failed (libtorch: out of device memory, no such device...).
    #[error("{0}")]
    Backend(String),
}

/// Shorthand for `Result<T, vecindex::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn format_err(path: &std::path::Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error chain printed cause by cause (as `anyhow`'s `{:#}` does) shows each cause once:
    /// the I/O error is the source, not part of the message.
    #[test]
    fn causes_print_once() {
        let e = io_err(std::path::Path::new("x.vix"))(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        let mut chain = vec![e.to_string()];
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            chain.push(c.to_string());
            cause = c.source();
        }
        assert_eq!(chain, ["I/O error on x.vix", "no such file"]);
    }
}
