//! The pipeline's error type.

use std::path::{Path, PathBuf};

/// Errors of the extraction pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// An option is out of range or inconsistent with the model.
    #[error("invalid extraction option: {0}")]
    InvalidOption(String),
    /// Two images of the list would get the same id (file name without extension).
    #[error(
        "{} and {} would both get the id `{id}` (ids are file names without extension)",
        .first.display(), .second.display()
    )]
    DuplicateId {
        /// The first image with the id.
        first: PathBuf,
        /// The second one.
        second: PathBuf,
        /// The id.
        id: String,
    },
    /// The model failed on a batch.
    #[error("the model failed on images {first}..{last}")]
    Model {
        /// Index of the batch's first image.
        first: usize,
        /// One past the batch's last image.
        last: usize,
        /// What the model said.
        #[source]
        source: embed_core::Error,
    },
    /// libtorch failed while moving or normalising a batch.
    #[cfg(feature = "torch")]
    #[error("libtorch")]
    Torch(#[from] tch::TchError),
    /// An image could not be used and `strict` is set.
    #[error("{} (strict: any unreadable image is an error)", describe(.path, .reason))]
    Strict {
        /// The image.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// More images failed than the configured rate allows. What was computed before the stop
    /// is kept by [`crate::extract_cached`]'s cache; `failures` lists every failure so far.
    #[error(
        "{} of {total} images could not be used, more than the allowed rate {max_rate} \
         (first: {})",
        .failures.len(), describe(&.failures[0].path, &.failures[0].reason)
    )]
    TooManyFailures {
        /// Images in the run.
        total: usize,
        /// The configured limit.
        max_rate: f64,
        /// Every image that failed so far, in input order (never empty).
        failures: Vec<crate::Skipped>,
    },
    /// Reading or writing the cache or a list failed.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A cache file is damaged or belongs to another extraction.
    #[error("{}: {message}", .path.display())]
    Cache {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// An error and its causes as one line (`a: b: c`), the reason recorded for an image that could
/// not be used (errors print their cause through `source()`, not in their own message).
pub(crate) fn reason(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// `path: reason`, without repeating a path the reason already names.
fn describe(path: &Path, reason: &str) -> String {
    let p = path.display().to_string();
    if reason.contains(&p) {
        reason.to_string()
    } else {
        format!("{p}: {reason}")
    }
}

/// Result alias of the pipeline.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
