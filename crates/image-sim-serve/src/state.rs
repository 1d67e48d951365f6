//! The served collections and the helpers every endpoint shares: decoding a posted image,
//! embedding it on the collection's model thread, searching.

use std::collections::{HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use axum::http::StatusCode;
use embed_collection::{Collection, CollectionInfo, LoadedIndex, OpenOptions};
use embed_core::{DecodeOptions, RgbImage};
use tokio::sync::Semaphore;

use crate::config::{CollectionSpec, ServeConfig};
use crate::error::{ApiError, ApiResult, Error, Result};
use crate::metrics::Metrics;
use crate::worker::{EmbedError, ModelWorker};

/// One served collection.
pub(crate) struct Served {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) image_root: Option<PathBuf>,
    pub(crate) ef_search: Option<usize>,
    pub(crate) rerank: Option<usize>,
    collection: RwLock<Arc<Collection>>,
    pub(crate) info: CollectionInfo,
    pub(crate) worker: ModelWorker,
    /// One append at a time.
    pub(crate) add_lock: tokio::sync::Mutex<()>,
    thumbs: Mutex<ThumbCache>,
}

/// The whole service's state.
pub(crate) struct App {
    pub(crate) config: ServeConfig,
    pub(crate) collections: Vec<Arc<Served>>,
    by_name: HashMap<String, usize>,
    pub(crate) metrics: Metrics,
    decode_permits: Semaphore,
}

/// One search result, owned.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) row: usize,
    pub(crate) score: f32,
    pub(crate) id: String,
    pub(crate) image_path: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

impl Hit {
    /// Row `row` of a collection, with its metadata `image` and `score`.
    pub(crate) fn of_row(row: usize, image: &embed_collection::ImageRow, score: f32) -> Self {
        Self {
            row,
            score,
            id: image.id.clone(),
            image_path: image.image_path.clone(),
            width: image.width,
            height: image.height,
        }
    }
}

impl App {
    /// Opens every collection and starts its model thread.
    pub(crate) fn open(config: ServeConfig, specs: Vec<CollectionSpec>) -> Result<Self> {
        if specs.is_empty() {
            return Err(Error::Config("no collection to serve".into()));
        }
        let mut collections = Vec::new();
        let mut by_name = HashMap::new();
        for spec in specs {
            if by_name.contains_key(&spec.name) {
                return Err(Error::Config(format!(
                    "two collections named {}: serve folders with different names",
                    spec.name
                )));
            }
            let served = Served::open(spec, &config)?;
            by_name.insert(served.name.clone(), collections.len());
            collections.push(Arc::new(served));
        }
        let decode_permits = Semaphore::new(config.decode_threads.max(1));
        Ok(Self {
            config,
            collections,
            by_name,
            metrics: Metrics::default(),
            decode_permits,
        })
    }

    /// The collection served under `name`, or 404.
    pub(crate) fn get(&self, name: &str) -> ApiResult<&Arc<Served>> {
        self.by_name
            .get(name)
            .map(|&i| &self.collections[i])
            .ok_or_else(|| {
                let names: Vec<&str> = self.collections.iter().map(|c| c.name.as_str()).collect();
                ApiError::not_found(format!(
                    "no collection named {name:?}; served: {}",
                    names.join(", ")
                ))
            })
    }

