//! Writing a collection: a new one, a replacement, or an append to an existing one. Every
//! version is committed with the protocol of [`crate::commit`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use vecindex::AnyIndex;
use vecindex::faiss_io::{self, IdSource, ReadOptions};

use crate::commit::{self, Journal, STAGING, WriterLock};
use crate::error::{Error, Result, damaged, io_err};
use crate::faiss_flat::FlatWriter;
use crate::manifest::{
    CollectionInfo, FORMAT, FORMAT_VERSION, FileEntry, INDEX_FILE, IndexSpec, MANIFEST_FILE,
    Manifest, SKIPPED_FILE, ShardEntry, Skipped, shard_names, skipped_csv,
};
use crate::metadata::{self, ImageRow};
use crate::npy::{self, NpyWriter};

/// How a writer lays out and builds what it writes (none of this is part of the identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Rows per `.npy`/`.parquet` shard pair (the last one holds the rest).
    pub rows_per_file: usize,
    /// Threads that build an HNSW index. One thread makes the graph a function of the rows
    /// and the seed alone (a merged sharded build then answers exactly as an unsharded one);
    /// more threads build faster but not reproducibly.
    pub hnsw_threads: usize,
}

impl Default for WriteOptions {
    /// `rows_per_file = 1_000_000, hnsw_threads = 1`.
    fn default() -> Self {
        Self {
            rows_per_file: 1_000_000,
            hnsw_threads: 1,
        }
    }
}

/// The shard being filled.
struct OpenShard {
    k: usize,
    npy: NpyWriter,
    rows: Vec<ImageRow>,
}

/// What an append starts from.
struct Base {
    manifest: Manifest,
}

/// Writes one collection version; nothing is visible until [`CollectionWriter::finish`]
/// commits it. Dropped without `finish`, it leaves the previous version as it was.
pub struct CollectionWriter {
    dir: PathBuf,
    lock: WriterLock,
    info: CollectionInfo,
    options: WriteOptions,
    /// The version being appended to.
    base: Option<Base>,
    /// The version being replaced (its files not rewritten are deleted on commit).
    replaced: Option<Manifest>,
    shards: Vec<ShardEntry>,
    files: Vec<FileEntry>,
    current: Option<OpenShard>,
    next_k: usize,
    flat: Option<FlatWriter>,
    paths: HashSet<String>,
    ids: HashSet<String>,
    skipped: Vec<Skipped>,
    rows: usize,
    /// Whether `Drop` may remove the staging folder (not once the journal may exist).
    cleanup_on_drop: bool,
}

impl std::fmt::Debug for CollectionWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionWriter")
            .field("dir", &self.dir)
            .field("rows", &self.rows)
            .field("shards", &self.shards.len())
            .finish()
    }
}

fn read_manifest(dir: &Path) -> Result<Option<(Vec<u8>, Manifest)>> {
    let path = dir.join(MANIFEST_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let m = Manifest::parse(&path, &bytes)?;
            Ok(Some((bytes, m)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Refuses `.npy`/`.parquet` files in `sub` that `manifest` does not list: embedding readers
/// glob these folders, so a stray file would become rows of the collection.
fn check_no_strays(dir: &Path, manifest: Option<&Manifest>) -> Result<()> {
    for sub in ["img_emb", "metadata"] {
        let folder = dir.join(sub);
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&folder)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&folder))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{sub}/{name}");
            let listed = manifest.is_some_and(|m| m.file(&rel).is_some());
            if !listed && (name.ends_with(".npy") || name.ends_with(".parquet")) {
                return Err(damaged(
                    &entry.path(),
                    "belongs to no collection; remove it or choose another folder",
                ));
            }
        }
    }
    Ok(())
}

impl CollectionWriter {
    /// Starts a new collection in `dir` (created if needed). Refuses a folder that already
    /// holds one ([`Error::AlreadyExists`]); see [`CollectionWriter::replace`].
    pub fn create(dir: &Path, info: CollectionInfo) -> Result<Self> {
        Self::start(dir, info, false)
    }

