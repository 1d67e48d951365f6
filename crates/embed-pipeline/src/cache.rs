//! A resumable on-disk cache of extracted embeddings.
//!
//! The cache lives in a folder named after a digest of everything the result depends on (model
//! id, weights hash, preprocessing, embedding width, chunk size and the exact image list), so
//! different extractions never share files. The list is cut into chunks of `chunk_size` images;
//! each finished chunk is written to a temporary file, synced, and renamed into place, so a kill
//! at any moment loses at most the chunks not yet renamed. A restart validates the chunk files
//! (magic, version, digest, position, CRC-32), runs the pipeline on the missing chunks only and
//! assembles the same result an uninterrupted run gives: no gaps, no duplicates.
//!
//! Chunk file (little-endian): magic `D21CHNK\0`, version `u32` (2), digest `[u8; 32]`, chunk
//! index `u64`, first image `u64`, images `u32`, dim `u32`, embedded images `u32`, one status
//! byte per image (1 embedded, 0 skipped), for each skipped image its reason (`u32` length +
//! UTF-8), for each embedded image its width and height in its file (`u32` each), the `f32`
//! rows of the embedded images, and a CRC-32 of everything before it. Chunks of other versions
//! are recomputed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::extract::{check_failures, extract_streaming_subset};
use crate::list::check_unique_ids;
use crate::{
    BatchResult, ExtractOptions, ExtractStats, Extraction, Model, PipelineError, Result, Skipped,
};

const MAGIC: &[u8; 8] = b"D21CHNK\0";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 32 + 8 + 8 + 4 + 4 + 4;
/// Longest reason kept in a chunk file, in bytes.
const MAX_REASON: usize = 4096;

/// What an extraction's result depends on besides the image list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheKey {
    /// The model's identifier ([`embed_core::Embedder::model_id`]).
    pub model_id: String,
    /// A hash of the weights (e.g. of the checkpoint files).
    pub weights_hash: String,
    /// The preprocessing, in any stable textual form (e.g. `format!("{spec:?}")`).
    pub preprocess: String,
    /// Anything else that changes the output (precision, pooling, decode options...).
    pub extra: String,
}

