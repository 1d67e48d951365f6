//! Opening a collection: every file checked against `collection.json`, the metadata held in
//! memory, the index loaded for search.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::{AnyIndex, IndexKind};

use crate::commit::{self, WriterLock};
use crate::error::{Error, Result, damaged, io_err};
use crate::manifest::{CollectionInfo, INDEX_FILE, IndexSpec, MANIFEST_FILE, Manifest, Skipped};
use crate::metadata::{self, ImageRow};
use crate::npy;
use crate::writer::{CollectionWriter, file_crc};

/// How much [`Collection::open_with`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Every file's size and CRC-32 (reads every byte once).
    #[default]
    Full,
    /// Sizes, headers and row counts of every file, CRC-32 of the metadata only: for large
    /// collections opened often; damage inside vectors goes unnoticed.
    Quick,
}

/// Options of [`Collection::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// What to check.
    pub verify: Verify,
    /// How long to wait for another process's commit to finish.
    pub wait: Duration,
}

impl Default for OpenOptions {
    /// Full verification, waiting up to 60 s for a commit in progress.
    fn default() -> Self {
        Self {
            verify: Verify::Full,
            wait: Duration::from_secs(60),
        }
    }
}

/// The loaded index: any kind vecindex builds (the FAISS flat file memory-mapped).
pub type LoadedIndex = AnyIndex;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchHit<'a> {
    /// The row (the vector's id, as clip-retrieval counts it).
    pub row: usize,
    /// Similarity, greater is closer: the cosine for an `ip` collection, minus the squared
    /// distance of the unit vectors for `l2`.
    pub score: f32,
    /// The row's metadata.
    pub image: &'a ImageRow,
}

/// An opened, verified collection.
#[derive(Debug)]
pub struct Collection {
    dir: PathBuf,
    manifest: Manifest,
    rows: Vec<ImageRow>,
    index: LoadedIndex,
    by_path: OnceLock<HashMap<String, usize>>,
    by_id: OnceLock<HashMap<String, usize>>,
    /// Exact re-ranking: the factor and the shards' rows (see [`Collection::set_rerank`]).
    rerank: Option<(usize, npy::RowReader)>,
}