    /// Starts a new collection in `dir`, replacing the one there (if any) when committed: until
    /// then the old one stays whole. A requeued shard task rewrites its shard this way.
    pub fn replace(dir: &Path, info: CollectionInfo) -> Result<Self> {
        Self::start(dir, info, true)
    }

    fn start(dir: &Path, info: CollectionInfo, replace: bool) -> Result<Self> {
        info.validate()?;
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = WriterLock::acquire(dir)?;
        commit::recover(dir, &lock)?;
        let old = read_manifest(dir)?.map(|(_, m)| m);
        if old.is_some() && !replace {
            return Err(Error::AlreadyExists(dir.to_path_buf()));
        }
        check_no_strays(dir, old.as_ref())?;
        Self::new(dir, lock, info, None, old)
    }

    /// Starts an append to the collection in `dir`: `info` must describe the same model,
    /// weights, preprocessing, dimension, metric, dtype and index
    /// ([`CollectionInfo::check_compatible`]). New rows get new shards; the index is extended.
    /// Ask [`crate::Collection::contains_path`] (or [`CollectionWriter::contains_path`]) which
    /// images are already in; pushing one again is an error.
    pub fn append(dir: &Path, info: CollectionInfo) -> Result<Self> {
        let lock = WriterLock::acquire(dir)?;
        commit::recover(dir, &lock)?;
        let collection = crate::Collection::open_locked(dir)?;
        Self::append_to(collection, lock, info)
    }

    pub(crate) fn append_to(
        collection: crate::Collection,
        lock: WriterLock,
        info: CollectionInfo,
    ) -> Result<Self> {
        let dir = collection.dir().to_path_buf();
        let existing = collection.manifest().info()?;
        existing.check_compatible(&info)?;
        let mut w = Self::new(
            &dir,
            lock,
            CollectionInfo {
                // The rows now come from the caller's list (typically the same folder, grown):
                // record that one; without a list, the collection keeps the one it had.
                source: info.source.clone().or_else(|| existing.source.clone()),
                ..info
            },
            None,
            None,
        )?;
        for r in collection.rows() {
            w.paths.insert(r.image_path.clone());
            w.ids.insert(r.id.clone());
        }
        w.rows = collection.len();
        w.next_k = collection.manifest().shards.len();
        w.shards = collection.manifest().shards.clone();
        w.skipped = collection.manifest().skipped.clone();
        w.files = collection
            .manifest()
            .files
            .iter()
            .filter(|f| f.path != INDEX_FILE && f.path != SKIPPED_FILE)
            .cloned()
            .collect();
        if let Some(flat) = w.flat.as_mut() {
            flat.copy_rows_of(&dir.join(INDEX_FILE))?;
        }
        w.base = Some(Base {
            manifest: collection.manifest().clone(),
        });
        Ok(w)
    }

