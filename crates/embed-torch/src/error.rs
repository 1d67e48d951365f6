//! The error type of `embed-torch`.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while locating, loading or running a libtorch model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` (or another configuration) is malformed or describes an unusable model.
    #[error("invalid model configuration{}: {message}", .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Config {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("checkpoint has no tensor `{key}` (needed by the model)")]
    MissingTensor {
        /// The checkpoint key.
        key: String,
    },
    /// A tensor has another shape than the configuration implies.
    #[error("tensor `{key}` has shape {found:?}, the configuration implies {expected:?}")]
    ShapeMismatch {
        /// The checkpoint key.
        key: String,
        /// The shape the model needs.
        expected: Vec<i64>,
        /// The shape in the file.
        found: Vec<i64>,
    },
    /// A tensor is stored with a dtype that cannot hold weights (e.g. an integer type).
    #[error(
        "tensor `{key}` is stored as {dtype}, expected a floating-point type (F32, F16, BF16 or F64)"
    )]
    Dtype {
        /// The checkpoint key.
        key: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A weight contains NaN or infinite values (in the file, or after conversion to the
    /// requested precision).
    #[error("tensor `{key}` contains NaN or infinite values{detail}")]
    NonFinite {
        /// The checkpoint key.
        key: String,
        /// Extra context, e.g. an overflow when converting to `f16`.
        detail: String,
    },
    /// The checkpoint holds tensors the model does not use (and that belong to no known other
    /// tower).
    #[error("checkpoint has {} unexpected tensor(s): {}", .keys.len(), .keys.join(", "))]
    UnexpectedTensors {
        /// The unexpected keys, sorted.
        keys: Vec<String>,
    },
    /// No weights were found for a model id.
    #[error("{}", not_found_message(.model, .searched, .hint))]
    WeightsNotFound {
        /// The folder or model id that was asked for.
        model: String,
        /// Every place that was looked at.
        searched: Vec<PathBuf>,
        /// How to get the files.
        hint: String,
    },
    /// A device string is malformed or the device is not available.
    #[error("device: {0}")]
    Device(String),
    /// A precision string is malformed.
    #[error("unknown precision `{0}` (expected f32, f16 or bf16)")]
    Precision(String),
    /// The input has the wrong shape, kind or device.
    #[error("invalid input: {0}")]
    Input(String),
    /// libtorch reported an error.
    #[error("libtorch")]
    Torch(#[from] tch::TchError),
}

fn not_found_message(model: &str, searched: &[PathBuf], hint: &str) -> String {
    let mut s = format!("no weights found for `{model}`; looked in:");
    for p in searched {
        s.push_str("\n  - ");
        s.push_str(&p.display().to_string());
    }
    s.push('\n');
    s.push_str(hint);
    s
}

impl Error {
    /// A configuration error without a file.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            path: None,
            message: message.into(),
        }
    }
}

impl From<Error> for embed_core::Error {
    fn from(e: Error) -> Self {
        embed_core::Error::Model(Box::new(e))
    }
}
