//! What the service serves and how: the collections with their models, and the limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use embed_collection::Verify;
use embed_core::DecodeLimits;

use crate::error::{Error, Result};
use crate::worker::EmbedderFactory;

/// One collection to serve, with the model its vectors were made with.
pub struct CollectionSpec {
    /// The name it is served under (clip-retrieval's `indice_name`): the folder name by default.
    pub name: String,
    /// The collection folder.
    pub dir: PathBuf,
    /// The folder the rows' relative `image_path`s are relative to. Images and thumbnails are
    /// served (and added images stored) only when it is set; absolute `image_path`s are used
    /// as they are.
    pub image_root: Option<PathBuf>,
    /// Builds the collection's model, on the model thread.
    pub embedder: EmbedderFactory,
    /// The HNSW candidate list size for searches (`None`: the collection's own).
    pub ef_search: Option<usize>,
    /// Exact re-ranking factor for searches (see `Collection::set_rerank`; `None`: off).
    pub rerank: Option<usize>,
}

impl CollectionSpec {
    /// The collection in `dir`, served under its folder name, with the model `embedder` builds.
    pub fn new(dir: impl Into<PathBuf>, embedder: EmbedderFactory) -> Result<Self> {
        let dir = dir.into();
        let name = folder_name(&dir)?;
        Ok(Self {
            name,
            dir,
            image_root: None,
            embedder,
            ef_search: None,
            rerank: None,
        })
    }

    /// Sets the image root (see [`CollectionSpec::image_root`]).
    #[must_use]
    pub fn with_image_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.image_root = Some(root.into());
        self
    }
}

impl std::fmt::Debug for CollectionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionSpec")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("image_root", &self.image_root)
            .field("ef_search", &self.ef_search)
            .field("rerank", &self.rerank)
            .finish_non_exhaustive()
    }
}

/// The last component of a collection folder, which names it.
pub fn folder_name(dir: &Path) -> Result<String> {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::Config(format!(
                "{}: no folder name to serve it under",
                dir.display()
            ))
        })
}

/// The model id a collection records (`collection.json`), to load its model by.
pub fn collection_model_id(dir: &Path) -> Result<String> {
    let path = dir.join(embed_collection::MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|source| Error::Io {
        context: format!("{}: not a collection", dir.display()),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    v["model_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("{}: no model_id", path.display())))
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen (default `127.0.0.1:1234`).
    pub addr: SocketAddr,
    /// Largest accepted request body (default 20 MiB).
    pub max_body_bytes: usize,
    /// Limits on decoded images (default: the decoder's, with the file size capped by the
    /// body limit).
    pub decode_limits: DecodeLimits,
    /// Longest a request may take before it is answered with 503 (default 30 s).
    pub request_timeout: Duration,
    /// How long a connection may take to send its request headers, counted from when it
    /// opened or answered its previous request; then it is closed (default 10 s).
    pub header_read_timeout: Duration,
    /// Connections open at once; past it, new ones wait in the listen backlog (default 1,024).
    pub max_connections: usize,
    /// Images that may wait for each model; past it, requests get 503 with `Retry-After`
    /// (default 256).
    pub queue_capacity: usize,
    /// Most images per forward pass (default 32).
    pub max_batch: usize,
    /// How long the model thread waits after an image for others to join its batch
    /// (default 3 ms).
    pub batch_wait: Duration,
    /// Most results one query may ask for (`num_images`, `num_result_ids`, `k`; default 10,000).
    pub max_results: usize,
    /// Images decoded at once (default: the number of CPUs).
    pub decode_threads: usize,
    /// The token that allows adding images (`Authorization: Bearer TOKEN`); `None`: read-only.
    pub add_token: Option<String>,
    /// Ground truth of a DISC21 run: query id → the reference ids that are its true copies.
    /// The page highlights them.
    pub ground_truth: HashMap<String, Vec<String>>,
    /// Longest side of thumbnails (default 256).
    pub thumbnail_side: u32,
    /// Thumbnails kept in memory per collection (default 4,096).
    pub thumbnail_cache: usize,
    /// What opening a collection checks (default: every byte).
    pub verify: Verify,
    /// Stop gracefully on SIGTERM and SIGINT (default true).
    pub handle_signals: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let max_body_bytes = 20 << 20;
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 1234)),
            max_body_bytes,
            decode_limits: DecodeLimits {
                max_file_bytes: max_body_bytes as u64,
                ..DecodeLimits::default()
            },
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            queue_capacity: 256,
            max_batch: 32,
            batch_wait: Duration::from_millis(3),
            max_results: 10_000,
            decode_threads: std::thread::available_parallelism().map_or(2, usize::from),
            add_token: None,
            ground_truth: HashMap::new(),
            thumbnail_side: 256,
            thumbnail_cache: 4096,
            verify: Verify::Full,
            handle_signals: true,
        }
    }
}

/// Reads a DISC21 ground-truth CSV (`query_id,reference_id`, a header line, queries without a
/// copy have an empty reference).
pub fn read_ground_truth(path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("cannot read {}", path.display()),
        source,
    })?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("query_id")) {
            continue;
        }
        let (q, r) = line.split_once(',').ok_or_else(|| {
            Error::Config(format!(
                "{} line {}: expected query_id,reference_id",
                path.display(),
                i + 1
            ))
        })?;
        let (q, r) = (q.trim(), r.trim());
        if !r.is_empty() {
            out.entry(q.to_string()).or_default().push(r.to_string());
        }
    }
    Ok(out)
}