    fn new(
        dir: &Path,
        lock: WriterLock,
        info: CollectionInfo,
        base: Option<Base>,
        replaced: Option<Manifest>,
    ) -> Result<Self> {
        let staging = dir.join(STAGING);
        std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
        let flat = match info.index {
            IndexSpec::Flat => Some(FlatWriter::create(
                &staging.join(format!("{INDEX_FILE}.part")),
                info.dim,
                info.metric,
            )?),
            _ => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            lock,
            info,
            options: WriteOptions::default(),
            base,
            replaced,
            shards: Vec::new(),
            files: Vec::new(),
            current: None,
            next_k: 0,
            flat,
            paths: HashSet::new(),
            ids: HashSet::new(),
            skipped: Vec::new(),
            rows: 0,
            cleanup_on_drop: true,
        })
    }

    /// Sets the layout and build options (before the first row).
    pub fn set_options(&mut self, options: WriteOptions) -> Result<()> {
        if options.rows_per_file == 0 || options.hnsw_threads == 0 {
            return Err(Error::Invalid(
                "rows_per_file and hnsw_threads must be at least 1".into(),
            ));
        }
        self.options = options;
        Ok(())
    }

    /// Whether an image path is already in the collection (appended or pushed).
    pub fn contains_path(&self, image_path: &str) -> bool {
        self.paths.contains(image_path)
    }

    /// Rows so far (with the base collection's, for an append).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was written yet.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds rows and their embeddings (`rows.len() * dim` floats, row-major). Each embedding is
    /// L2-normalised (and rounded to f16 for a float16 collection); an embedding that is not
    /// finite or is zero, a repeated image path or id, or a size over `i32::MAX` is an error and
    /// nothing of the batch is added.
    pub fn push_batch(&mut self, rows: &[ImageRow], embeddings: &[f32]) -> Result<()> {
        let dim = self.info.dim;
        if embeddings.len() != rows.len() * dim {
            return Err(Error::Invalid(format!(
                "{} rows need {} floats of dimension {dim}, got {}",
                rows.len(),
                rows.len() * dim,
                embeddings.len()
            )));
        }
        let mut batch_paths = HashSet::new();
        let mut batch_ids = HashSet::new();
        for r in rows {
            if self.paths.contains(&r.image_path) || !batch_paths.insert(r.image_path.as_str()) {
                return Err(Error::Duplicate {
                    what: "image_path",
                    value: r.image_path.clone(),
                });
            }
            if self.ids.contains(&r.id) || !batch_ids.insert(r.id.as_str()) {
                return Err(Error::Duplicate {
                    what: "id",
                    value: r.id.clone(),
                });
            }
            if r.width > i32::MAX as u32 || r.height > i32::MAX as u32 {
                return Err(Error::Invalid(format!(
                    "{}: size {}x{} over Parquet's INT32",
                    r.image_path, r.width, r.height
                )));
            }
        }
        let mut unit = Vec::with_capacity(embeddings.len());
        for (r, v) in rows.iter().zip(embeddings.chunks_exact(dim.max(1))) {
            let norm = v
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(Error::Invalid(format!(
                    "{}: the embedding is zero or not finite",
                    r.image_path
                )));
            }
            unit.extend(
                v.iter()
                    .map(|&x| self.info.dtype.round((f64::from(x) / norm) as f32)),
            );
        }
        let mut done = 0;
        while done < rows.len() {
            if self.current.is_none() {
                let k = self.next_k;
                let path = self.staged(&shard_names(k).0);
                self.current = Some(OpenShard {
                    k,
                    npy: NpyWriter::create(&path, self.info.dtype, dim)?,
                    rows: Vec::new(),
                });
                self.next_k += 1;
            }
            let Some(shard) = self.current.as_mut() else {
                break;
            };
            let n = (self.options.rows_per_file - shard.npy.rows()).min(rows.len() - done);
            let block = &unit[done * dim..(done + n) * dim];
            shard.npy.push(block)?;
            shard.rows.extend_from_slice(&rows[done..done + n]);
            if let Some(flat) = self.flat.as_mut() {
                flat.push(block)?;
            }
            done += n;
            if shard.npy.rows() == self.options.rows_per_file {
                self.close_shard()?;
            }
        }
        for r in rows {
            self.paths.insert(r.image_path.clone());
            self.ids.insert(r.id.clone());
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Records an image that could not be embedded.
    pub fn skip(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// The staging path of a final relative path.
    fn staged(&self, rel: &str) -> PathBuf {
        self.dir.join(STAGING).join(staged_name(rel))
    }

    fn close_shard(&mut self) -> Result<()> {
        let Some(shard) = self.current.take() else {
            return Ok(());
        };
        let (npy_rel, meta_rel) = shard_names(shard.k);
        let rows = shard.npy.rows() as u64;
        let (bytes, crc) = shard.npy.finish()?;
        self.files.push(FileEntry::new(npy_rel.clone(), bytes, crc));
        let (bytes, crc) = metadata::write(&self.staged(&meta_rel), &shard.rows)?;
        self.files
            .push(FileEntry::new(meta_rel.clone(), bytes, crc));
        self.shards.push(ShardEntry {
            embeddings: npy_rel,
            metadata: meta_rel,
            rows,
        });
        Ok(())
    }

    /// Adds an already written shard pair of another collection (verified when it was opened)
    /// as the next shard: hard-linked into the staging folder when possible, else copied.
    pub(crate) fn adopt_shard(
        &mut self,
        npy_path: &Path,
        parquet_path: &Path,
        entries: (&FileEntry, &FileEntry),
        rows: &[ImageRow],
    ) -> Result<()> {
        self.close_shard()?;
        let k = self.next_k;
        self.next_k += 1;
        let (npy_rel, meta_rel) = shard_names(k);
        for (src, rel) in [(npy_path, &npy_rel), (parquet_path, &meta_rel)] {
            let dst = self.staged(rel);
            if std::fs::hard_link(src, &dst).is_err() {
                std::fs::copy(src, &dst).map_err(io_err(&dst))?;
                std::fs::File::open(&dst)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&dst))?;
            }
        }
        for r in rows {
            if !self.paths.insert(r.image_path.clone()) {
                return Err(Error::Duplicate {
                    what: "image_path",
                    value: r.image_path.clone(),
                });
            }
            if !self.ids.insert(r.id.clone()) {
                return Err(Error::Duplicate {
                    what: "id",
                    value: r.id.clone(),
                });
            }
        }
        if let Some(flat) = self.flat.as_mut() {
            let info = npy::read_info(npy_path)?;
            npy::for_each_block(npy_path, &info, 4096, |_, block| flat.push(block))?;
        }
        self.files.push(FileEntry {
            path: npy_rel.clone(),
            ..entries.0.clone()
        });
        self.files.push(FileEntry {
            path: meta_rel.clone(),
            ..entries.1.clone()
        });
        self.shards.push(ShardEntry {
            embeddings: npy_rel,
            metadata: meta_rel,
            rows: rows.len() as u64,
        });
        self.rows += rows.len();
        Ok(())
    }

    /// Adds skipped entries (a merge carries its shards').
    pub(crate) fn extend_skipped(&mut self, skipped: &[Skipped]) {
        self.skipped.extend_from_slice(skipped);
    }

    /// Builds an index held in memory (every kind but flat, which is streamed) over every
    /// row into the staging folder: the base collection's index extended with the new rows
    /// for an append (compressed kinds keep the quantisers they were trained with), else one
    /// built, and trained, on all rows.
    fn build_in_memory(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<()> {
        let first_new = self.base.as_ref().map_or(0, |b| b.manifest.shards.len());
        let mut vectors = Vec::new();
        for s in &self.shards[first_new..] {
            let path = self.staged(&s.embeddings);
            let info = npy::read_info(&path)?;
            npy::for_each_block(&path, &info, 4096, |_, block| {
                vectors.extend_from_slice(block);
                Ok(())
            })?;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.options.hnsw_threads)
            .build()
            .map_err(|e| Error::Invalid(format!("thread pool: {e}")))?;
        let staged = self.staged(INDEX_FILE);
        if self.rows == 0 {
            // vecindex cannot save an HNSW graph without an entry point, nor train a
            // quantiser on nothing: an empty collection keeps an empty flat index (vecindex
            // format) under the same name.
            let empty = vecindex::FlatIndex::new(self.info.dim, self.info.metric)?;
            return Ok(empty.save(&staged)?);
        }
        let start = match &self.base {
            Some(b) => b.manifest.rows as usize,
            None => 0,
        };
        let ids: Vec<String> = (start..self.rows).map(|i| i.to_string()).collect();
        let index = if start > 0 {
            let options = ReadOptions {
                mmap: false,
                ids: IdSource::NoSidecar,
            };
            let mut index = AnyIndex::open(&self.dir.join(INDEX_FILE), options)?;
            pool.install(|| index.add_with_progress(&ids, &vectors, progress))?;
            index
        } else {
            let plan = self.info.index.plan(self.rows, self.info.dim);
            pool.install(|| {
                AnyIndex::build(
                    &plan,
                    self.info.dim,
                    self.info.metric,
                    &ids,
                    &vectors,
                    progress,
                )
            })?
        };
        index
            .with_model_id(self.info.model_id.clone())
            .write(&staged)?;
        // The FAISS kinds' sidecars are not part of a collection: the ids are the row numbers
        // and collection.json holds the checksums.
        for side in [
            faiss_io::sidecar_path(&staged),
            faiss_io::meta_path(&staged),
        ] {
            match std::fs::remove_file(&side) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(&side)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Closes the last shard, builds the index, writes `skipped.csv` and `collection.json`,
    /// and commits the version. Returns the committed manifest.
    pub fn finish(self) -> Result<Manifest> {
        self.finish_with_progress(&|_, _| ())
    }

    /// [`CollectionWriter::finish`], calling `progress(done, total)` while vectors are
    /// inserted into an HNSW index (the long part of finishing a large collection; the other
    /// kinds do not report).
    pub fn finish_with_progress(
        mut self,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Manifest> {
        self.close_shard()?;
        let index_path = self.staged(INDEX_FILE);
        let (bytes, crc) = match self.flat.take() {
            Some(flat) => flat.finish()?,
            None => {
                self.build_in_memory(progress)?;
                file_crc(&index_path)?
            }
        };
        self.files.push(FileEntry::new(INDEX_FILE, bytes, crc));
        let csv = skipped_csv(&self.skipped);
        let (bytes, crc) = commit::write_staged(&self.staged(SKIPPED_FILE), csv.as_bytes())?;
        self.files.push(FileEntry::new(SKIPPED_FILE, bytes, crc));

        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            tool: self.info.tool.clone(),
            committed_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model_id: self.info.model_id.clone(),
            weights_digest: self.info.weights_digest.clone(),
            preprocessing: self.info.preprocessing.clone(),
            dim: self.info.dim,
            metric: self.info.metric.to_string(),
            dtype: self.info.dtype,
            index: self.info.index,
            rows: self.rows as u64,
            shards: self.shards.clone(),
            source: self.info.source.clone(),
            skipped: self.skipped.clone(),
            files: self.files.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
        commit::write_staged(&self.staged(MANIFEST_FILE), &json)?;

        // Moves: whatever this version wrote (adopted and new shards, index, CSV), the
        // manifest last; an append's old shards stay where they are.
        let kept: HashSet<&str> = self
            .base
            .as_ref()
            .map(|b| b.manifest.files.iter().map(|f| f.path.as_str()).collect())
            .unwrap_or_default();
        let mut journal = Journal::default();
        for f in &manifest.files {
            if !kept.contains(f.path.as_str()) || f.path == INDEX_FILE || f.path == SKIPPED_FILE {
                journal.moves.push((staging_rel(&f.path), f.path.clone()));
            }
        }
        journal
            .moves
            .push((staging_rel(MANIFEST_FILE), MANIFEST_FILE.into()));
        if let Some(old) = &self.replaced {
            let new: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
            journal.deletes = old
                .files
                .iter()
                .filter(|f| !new.contains(f.path.as_str()))
                .map(|f| f.path.clone())
                .collect();
        }
        // From the journal on, the staged files belong to the commit, not to this writer.
        self.cleanup_on_drop = false;
        let result = commit::commit(&self.dir, &self.lock, &journal);
        #[cfg(test)]
        if matches!(result, Err(Error::SimulatedCrash(_))) {
            return result.map(|_| manifest);
        }
        if let Err(e) = result {
            // A failure before the journal existed leaves an undecided staging folder; after,
            // a decided commit that the next open finishes.
            if !commit::journal_exists(&self.dir) {
                self.cleanup_on_drop = true;
            }
            return Err(e);
        }
        Ok(manifest)
    }
}

impl Drop for CollectionWriter {
    fn drop(&mut self) {
        if self.cleanup_on_drop {
            let staging = self.dir.join(STAGING);
            if let Err(e) = std::fs::remove_dir_all(&staging)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                log::warn!("{}: {e}", staging.display());
            }
        }
    }
}

/// The flat staging name of a final relative path (`img_emb/x.npy` → `x.npy.part`).
fn staged_name(rel: &str) -> String {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    format!("{base}.part")
}

fn staging_rel(rel: &str) -> String {
    format!("{STAGING}/{}", staged_name(rel))
}

/// Size and CRC-32 of a file.
pub(crate) fn file_crc(path: &Path) -> Result<(u64, u32)> {
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
    Ok((bytes, crc.finalize()))
}
