//! The sidecar that makes a FAISS file this crate writes checkable: `<index>.meta.json`.
//!
//! FAISS files carry no checksum, so a flipped bit in a vector would be searched silently.
//! Beside each FAISS file it writes ([`FlatIndex::write_faiss`],
//! [`FlatIndex::write_faiss_with_ids`], and the `write_faiss` of the scalar quantiser,
//! HNSW-SQ and IVF-PQ indexes), this crate writes:
//!
//! ```json
//! {
//!   "format": "vecindex-faiss-sidecar",
//!   "version": 1,
//!   "metric": "cosine",
//!   "index": { "bytes": 3245, "crc32": 2868573214 },
//!   "ids": { "bytes": 400, "crc32": 1015617270 }
//! }
//! ```
//!
//! `metric` is `ip`, `l2` or `cosine` (a cosine index is an inner-product FAISS file over
//! normalised vectors: only this sidecar says that it is cosine); `index` holds the index file's length
//! and CRC-32 (IEEE, as `zlib.crc32` computes it), `ids` those of the ids sidecar
//! (`<index>.ids`), or `null` when none was written. [`FlatIndex::read_faiss`] (and each
//! compressed kind's `read_faiss`) checks the index file (and the ids sidecar when it reads
//! it) against them, memory-mapped or not, and refuses a file that differs with
//! [`Error::Damaged`]. Without this sidecar (files written by
//! FAISS, or by this crate before it wrote one) a FAISS file loads unchecked, as FAISS loads it.
//!
//! [`FlatIndex::write_faiss`]: crate::FlatIndex::write_faiss
//! [`FlatIndex::write_faiss_with_ids`]: crate::FlatIndex::write_faiss_with_ids
//! [`FlatIndex::read_faiss`]: crate::FlatIndex::read_faiss
//! [`Error::Damaged`]: crate::Error::Damaged

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Metric;
use crate::error::{Error, Result, format_err, io_err};
use crate::persist::AtomicFile;

/// The `format` field, naming what the JSON is.
const FORMAT: &str = "vecindex-faiss-sidecar";
/// The `version` field written (and the highest read).
const VERSION: u32 = 1;

/// The sidecar path of a FAISS file: the path with `.meta.json` appended
/// (`refs.faiss.meta.json`).
pub fn meta_path(index_path: &Path) -> PathBuf {
    let mut s = index_path.as_os_str().to_owned();
    s.push(".meta.json");
    PathBuf::from(s)
}

/// The length and CRC-32 of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileCheck {
    pub(crate) bytes: u64,
    pub(crate) crc32: u32,
}

impl FileCheck {
    /// Of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        }
    }

    /// Of a whole file, read in 1 MiB pieces.
    pub(crate) fn of_file(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(io_err(path))?;
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            bytes += n as u64;
        }
        Ok(Self {
            bytes,
            crc32: crc.finalize(),
        })
    }

    /// Errors with [`Error::Damaged`] unless `found`, read from `path`, is this.
    pub(crate) fn verify(&self, path: &Path, found: FileCheck) -> Result<()> {
        if found == *self {
            return Ok(());
        }
        let what = if found.bytes == self.bytes {
            format!(
                "its CRC-32 is {:08x}, {} recorded {:08x} when it was written",
                found.crc32,
                meta_path_name(path),
                self.crc32
            )
        } else {
            format!(
                "it holds {} bytes, {} recorded {} when it was written",
                found.bytes,
                meta_path_name(path),
                self.bytes
            )
        };
        Err(Error::Damaged {
            path: path.to_path_buf(),
            message: what,
        })
    }
}

/// The file name of the sidecar that records `path` (itself, or its ids sidecar), for
/// messages.
fn meta_path_name(path: &Path) -> String {
    let index = match path.to_str().and_then(|p| p.strip_suffix(".ids")) {
        Some(index) => PathBuf::from(index),
        None => path.to_path_buf(),
    };
    meta_path(&index).file_name().map_or_else(
        || "the sidecar".into(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The sidecar's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FaissMeta {
    format: String,
    version: u32,
    metric: String,
    pub(crate) index: FileCheck,
    #[serde(default)]
    pub(crate) ids: Option<FileCheck>,
}

impl FaissMeta {
    /// The metric the sidecar records, checked against the FAISS header's `metric_type`
    /// (cosine indexes are inner-product files).
    pub(crate) fn metric(&self, path: &Path, faiss_metric: Metric) -> Result<Metric> {
        let metric: Metric = self
            .metric
            .parse()
            .map_err(|_| format_err(&meta_path(path), format!("metric {:?}", self.metric)))?;
        if metric.faiss_code() != faiss_metric.faiss_code() {
            return Err(format_err(
                path,
                format!(
                    "{} says {metric}, the file is {faiss_metric}",
                    meta_path_name(path)
                ),
            ));
        }
        Ok(metric)
    }
}

/// Reads the sidecar of `index_path`; `None` when there is none.
pub(crate) fn read(index_path: &Path) -> Result<Option<FaissMeta>> {
    let path = meta_path(index_path);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let meta: FaissMeta = serde_json::from_str(&text)
        .map_err(|e| format_err(&path, format!("not a vecindex FAISS sidecar: {e}")))?;
    if meta.format != FORMAT || meta.version == 0 || meta.version > VERSION {
        return Err(format_err(
            &path,
            format!(
                "{:?} version {}, this build reads {FORMAT:?} version {VERSION}",
                meta.format, meta.version
            ),
        ));
    }
    Ok(Some(meta))
}

/// Removes the sidecar of `index_path`, if there is one (before the index is rewritten, so
/// that an interrupted write leaves an unchecked file rather than a stale record).
pub(crate) fn remove(index_path: &Path) -> Result<()> {
    let path = meta_path(index_path);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
        _ => Ok(()),
    }
}

/// Writes the sidecar of `index_path` atomically.
pub(crate) fn write(
    index_path: &Path,
    metric: Metric,
    index: FileCheck,
    ids: Option<FileCheck>,
) -> Result<()> {
    let meta = FaissMeta {
        format: FORMAT.into(),
        version: VERSION,
        metric: metric.to_string(),
        index,
        ids,
    };
    let path = meta_path(index_path);
    let mut text = serde_json::to_string_pretty(&meta)
        .map_err(|e| format_err(&path, format!("cannot encode: {e}")))?;
    text.push('\n');
    let mut f = AtomicFile::create(&path)?;
    f.write_all(text.as_bytes())?;
    f.commit()
}