    /// Decodes image bytes (within the limits) and preprocesses them for `served`'s model.
    pub(crate) async fn decode(
        &self,
        served: &Arc<Served>,
        bytes: Vec<u8>,
    ) -> ApiResult<(embed_core::ndarray::Array3<f32>, (u32, u32))> {
        let _permit = self
            .decode_permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("shutting down"))?;
        let spec = served.worker.info.spec.clone();
        let limits = self.config.decode_limits;
        tokio::task::spawn_blocking(move || {
            let options = DecodeOptions {
                limits,
                window_for: Some(spec.geometry()),
                ..DecodeOptions::default()
            };
            let image = embed_core::decode_bytes(&bytes, &options)
                .map_err(|e| ApiError::from_decode(&e))?;
            let size = image.full_size();
            let pixels = spec
                .preprocess(&image)
                .map_err(|e| ApiError::bad_request(format!("cannot preprocess the image: {e}")))?;
            Ok((pixels, size))
        })
        .await
        .map_err(|e| ApiError::internal(format!("decoding failed: {e}")))?
    }

    /// Decodes, preprocesses and embeds an image with `served`'s model: the unit vector and
    /// the image's size.
    pub(crate) async fn embed_bytes(
        &self,
        served: &Arc<Served>,
        bytes: Vec<u8>,
    ) -> ApiResult<(Vec<f32>, (u32, u32))> {
        let (pixels, size) = self.decode(served, bytes).await?;
        let v = served.worker.embed(pixels).await.map_err(|e| match e {
            EmbedError::Busy => ApiError::busy(
                format!(
                    "{}: the model's queue is full, try again shortly",
                    served.name
                ),
                1,
            ),
            EmbedError::Failed(m) => ApiError::internal(m),
        })?;
        Ok((v, size))
    }

    /// Decodes an image file for display (thumbnails), within the limits.
    pub(crate) async fn decode_for_display(&self, bytes: Vec<u8>) -> ApiResult<RgbImage> {
        let _permit = self
            .decode_permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("shutting down"))?;
        let limits = self.config.decode_limits;
        tokio::task::spawn_blocking(move || {
            let options = DecodeOptions {
                limits,
                ..DecodeOptions::default()
            };
            embed_core::decode_bytes(&bytes, &options).map_err(|e| ApiError::from_decode(&e))
        })
        .await
        .map_err(|e| ApiError::internal(format!("decoding failed: {e}")))?
    }
}

impl Served {
    fn open(spec: CollectionSpec, config: &ServeConfig) -> Result<Self> {
        let name = spec.name.clone();
        let collection =
            open_collection(&spec.dir, config, spec.ef_search, spec.rerank).map_err(|source| {
                Error::Collection {
                    name: name.clone(),
                    source,
                }
            })?;
        let info = collection.info().map_err(|source| Error::Collection {
            name: name.clone(),
            source,
        })?;
        let worker = ModelWorker::start(
            &name,
            spec.embedder,
            config.queue_capacity,
            config.max_batch,
            config.batch_wait,
        )
        .map_err(|message| Error::Model {
            name: name.clone(),
            message,
        })?;
        let model = &worker.info;
        let fail = |message: String| {
            worker.stop();
            Err(Error::Model {
                name: name.clone(),
                message,
            })
        };
        if model.dim != info.dim {
            return fail(format!(
                "the model {} gives vectors of dimension {}, the collection holds {}",
                model.model_id, model.dim, info.dim
            ));
        }
        if model.model_id != info.model_id {
            return fail(format!(
                "the collection was made with {}, the model is {}",
                info.model_id, model.model_id
            ));
        }
        log::info!(
            "serving {name}: {} vectors of dimension {} ({}) from {}",
            collection.len(),
            info.dim,
            info.model_id,
            spec.dir.display()
        );
        Ok(Self {
            name,
            dir: spec.dir,
            image_root: spec.image_root,
            ef_search: spec.ef_search,
            rerank: spec.rerank,
            collection: RwLock::new(Arc::new(collection)),
            info,
            worker,
            add_lock: tokio::sync::Mutex::new(()),
            thumbs: Mutex::new(ThumbCache::new(config.thumbnail_cache)),
        })
    }