impl CacheKey {
    /// The digest naming the cache folder of this key, image list, width and chunk size.
    pub fn digest<P: AsRef<Path>>(&self, paths: &[P], dim: usize, chunk_size: usize) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"embed-pipeline extraction cache v2\0");
        for field in [
            &self.model_id,
            &self.weights_hash,
            &self.preprocess,
            &self.extra,
        ] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        h.update((dim as u64).to_le_bytes());
        h.update((chunk_size as u64).to_le_bytes());
        h.update((paths.len() as u64).to_le_bytes());
        for p in paths {
            let bytes = p.as_ref().as_os_str().as_encoded_bytes();
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        h.finalize().into()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One chunk's content.
struct Chunk {
    /// Per image: `None` embedded, `Some(reason)` skipped.
    status: Vec<Option<String>>,
    /// `(width, height)` of each embedded image.
    sizes: Vec<(u32, u32)>,
    /// Rows of the embedded images, flattened.
    data: Vec<f32>,
}

/// The cache folder of one extraction.
pub struct ChunkStore {
    dir: PathBuf,
    digest: [u8; 32],
    chunk_size: usize,
    n: usize,
    dim: usize,
}

impl ChunkStore {
    /// Opens (creating it if needed) the folder under `root` for this key and list, and removes
    /// temporary files a killed run left.
    pub fn open<P: AsRef<Path>>(
        root: &Path,
        key: &CacheKey,
        paths: &[P],
        dim: usize,
        chunk_size: usize,
    ) -> Result<Self> {
        if chunk_size == 0 || chunk_size > u32::MAX as usize {
            return Err(PipelineError::InvalidOption(format!(
                "chunk size {chunk_size}"
            )));
        }
        let digest = key.digest(paths, dim, chunk_size);
        let dir = root.join(&hex(&digest)[..24]);
        std::fs::create_dir_all(&dir).map_err(|source| PipelineError::Io {
            path: dir.clone(),
            source,
        })?;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Self {
            dir,
            digest,
            chunk_size,
            n: paths.len(),
            dim,
        })
    }

    /// The folder holding the chunks.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of chunks of the list.
    pub fn n_chunks(&self) -> usize {
        self.n.div_ceil(self.chunk_size)
    }

    fn chunk_range(&self, c: usize) -> std::ops::Range<usize> {
        c * self.chunk_size..((c + 1) * self.chunk_size).min(self.n)
    }

    fn chunk_path(&self, c: usize) -> PathBuf {
        self.dir.join(format!("chunk-{c:08}.bin"))
    }

    /// Whether chunk `c` is on disk and valid.
    pub fn is_complete(&self, c: usize) -> bool {
        self.read(c).is_ok()
    }

    fn write(&self, c: usize, chunk: &Chunk) -> Result<()> {
        let range = self.chunk_range(c);
        let n_ok = chunk.status.iter().filter(|s| s.is_none()).count();
        let mut buf =
            Vec::with_capacity(HEADER_LEN + chunk.status.len() + chunk.data.len() * 4 + 4);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        buf.extend_from_slice(&self.digest);
        buf.extend_from_slice(&(c as u64).to_le_bytes());
        buf.extend_from_slice(&(range.start as u64).to_le_bytes());
        buf.extend_from_slice(&(range.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(self.dim as u32).to_le_bytes());
        buf.extend_from_slice(&(n_ok as u32).to_le_bytes());
        buf.extend(chunk.status.iter().map(|s| u8::from(s.is_none())));
        for reason in chunk.status.iter().flatten() {
            let mut end = reason.len().min(MAX_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            buf.extend_from_slice(&(end as u32).to_le_bytes());
            buf.extend_from_slice(&reason.as_bytes()[..end]);
        }
        for (width, height) in &chunk.sizes {
            buf.extend_from_slice(&width.to_le_bytes());
            buf.extend_from_slice(&height.to_le_bytes());
        }
        for v in &chunk.data {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let path = self.chunk_path(c);
        let tmp = self
            .dir
            .join(format!("chunk-{c:08}.{}.tmp", std::process::id()));
        let io = |source| PipelineError::Io {
            path: tmp.clone(),
            source,
        };
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&buf).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|source| PipelineError::Io {
            path: path.clone(),
            source,
        })?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn read(&self, c: usize) -> Result<Chunk> {
        let path = self.chunk_path(c);
        let bad = |message: String| PipelineError::Cache {
            path: path.clone(),
            message,
        };
        let range = self.chunk_range(c);
        let len = range.len();
        let max_len = HEADER_LEN + len * (1 + 4 * self.dim + 8 + 4 + MAX_REASON) + 4;
        let meta = std::fs::metadata(&path).map_err(|source| PipelineError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.len() > max_len as u64 || meta.len() < (HEADER_LEN + 4) as u64 {
            return Err(bad(format!(
                "{} bytes is not a possible chunk size",
                meta.len()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|source| PipelineError::Io {
            path: path.clone(),
            source,
        })?;
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(bad("checksum mismatch".into()));
        }
        let mut r = Reader { bytes: body, at: 0 };
        if r.take(8)? != MAGIC {
            return Err(bad("bad magic".into()));
        }
        let fields = (
            r.u32()?,
            r.take(32)?,
            r.u64()?,
            r.u64()?,
            r.u32()?,
            r.u32()?,
        );
        let (version, digest, index, start, count, dim) = fields;
        if version != VERSION
            || digest != self.digest
            || index != c as u64
            || start != range.start as u64
            || count as usize != len
            || dim as usize != self.dim
        {
            return Err(bad("chunk of another extraction or position".into()));
        }
        let n_ok = r.u32()? as usize;
        let flags = r.take(len)?.to_vec();
        if flags.iter().any(|&f| f > 1) || flags.iter().filter(|&&f| f == 1).count() != n_ok {
            return Err(bad("bad status bytes".into()));
        }
        let mut status = Vec::with_capacity(len);
        for &f in &flags {
            status.push(if f == 1 {
                None
            } else {
                let l = r.u32()? as usize;
                if l > MAX_REASON {
                    return Err(bad("reason too long".into()));
                }
                Some(String::from_utf8_lossy(r.take(l)?).into_owned())
            });
        }
        let mut sizes = Vec::with_capacity(n_ok);
        for _ in 0..n_ok {
            sizes.push((r.u32()?, r.u32()?));
        }
        let raw = r.take(n_ok * self.dim * 4)?;
        if r.at != body.len() {
            return Err(bad("trailing bytes".into()));
        }
        let data = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Chunk {
            status,
            sizes,
            data,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| PipelineError::Cache {
                path: PathBuf::new(),
                message: "chunk truncated".into(),
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

/// Where the cache goes and how finely it is cut.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// The root folder (one sub-folder per extraction key).
    pub root: PathBuf,
    /// Images per chunk: the most work a kill can lose.
    pub chunk_size: usize,
}

/// Like [`crate::extract`], but resumable: finished chunks are read from the cache under
/// `cache.root`, only the missing ones are computed (and written as they finish). The result
/// equals an uninterrupted [`crate::extract`] of the same list. `stats.processed` counts only
/// the images computed in this call. When the failure limits stop a run, every finished chunk
/// stays in the cache and the error lists every failure so far.
pub fn extract_cached<P: AsRef<Path> + Sync>(
    model: Model<'_>,
    paths: &[P],
    options: &ExtractOptions,
    key: &CacheKey,
    cache: &CacheOptions,
) -> Result<Extraction> {
    check_unique_ids(paths)?;
    let dim = model.dim();
    let store = ChunkStore::open(&cache.root, key, paths, dim, cache.chunk_size)?;
    let mut todo: Vec<usize> = Vec::new();
    let mut already_failed = Vec::new();
    for c in 0..store.n_chunks() {
        match store.read(c) {
            Ok(chunk) => {
                for (index, reason) in store.chunk_range(c).zip(chunk.status) {
                    if let Some(reason) = reason {
                        already_failed.push(Skipped {
                            index,
                            path: paths[index].as_ref().to_path_buf(),
                            reason,
                        });
                    }
                }
            }
            Err(_) => todo.extend(store.chunk_range(c)),
        }
    }
    let todo_paths: Vec<&Path> = todo.iter().map(|&i| paths[i].as_ref()).collect();
    let mut current: Option<(usize, Chunk)> = None;
    let mut sink = |b: BatchResult| -> Result<()> {
        let mut rows = b.rows.iter().enumerate().peekable();
        let mut failed = b.failed.into_iter().peekable();
        for pos in 0..b.len {
            let global = todo[b.start + pos];
            let c = global / store.chunk_size;
            let (_, chunk) = current.get_or_insert_with(|| {
                (
                    c,
                    Chunk {
                        status: Vec::with_capacity(store.chunk_size),
                        sizes: Vec::new(),
                        data: Vec::new(),
                    },
                )
            });
            if let Some((row, _)) = rows.next_if(|(_, p)| **p == pos) {
                chunk.status.push(None);
                chunk.sizes.push(b.sizes[row]);
                chunk.data.extend(b.embeddings.row(row).iter());
            } else if let Some((_, reason)) = failed.next_if(|(p, _)| *p == pos) {
                chunk.status.push(Some(reason));
            } else {
                return Err(PipelineError::InvalidOption(format!(
                    "image {global} has neither an embedding nor a failure"
                )));
            }
            if chunk.status.len() == store.chunk_range(c).len()
                && let Some((c, chunk)) = current.take()
            {
                store.write(c, &chunk)?;
            }
        }
        Ok(())
    };
    let stats = if todo.is_empty() {
        ExtractStats::default()
    } else {
        extract_streaming_subset(
            model,
            &todo_paths,
            &todo,
            options,
            paths.len(),
            already_failed,
            &mut sink,
        )?
    };
    assemble(&store, paths, options, stats)
}

fn assemble<P: AsRef<Path>>(
    store: &ChunkStore,
    paths: &[P],
    options: &ExtractOptions,
    stats: ExtractStats,
) -> Result<Extraction> {
    let mut data = Vec::new();
    let mut indices = Vec::new();
    let mut sizes = Vec::new();
    let mut skipped = Vec::new();
    for c in 0..store.n_chunks() {
        let chunk = store.read(c)?;
        data.extend_from_slice(&chunk.data);
        sizes.extend_from_slice(&chunk.sizes);
        for (i, s) in store.chunk_range(c).zip(chunk.status) {
            match s {
                None => indices.push(i),
                Some(reason) => skipped.push(Skipped {
                    index: i,
                    path: paths[i].as_ref().to_path_buf(),
                    reason,
                }),
            }
        }
    }
    // The limits hold over the whole list, cached chunks included (they may come from a run
    // with other limits).
    check_failures(options, &skipped, paths.len())?;
    let embeddings = Array2::from_shape_vec((indices.len(), store.dim), data).map_err(|e| {
        PipelineError::Cache {
            path: store.dir.clone(),
            message: e.to_string(),
        }
    })?;
    Ok(Extraction::assemble(
        embeddings, indices, sizes, skipped, stats, paths, options,
    ))
}
