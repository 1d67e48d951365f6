//! The error type of `embed-core`.
//!
//! Every message is complete on its own, the underlying error's text included (an I/O error's,
//! a model backend's): callers keep these messages as strings (the reasons files were
//! skipped, for one). So [`std::error::Error::source`] does not return those causes again, and
//! printing the chain shows each cause once. (`thiserror` returns a field named `source` as the
//! source whatever the message says, hence the hand-written impls.)

use std::fmt;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding, preprocessing or embedding images.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (its text is part of this error's message).
        source: std::io::Error,
    },
    /// The bytes are not an image in a supported format.
    UnknownFormat {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the first bytes looked like.
        detail: Option<String>,
    },
    /// The image is damaged, truncated or uses an unsupported feature.
    Decode {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The container format.
        format: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// The image header claims a size beyond the configured limits (decompression bomb guard),
    /// or the file is larger than allowed.
    TooLarge {
        /// The file, when known.
        path: Option<PathBuf>,
        /// Claimed width; 0 with `height` when no size was read (the file-size limit is
        /// checked before reading).
        width: u64,
        /// Claimed height (see `width`).
        height: u64,
        /// Which limit it broke.
        reason: String,
    },
    /// A preprocessing configuration is unusable.
    Config(String),
    /// Arrays of the wrong shape were passed or returned.
    Shape(String),
    /// An argument is out of range.
    InvalidArgument(String),
    /// A `.npy` file is malformed or holds another dtype or rank.
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model failed (errors of the backend, e.g. libtorch). Displays as the backend's
    /// error, and its source is the backend error's source.
    Model(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::UnknownFormat { path, detail } => {
                write!(f, "{}unrecognised image format", path_prefix(path))?;
                match detail {
                    Some(d) => write!(f, " ({d})"),
                    None => Ok(()),
                }
            }
            Self::Decode {
                path,
                format,
                message,
            } => write!(
                f,
                "{}cannot decode {format} image: {message}",
                path_prefix(path)
            ),
            Self::TooLarge {
                path,
                width,
                height,
                reason,
            } => write!(
                f,
                "{}{} exceeds the decoding limit ({reason})",
                path_prefix(path),
                claimed(*width, *height)
            ),
            Self::Config(message) => write!(f, "invalid preprocessing configuration: {message}"),
            Self::Shape(message) => write!(f, "shape mismatch: {message}"),
            Self::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            Self::Npy { path, message } => write!(f, "{}: {message}", path.display()),
            Self::Model(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The backend's error stands in for this one, so its cause is this one's.
            Self::Model(e) => e.source(),
            // An I/O error's text is already in the message.
            _ => None,
        }
    }
}

/// "image of W×H", or "image" when the size is unknown (both 0).
fn claimed(width: u64, height: u64) -> String {
    if (width, height) == (0, 0) {
        "image".into()
    } else {
        format!("image of {width}×{height}")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and its sources joined by ": ", as `anyhow`'s `{:#}` prints a chain.
    fn chain(err: &(dyn std::error::Error + 'static)) -> String {
        let mut parts = vec![err.to_string()];
        let mut cause = err.source();
        while let Some(c) = cause {
            parts.push(c.to_string());
            cause = c.source();
        }
        parts.join(": ")
    }

    #[test]
    fn an_io_error_prints_its_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "access denied");
        let err = Error::Io {
            path: "a.jpg".into(),
            source: io,
        };
        assert_eq!(err.to_string(), "cannot read a.jpg: access denied");
        assert_eq!(chain(&err), "cannot read a.jpg: access denied");
    }

    #[test]
    fn a_model_error_is_its_backends() {
        #[derive(Debug)]
        struct Backend(std::io::Error);
        impl fmt::Display for Backend {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("forward failed")
            }
        }
        impl std::error::Error for Backend {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Error::Model(Box::new(Backend(std::io::Error::other("out of memory"))));
        assert_eq!(err.to_string(), "forward failed");
        assert_eq!(chain(&err), "forward failed: out of memory");
    }

    #[test]
    fn messages_of_the_other_variants() {
        let cases = [
            (
                Error::UnknownFormat {
                    path: Some("x.png".into()),
                    detail: Some("4 bytes starting 00 01 02 03".into()),
                },
                "x.png: unrecognised image format (4 bytes starting 00 01 02 03)",
            ),
            (
                Error::Decode {
                    path: None,
                    format: "PNG",
                    message: "bad CRC".into(),
                },
                "cannot decode PNG image: bad CRC",
            ),
            (
                Error::TooLarge {
                    path: None,
                    width: 70_000,
                    height: 16,
                    reason: "largest side allowed is 65535".into(),
                },
                "image of 70000×16 exceeds the decoding limit (largest side allowed is 65535)",
            ),
            (
                Error::Npy {
                    path: "e.npy".into(),
                    message: "not float32".into(),
                },
                "e.npy: not float32",
            ),
            (Error::Shape("3 × 4".into()), "shape mismatch: 3 × 4"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            assert!(std::error::Error::source(&err).is_none());
        }
    }
}