    /// The current version of the collection.
    pub(crate) fn collection(&self) -> Arc<Collection> {
        match self.collection.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the collection by a newer version.
    pub(crate) fn replace(&self, c: Collection) {
        match self.collection.write() {
            Ok(mut g) => *g = Arc::new(c),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(c),
        }
    }

    /// Checks a query vector's length against the collection's dimension.
    pub(crate) fn check_dim(&self, v: &[f32]) -> ApiResult<()> {
        if v.len() != self.info.dim {
            return Err(ApiError::bad_request(format!(
                "the vector has {} values, collection {} holds vectors of dimension {}",
                v.len(),
                self.name,
                self.info.dim
            )));
        }
        Ok(())
    }

    /// The `k` nearest rows to `query`, best first, searched on a blocking thread.
    pub(crate) async fn search(&self, query: Vec<f32>, k: usize) -> ApiResult<Vec<Hit>> {
        self.check_dim(&query)?;
        let c = self.collection();
        tokio::task::spawn_blocking(move || {
            let hits = c.search(&query, k).map_err(|e| match e {
                embed_collection::Error::Invalid(m) => ApiError::bad_request(m),
                other => ApiError::internal(other.to_string()),
            })?;
            Ok(hits
                .into_iter()
                .map(|h| Hit::of_row(h.row, h.image, h.score))
                .collect())
        })
        .await
        .map_err(|e| ApiError::internal(format!("search failed: {e}")))?
    }

    /// The stored vector of a row, when the index keeps it addressable (flat indexes).
    pub(crate) fn stored_vector(&self, row: usize) -> Option<Vec<f32>> {
        match self.collection().index() {
            LoadedIndex::Flat(f) => f.vector(row),
            _ => None,
        }
    }

    /// The file of a row's image: its absolute `image_path`, or its relative one under the
    /// image root. Only paths the collection lists are ever opened; a relative path that
    /// climbs out of the root is refused.
    pub(crate) fn image_file(&self, row: usize) -> ApiResult<PathBuf> {
        let c = self.collection();
        let r = c.row(row).ok_or_else(|| {
            ApiError::not_found(format!(
                "row {row} is not in collection {} ({} rows)",
                self.name,
                c.len()
            ))
        })?;
        let p = Path::new(&r.image_path);
        if p.is_absolute() {
            return Ok(p.to_path_buf());
        }
        let root = self.image_root.as_ref().ok_or_else(|| {
            ApiError::not_found(format!(
                "collection {} is served without its images (no image root)",
                self.name
            ))
        })?;
        if p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("row {row}'s image path leaves the image root"),
            ));
        }
        Ok(root.join(p))
    }

    pub(crate) fn cached_thumbnail(&self, row: usize) -> Option<Arc<Vec<u8>>> {
        self.thumbs.lock().ok().and_then(|t| t.get(row))
    }

    pub(crate) fn cache_thumbnail(&self, row: usize, jpeg: Arc<Vec<u8>>) {
        if let Ok(mut t) = self.thumbs.lock() {
            t.put(row, jpeg);
        }
    }
}

/// Opens a collection with the configured verification and search settings.
pub(crate) fn open_collection(
    dir: &Path,
    config: &ServeConfig,
    ef_search: Option<usize>,
    rerank: Option<usize>,
) -> embed_collection::Result<Collection> {
    let mut c = Collection::open_with(
        dir,
        OpenOptions {
            verify: config.verify,
            ..OpenOptions::default()
        },
    )?;
    if let Some(ef) = ef_search {
        c.set_ef_search(ef)?;
    }
    if let Some(factor) = rerank {
        c.set_rerank(factor)?;
    }
    Ok(c)
}

/// A bounded first-in first-out cache of encoded thumbnails.
struct ThumbCache {
    capacity: usize,
    map: HashMap<usize, Arc<Vec<u8>>>,
    order: VecDeque<usize>,
}

impl ThumbCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&self, row: usize) -> Option<Arc<Vec<u8>>> {
        self.map.get(&row).cloned()
    }

    fn put(&mut self, row: usize, jpeg: Arc<Vec<u8>>) {
        if self.capacity == 0 || self.map.contains_key(&row) {
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.map.insert(row, jpeg);
        self.order.push_back(row);
    }
}