impl Collection {
    /// Opens the collection in `dir` with [`OpenOptions::default`].
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, OpenOptions::default())
    }

    /// Opens the collection in `dir`: finishes a commit a dead writer left (when this process
    /// can take the writer lock), then checks every file against `collection.json` before
    /// anything is parsed. Any missing, truncated, changed or inconsistent file is an
    /// [`Error::Damaged`] naming it.
    pub fn open_with(dir: &Path, options: OpenOptions) -> Result<Self> {
        let start = Instant::now();
        loop {
            if commit::journal_exists(dir) {
                match WriterLock::acquire_within(dir, Duration::ZERO) {
                    Ok(lock) => {
                        commit::recover(dir, &lock)?;
                    }
                    Err(Error::Busy(_)) => {
                        if start.elapsed() > options.wait {
                            return Err(Error::CommitInProgress(dir.to_path_buf()));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let before = read_manifest_bytes(dir)?;
            let result = Self::load(dir, &before, options.verify);
            let after = read_manifest_bytes(dir).ok();
            if !commit::journal_exists(dir) && after.as_deref() == Some(&before[..]) {
                return result;
            }
            // A commit ran while we read: read the new version.
            if start.elapsed() > options.wait {
                return Err(Error::CommitInProgress(dir.to_path_buf()));
            }
        }
    }

    /// Opens with the writer lock already held (no commit can run).
    pub(crate) fn open_locked(dir: &Path) -> Result<Self> {
        let bytes = read_manifest_bytes(dir)?;
        Self::load(dir, &bytes, Verify::Full)
    }

    fn load(dir: &Path, manifest_bytes: &[u8], verify: Verify) -> Result<Self> {
        let manifest = Manifest::parse(&dir.join(MANIFEST_FILE), manifest_bytes)?;
        // Sizes first (cheap, catches missing and truncated files), then checksums.
        for f in &manifest.files {
            let path = dir.join(&f.path);
            let len = std::fs::metadata(&path)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => damaged(&path, "missing"),
                    _ => io_err(&path)(e),
                })?
                .len();
            if len != f.bytes {
                return Err(damaged(
                    &path,
                    format!("{len} bytes, collection.json says {}", f.bytes),
                ));
            }
        }
        manifest
            .files
            .par_iter()
            .filter(|f| verify == Verify::Full || f.path.ends_with(".parquet"))
            .try_for_each(|f| {
                let path = dir.join(&f.path);
                let (_, crc) = file_crc(&path)?;
                if format!("{crc:08x}") != f.crc32 {
                    return Err(damaged(
                        &path,
                        format!(
                            "checksum {crc:08x}, collection.json says {}: the file was changed",
                            f.crc32
                        ),
                    ));
                }
                Ok(())
            })?;
        let shard_rows: Vec<Vec<ImageRow>> = manifest
            .shards
            .par_iter()
            .map(|s| {
                let npy_path = dir.join(&s.embeddings);
                let info = npy::read_info(&npy_path)?;
                if info.rows as u64 != s.rows || info.dim != manifest.dim {
                    return Err(damaged(
                        &npy_path,
                        format!(
                            "{} x {} vectors, collection.json says {} x {}",
                            info.rows, info.dim, s.rows, manifest.dim
                        ),
                    ));
                }
                if info.dtype != manifest.dtype {
                    return Err(damaged(
                        &npy_path,
                        format!("{}, collection.json says {}", info.dtype, manifest.dtype),
                    ));
                }
                let meta_path = dir.join(&s.metadata);
                let rows = metadata::read(&meta_path)?;
                if rows.len() as u64 != s.rows {
                    return Err(damaged(
                        &meta_path,
                        format!(
                            "{} rows, but {} holds {} vectors",
                            rows.len(),
                            s.embeddings,
                            s.rows
                        ),
                    ));
                }
                Ok(rows)
            })
            .collect::<Result<_>>()?;
        let rows: Vec<ImageRow> = shard_rows.into_iter().flatten().collect();

        let index_path = dir.join(INDEX_FILE);
        let kind =
            vecindex::peek_kind(&index_path).map_err(|e| damaged(&index_path, e.to_string()))?;
        let expected = match manifest.index {
            IndexSpec::Flat => IndexKind::Faiss,
            IndexSpec::Hnsw { .. } => IndexKind::Hnsw,
            IndexSpec::Sq8 | IndexSpec::F16 => IndexKind::FaissSq,
            IndexSpec::HnswSq8 { .. } => IndexKind::FaissHnswSq,
            IndexSpec::IvfPq { .. } => IndexKind::FaissIvfPq,
        };
        // An empty collection of an index held in memory keeps an empty flat index (see the
        // writer).
        let empty_in_memory =
            kind == IndexKind::Flat && manifest.rows == 0 && manifest.index != IndexSpec::Flat;
        if kind != expected && !empty_in_memory {
            return Err(damaged(
                &index_path,
                format!(
                    "a {kind:?} index, collection.json says {:?}",
                    manifest.index
                ),
            ));
        }
        let options = ReadOptions {
            mmap: true,
            ids: IdSource::NoSidecar,
        };
        let index = AnyIndex::open(&index_path, options)
            .map_err(|e| damaged(&index_path, e.to_string()))?;
        if index.kind() != manifest.index.kind() && manifest.rows > 0 {
            return Err(damaged(
                &index_path,
                format!(
                    "a {} index, collection.json says {}",
                    index.kind(),
                    manifest.index.kind()
                ),
            ));
        }
        let ix = index.as_dyn();
        let metric: vecindex::Metric = manifest.metric.parse()?;
        if ix.len() != rows.len() || ix.dim() != manifest.dim || ix.metric() != metric {
            return Err(damaged(
                &index_path,
                format!(
                    "{} vectors of dimension {} ({}), the collection has {} of {} ({metric})",
                    ix.len(),
                    ix.dim(),
                    ix.metric(),
                    rows.len(),
                    manifest.dim
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            rows,
            index,
            by_path: OnceLock::new(),
            by_id: OnceLock::new(),
            rerank: None,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The content of `collection.json`.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The identity (model, weights, preprocessing, dim, metric, dtype, index, source).
    pub fn info(&self) -> Result<CollectionInfo> {
        self.manifest.info()
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the collection holds no vector.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Metadata of every row, in row order.
    pub fn rows(&self) -> &[ImageRow] {
        &self.rows
    }

    /// Metadata of one row.
    pub fn row(&self, row: usize) -> Option<&ImageRow> {
        self.rows.get(row)
    }

    /// The images that were skipped, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.manifest.skipped
    }

    /// The row of an image path, if present.
    pub fn row_of_path(&self, image_path: &str) -> Option<usize> {
        self.by_path
            .get_or_init(|| {
                let it = self.rows.iter().enumerate();
                it.map(|(i, r)| (r.image_path.clone(), i)).collect()
            })
            .get(image_path)
            .copied()
    }

    /// Whether an image path is in the collection (to append new images only).
    pub fn contains_path(&self, image_path: &str) -> bool {
        self.row_of_path(image_path).is_some()
    }

    /// The row of an id, if present.
    pub fn row_of_id(&self, id: &str) -> Option<usize> {
        self.by_id
            .get_or_init(|| {
                let it = self.rows.iter().enumerate();
                it.map(|(i, r)| (r.id.clone(), i)).collect()
            })
            .get(id)
            .copied()
    }

    /// The loaded index.
    pub fn index(&self) -> &LoadedIndex {
        &self.index
    }

    /// Sets the HNSW candidate list size used by searches (no effect on the other kinds).
    pub fn set_ef_search(&mut self, ef: usize) -> Result<()> {
        self.index.set_ef_search(ef)?;
        Ok(())
    }

    /// Sets the inverted lists an IVF-PQ search visits (no effect on the other kinds).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.index.set_nprobe(nprobe);
    }

    /// Re-ranks searches exactly: the index returns `k × factor` candidates, each is scored
    /// with its stored vector (read from the shards, one row at a time) and the best `k` are
    /// kept, so scores are those of exact search. For the compressed kinds (`sq8`, `f16`,
    /// `hnsw-sq8`, `ivfpq`), whose own scores are approximate; `factor` 0 or 1 turns it off.
    /// Fails if a shard cannot be opened.
    pub fn set_rerank(&mut self, factor: usize) -> Result<()> {
        self.rerank = if factor > 1 {
            let paths: Vec<PathBuf> = self
                .manifest
                .shards
                .iter()
                .map(|s| self.dir.join(&s.embeddings))
                .collect();
            Some((factor, npy::RowReader::open(&paths)?))
        } else {
            None
        };
        Ok(())
    }

    /// The re-ranking factor (1: off).
    pub fn rerank_factor(&self) -> usize {
        self.rerank.as_ref().map_or(1, |(factor, _)| *factor)
    }

    /// The `k` rows most similar to `query` (normalised first, as the rows are), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<SearchHit<'_>>> {
        let mut all = self.search_batch(query, k)?;
        all.pop()
            .ok_or_else(|| Error::Invalid("empty query".into()))
    }

    /// [`Collection::search`] for a batch of row-major queries.
    pub fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<SearchHit<'_>>>> {
        let dim = self.manifest.dim;
        if queries.is_empty() || !queries.len().is_multiple_of(dim) {
            return Err(Error::Invalid(format!(
                "{} floats are not whole queries of dimension {dim}",
                queries.len()
            )));
        }
        let mut unit = Vec::with_capacity(queries.len());
        for q in queries.chunks_exact(dim) {
            let norm = q
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(Error::Invalid("a query is zero or not finite".into()));
            }
            unit.extend(q.iter().map(|&x| (f64::from(x) / norm) as f32));
        }
        let index = self.index.as_dyn();
        let hits = match &self.rerank {
            None => index.search(&unit, k)?,
            Some((factor, rows)) => {
                let candidates = index.search(&unit, k.saturating_mul(*factor))?;
                vecindex::rerank::rescore(index.metric(), dim, &unit, candidates, k, |row, v| {
                    rows.read(row, v)
                })?
            }
        };
        hits.into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|h| {
                        let image = self.rows.get(h.row).ok_or_else(|| {
                            damaged(
                                &self.dir.join(INDEX_FILE),
                                format!("row {} out of range", h.row),
                            )
                        })?;
                        Ok(SearchHit {
                            row: h.row,
                            score: h.score,
                            image,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Calls `each(first_row, rows)` on consecutive blocks of the stored vectors (widened to
    /// f32), in row order.
    pub fn for_each_vector_block(
        &self,
        mut each: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let mut base = 0;
        for s in &self.manifest.shards {
            let path = self.dir.join(&s.embeddings);
            let info = npy::read_info(&path)?;
            npy::for_each_block(&path, &info, 4096, |first, rows| each(base + first, rows))?;
            base += info.rows;
        }
        Ok(())
    }

    /// Starts an append to this collection (see [`CollectionWriter::append`]); refused while
    /// another process writes it or if the collection changed since it was opened.
    pub fn append(self, info: CollectionInfo) -> Result<CollectionWriter> {
        let lock = WriterLock::acquire(&self.dir)?;
        commit::recover(&self.dir, &lock)?;
        let now = read_manifest_bytes(&self.dir)?;
        let same =
            Manifest::parse(&self.dir.join(MANIFEST_FILE), &now).is_ok_and(|m| m == self.manifest);
        if !same {
            return Err(Error::Mismatch(format!(
                "{}: the collection changed since it was opened; open it again",
                self.dir.display()
            )));
        }
        CollectionWriter::append_to(self, lock, info)
    }
}

fn read_manifest_bytes(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(MANIFEST_FILE);
    std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotACollection(dir.to_path_buf()),
        _ => io_err(&path)(e),
    })
}
