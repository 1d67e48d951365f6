//! FAISS flat index files: `IndexFlatIP` (`IxFI`), `IndexFlatL2` (`IxF2`) and the `IndexIDMap`
//! wrapper (`IxMp`, 64-bit ids) around either, plus a string-ids sidecar.
//!
//! Layout (little-endian, back to back): fourcc; header = d (i32), ntotal (i64), two ignored
//! i64, is_trained (u8), metric_type (i32); then for a flat index the float count (u64, must be
//! `ntotal * d`) and the vectors; for `IxMp` the wrapped index followed by the id count (u64) and
//! the ids (i64). Everything is validated against the file length before anything is allocated.
//!
//! Two sidecars go beside a FAISS file this crate writes: `<index path>.ids` ([`sidecar_path`])
//! holds one id per line, in row order; `<index path>.meta.json` ([`meta_path`]) the metric
//! and the length and CRC-32 of the index file and of the ids sidecar, which
//! [`FlatIndex::read_faiss`] verifies (memory-mapped too) before it returns. Files without the
//! second (written by FAISS, or by this crate before it wrote one) load unchecked.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, format_err, io_err};
pub use crate::faiss_meta::meta_path;
use crate::faiss_meta::{self, FaissMeta, FileCheck};
use crate::flat::{FlatIndex, Storage};
use crate::ids::IdMap;
use crate::persist::AtomicFile;
use crate::{MAX_DIM, Metric, VectorIndex};

/// The value FAISS writes in the two unused header fields.
const DUMMY: i64 = 1 << 20;

/// Where the ids of a FAISS file loaded by [`FlatIndex::read_faiss`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdSource {
    /// The sidecar if it exists, else the `IndexIDMap` ids if the file has them, else row
    /// numbers.
    #[default]
    Auto,
    /// Row numbers `0..ntotal` (or the `IndexIDMap` ids), ignoring any sidecar.
    NoSidecar,
    /// The sidecar must exist.
    Sidecar,
}

/// Options for [`FlatIndex::read_faiss`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Memory-map the vectors instead of reading them into memory.
    pub mmap: bool,
    /// Where the ids come from.
    pub ids: IdSource,
}

/// The sidecar path of a FAISS file: the path with `.ids` appended (`refs.faiss.ids`).
pub fn sidecar_path(index_path: &Path) -> PathBuf {
    let mut s = index_path.as_os_str().to_owned();
    s.push(".ids");
    PathBuf::from(s)
}

/// Commits the FAISS file written to `f` at `path`, then writes its ids sidecar and the
/// checksum record of both ([`meta_path`]), in that order: a record never describes files
/// that are not there yet.
pub(crate) fn commit_with_sidecars(
    f: AtomicFile,
    path: &Path,
    metric: Metric,
    ids: &IdMap,
) -> Result<()> {
    let index = FileCheck {
        bytes: f.len(),
        crc32: f.crc(),
    };
    f.commit()?;
    let ids = write_ids(&sidecar_path(path), ids)?;
    faiss_meta::write(path, metric, index, Some(ids))
}

/// Starts writing a FAISS file at `path` that [`commit_with_sidecars`] will finish: removes the
/// old checksum record first, so that an interrupted write leaves files that load unchecked
/// rather than a record that no longer fits.
pub(crate) fn create_with_sidecars(path: &Path) -> Result<AtomicFile> {
    faiss_meta::remove(path)?;
    AtomicFile::create(path)
}

/// The checksum record of a FAISS file read whole into memory as `bytes`, verified against
/// them; `None` for a file without one (written by FAISS), which loads unchecked.
pub(crate) fn verified_meta(path: &Path, bytes: &[u8]) -> Result<Option<FaissMeta>> {
    let meta = faiss_meta::read(path)?;
    if let Some(meta) = &meta {
        meta.index.verify(path, FileCheck::of(bytes))?;
    }
    Ok(meta)
}

/// The ids of a FAISS file of `n` vectors: from its sidecar (checked against the checksum
/// record when there is one) or row numbers, per `options.ids`.
pub(crate) fn load_ids(
    path: &Path,
    n: usize,
    options: ReadOptions,
    meta: Option<&FaissMeta>,
) -> Result<IdMap> {
    let side = sidecar_path(path);
    let from_sidecar = match options.ids {
        IdSource::Sidecar => true,
        IdSource::Auto => side.exists(),
        IdSource::NoSidecar => false,
    };
    if !from_sidecar {
        return Ok(IdMap::row_numbers(n));
    }
    let bytes = std::fs::read(&side).map_err(io_err(&side))?;
    if let Some(check) = meta.and_then(|m| m.ids) {
        check.verify(&side, FileCheck::of(&bytes))?;
    }
    parse_sidecar(&side, &bytes, n)
}

/// Reads a sidecar: one id per line, `expected` lines, distinct and non-empty.
pub fn read_sidecar(path: &Path, expected: usize) -> Result<IdMap> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    parse_sidecar(path, &bytes, expected)
}

/// The ids of a sidecar's bytes (read from `path`).
pub(crate) fn parse_sidecar(path: &Path, bytes: &[u8], expected: usize) -> Result<IdMap> {
    let text = std::str::from_utf8(bytes).map_err(|_| format_err(path, "ids are not UTF-8"))?;
    let ids: Vec<String> = text.lines().map(str::to_owned).collect();
    if ids.len() != expected {
        return Err(format_err(
            path,
            format!("{} ids for {expected} vectors", ids.len()),
        ));
    }
    IdMap::from_vec(ids).map_err(|e| format_err(path, e.to_string()))
}

/// Writes a sidecar atomically.
pub fn write_sidecar(path: &Path, ids: &IdMap) -> Result<()> {
    write_ids(path, ids).map(|_| ())
}

/// Writes a sidecar atomically; returns its length and checksum.
pub(crate) fn write_ids(path: &Path, ids: &IdMap) -> Result<FileCheck> {
    let mut f = AtomicFile::create(path)?;
    for id in ids.as_slice() {
        f.write_all(id.as_bytes())?;
        f.write_all(b"\n")?;
    }
    let check = FileCheck {
        bytes: f.len(),
        crc32: f.crc(),
    };
    f.commit()?;
    Ok(check)
}

fn fourcc(metric: Metric) -> &'static [u8; 4] {
    match metric {
        Metric::InnerProduct | Metric::Cosine => b"IxFI",
        Metric::L2 => b"IxF2",
    }
}

fn header(out: &mut Vec<u8>, dim: usize, ntotal: usize, metric: Metric) {
    out.extend_from_slice(&(dim as i32).to_le_bytes());
    out.extend_from_slice(&(ntotal as i64).to_le_bytes());
    out.extend_from_slice(&DUMMY.to_le_bytes());
    out.extend_from_slice(&DUMMY.to_le_bytes());
    out.push(1);
    out.extend_from_slice(&metric.faiss_code().to_le_bytes());
}

fn write_flat_body(f: &mut AtomicFile, index: &FlatIndex) -> Result<()> {
    let (d, n) = (index.dim(), index.len());
    let mut head = fourcc(index.metric()).to_vec();
    header(&mut head, d, n, index.metric());
    head.extend_from_slice(&((n * d) as u64).to_le_bytes());
    f.write_all(&head)?;
    let mut buf = Vec::new();
    let mut bytes = Vec::with_capacity(4096 * d * 4);
    for start in (0..n).step_by(4096) {
        let end = (start + 4096).min(n);
        let block = index.storage.block(d, start, end, &mut buf);
        bytes.clear();
        for v in block {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        f.write_all(&bytes)?;
    }
    Ok(())
}

impl FlatIndex {
    /// Writes the index as a FAISS `IndexFlatIP`/`IndexFlatL2` file (loadable with
    /// `faiss.read_index`; a cosine index is an `IndexFlatIP` of its normalised vectors), its
    /// ids to the sidecar [`sidecar_path`]`(path)` and its metric and checksums to
    /// [`meta_path`]`(path)`. Each file is written to a temporary file, synced and renamed;
    /// the old checksum sidecar is removed first, so that an interrupted write leaves files
    /// that load unchecked rather than a record that no longer fits.
    pub fn write_faiss(&self, path: &Path) -> Result<()> {
        let mut f = create_with_sidecars(path)?;
        write_flat_body(&mut f, self)?;
        commit_with_sidecars(f, path, self.metric, &self.ids)
    }

    /// Writes the index wrapped in a FAISS `IndexIDMap` (`IxMp`) with the given 64-bit ids (one
    /// per row; FAISS does not require them distinct), and its metric and checksum to
    /// [`meta_path`]`(path)` (no ids sidecar).
    pub fn write_faiss_with_ids(&self, path: &Path, ids: &[i64]) -> Result<()> {
        if ids.len() != self.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: self.len(),
            });
        }
        faiss_meta::remove(path)?;
        let mut f = AtomicFile::create(path)?;
        let mut head = b"IxMp".to_vec();
        header(&mut head, self.dim(), self.len(), self.metric());
        f.write_all(&head)?;
        write_flat_body(&mut f, self)?;
        let mut tail = (ids.len() as u64).to_le_bytes().to_vec();
        for id in ids {
            tail.extend_from_slice(&id.to_le_bytes());
        }
        f.write_all(&tail)?;
        let index = FileCheck {
            bytes: f.len(),
            crc32: f.crc(),
        };
        f.commit()?;
        faiss_meta::write(path, self.metric, index, None)
    }

    /// Reads a FAISS flat file (`IxFI`, `IxF2`, or `IxMp` wrapping one of them). Ids come from
    /// the sidecar, the `IndexIDMap` ids (as decimal strings) or row numbers, per
    /// `options.ids`. With `options.mmap` the vectors stay in the mapped file. When the file has
    /// a checksum sidecar ([`meta_path`], whatever `options.ids` says), the metric comes from it
    /// and the file (and the ids sidecar, when read) must match the recorded length and
    /// CRC-32, else [`Error::Damaged`]; a memory-mapped file is read through once for that (as
    /// it is to check that every value is finite).
    pub fn read_faiss(path: &Path, options: ReadOptions) -> Result<Self> {
        let meta = faiss_meta::read(path)?;
        let parsed = match parse(path) {
            Ok(parsed) => parsed,
            Err(e) => {
                // A file its sidecar says is damaged is reported as damaged.
                if let Some(meta) = &meta {
                    meta.index.verify(path, FileCheck::of_file(path)?)?;
                }
                return Err(e);
            }
        };
        if let Some(meta) = &meta
            && meta.index.bytes != parsed.file_len
        {
            meta.index.verify(path, FileCheck::of_file(path)?)?;
        }
        let (storage, found) = if options.mmap {
            let file = File::open(path).map_err(io_err(path))?;
            // SAFETY: the map is read-only; like every mmap user we rely on the file not being
            // truncated while mapped (the length is checked again right below).
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
            if (map.len() as u64) != parsed.file_len {
                return Err(format_err(path, "file changed while being loaded"));
            }
            let found = meta.as_ref().map(|_| FileCheck::of(&map));
            let storage = Storage::Mapped {
                map,
                offset: parsed.data_offset as usize,
                rows: parsed.ntotal,
            };
            (storage, found)
        } else {
            let (v, found) = read_vectors(path, &parsed, meta.is_some())?;
            (Storage::Owned(v), found)
        };
        if let (Some(meta), Some(found)) = (&meta, found) {
            meta.index.verify(path, found)?;
        }
        // FAISS accepts any float; this crate's searches assume finite values.
        let mut buf = Vec::new();
        for start in (0..parsed.ntotal).step_by(4096) {
            let end = (start + 4096).min(parsed.ntotal);
            let block = storage.block(parsed.dim, start, end, &mut buf);
            if let Some(pos) = block.iter().position(|x| !x.is_finite()) {
                let row = start + pos / parsed.dim;
                return Err(format_err(
                    path,
                    format!("row {row} holds a non-finite value"),
                ));
            }
        }
        let side = sidecar_path(path);
        let from_sidecar = |expected: usize| -> Result<IdMap> {
            let bytes = std::fs::read(&side).map_err(io_err(&side))?;
            if let Some(check) = meta.as_ref().and_then(|m| m.ids) {
                check.verify(&side, FileCheck::of(&bytes))?;
            }
            parse_sidecar(&side, &bytes, expected)
        };
        let ids = match options.ids {
            IdSource::Sidecar => from_sidecar(parsed.ntotal)?,
            IdSource::Auto if side.exists() => from_sidecar(parsed.ntotal)?,
            _ => match parsed.ids {
                Some(ids) => {
                    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                    IdMap::from_vec(ids)
                        .map_err(|e| format_err(path, format!("IndexIDMap ids: {e}")))?
                }
                None => IdMap::row_numbers(parsed.ntotal),
            },
        };
        let metric = match &meta {
            Some(meta) => meta.metric(path, parsed.metric)?,
            None => parsed.metric,
        };
        Ok(FlatIndex {
            dim: parsed.dim,
            metric,
            storage,
            ids,
            model_id: String::new(),
        })
    }
}

/// Reads the vectors of a parsed file into memory; with `check`, also the length and CRC-32
/// of the whole file, computed as it is read (the few bytes around the vectors read again).
fn read_vectors(
    path: &Path,
    parsed: &Parsed,
    check: bool,
) -> Result<(Vec<f32>, Option<FileCheck>)> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err(path))?);
    let mut crc = crc32fast::Hasher::new();
    if check {
        let mut head = vec![0u8; parsed.data_offset as usize];
        r.read_exact(&mut head).map_err(io_err(path))?;
        crc.update(&head);
    } else {
        r.seek(SeekFrom::Start(parsed.data_offset))
            .map_err(io_err(path))?;
    }
    let total = parsed.ntotal * parsed.dim;
    let mut v = Vec::with_capacity(total);
    let mut bytes = vec![0u8; 1 << 20];
    while v.len() < total {
        let want = ((total - v.len()) * 4).min(bytes.len());
        r.read_exact(&mut bytes[..want]).map_err(io_err(path))?;
        if check {
            crc.update(&bytes[..want]);
        }
        v.extend(
            bytes[..want]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    if !check {
        return Ok((v, None));
    }
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).map_err(io_err(path))?;
    crc.update(&tail);
    let found = FileCheck {
        bytes: parsed.data_offset + 4 * total as u64 + tail.len() as u64,
        crc32: crc.finalize(),
    };
    Ok((v, Some(found)))
}

struct Parsed {
    dim: usize,
    ntotal: usize,
    metric: Metric,
    data_offset: u64,
    ids: Option<Vec<i64>>,
    file_len: u64,
}

/// A reader that knows the file length and refuses to read past it.
struct Bounded<'p> {
    r: BufReader<File>,
    pos: u64,
    len: u64,
    path: &'p Path,
}

impl Bounded<'_> {
    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        if self.len - self.pos < N as u64 {
            return Err(format_err(
                self.path,
                format!("truncated at {what} (offset {})", self.pos),
            ));
        }
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).map_err(io_err(self.path))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        if self.len - self.pos < n {
            return Err(format_err(
                self.path,
                format!(
                    "truncated in {what}: {n} bytes needed at offset {}, file has {}",
                    self.pos, self.len
                ),
            ));
        }
        self.r.seek_relative(n as i64).map_err(io_err(self.path))?;
        self.pos += n;
        Ok(())
    }
}

struct Header {
    dim: usize,
    ntotal: usize,
    metric: Metric,
}

fn read_header(b: &mut Bounded<'_>, fourcc: &[u8; 4]) -> Result<Header> {
    let path = b.path;
    let d = i32::from_le_bytes(b.bytes("d")?);
    let ntotal = i64::from_le_bytes(b.bytes("ntotal")?);
    b.bytes::<16>("header")?;
    let trained = b.bytes::<1>("is_trained")?[0];
    let metric_type = i32::from_le_bytes(b.bytes("metric_type")?);
    if !(0..=MAX_DIM as i64).contains(&(d as i64)) {
        return Err(format_err(path, format!("dimension {d} outside 0..=2^20")));
    }
    if d == 0 {
        return Err(format_err(path, "dimension 0 is not supported"));
    }
    if ntotal < 0 {
        return Err(format_err(path, format!("negative ntotal {ntotal}")));
    }
    if trained > 1 {
        return Err(format_err(
            path,
            format!("is_trained byte is {trained}, not 0 or 1"),
        ));
    }
    let metric = match metric_type {
        0 => Metric::InnerProduct,
        1 => Metric::L2,
        m => return Err(format_err(path, format!("unsupported metric_type {m}"))),
    };
    if fourcc != b"IxMp" && fourcc != self::fourcc(metric) {
        return Err(format_err(
            path,
            format!(
                "fourcc {:?} does not match metric_type {metric_type}",
                String::from_utf8_lossy(fourcc)
            ),
        ));
    }
    // The header alone cannot exceed the file: vectors need 4 * ntotal * d bytes.
    let bytes = (ntotal as u64)
        .checked_mul(d as u64)
        .and_then(|x| x.checked_mul(4));
    match bytes {
        Some(x) if x <= b.len - b.pos => {}
        _ => {
            return Err(format_err(
                path,
                format!(
                    "{ntotal} vectors of dimension {d} exceed the file size {}",
                    b.len
                ),
            ));
        }
    }
    Ok(Header {
        dim: d as usize,
        ntotal: ntotal as usize,
        metric,
    })
}

fn parse(path: &Path) -> Result<Parsed> {
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut b = Bounded {
        r: BufReader::new(file),
        pos: 0,
        len,
        path,
    };
    let four: [u8; 4] = b.bytes("fourcc")?;
    let wrapped = &four == b"IxMp";
    let outer = match &four {
        b"IxFI" | b"IxF2" | b"IxMp" => read_header(&mut b, &four)?,
        other => {
            return Err(format_err(
                path,
                format!(
                    "fourcc {:?} is not a flat index (IxFI, IxF2) or IndexIDMap (IxMp)",
                    String::from_utf8_lossy(other)
                ),
            ));
        }
    };
    let inner = if wrapped {
        let four: [u8; 4] = b.bytes("inner fourcc")?;
        if &four != b"IxFI" && &four != b"IxF2" {
            return Err(format_err(
                path,
                format!(
                    "IndexIDMap wraps {:?}; only IxFI and IxF2 are supported",
                    String::from_utf8_lossy(&four)
                ),
            ));
        }
        let h = read_header(&mut b, &four)?;
        if h.dim != outer.dim || h.ntotal != outer.ntotal || h.metric != outer.metric {
            return Err(format_err(
                path,
                "IndexIDMap header disagrees with the wrapped index",
            ));
        }
        h
    } else {
        outer
    };
    let count = u64::from_le_bytes(b.bytes("float count")?);
    let expected = inner.ntotal as u64 * inner.dim as u64;
    if count != expected {
        return Err(format_err(
            path,
            format!("float count {count} is not ntotal * d = {expected}"),
        ));
    }
    let data_offset = b.pos;
    b.skip(expected * 4, "vectors")?;
    let ids = if wrapped {
        let n = u64::from_le_bytes(b.bytes("id count")?);
        if n != inner.ntotal as u64 {
            return Err(format_err(
                path,
                format!("{n} ids for {} vectors", inner.ntotal),
            ));
        }
        if n.checked_mul(8).is_none_or(|x| x > b.len - b.pos) {
            return Err(format_err(path, "truncated in ids"));
        }
        let mut ids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            ids.push(i64::from_le_bytes(b.bytes("ids")?));
        }
        Some(ids)
    } else {
        None
    };
    if b.pos != len {
        return Err(format_err(
            path,
            format!("{} bytes of trailing data", len - b.pos),
        ));
    }
    Ok(Parsed {
        dim: inner.dim,
        ntotal: inner.ntotal,
        metric: inner.metric,
        data_offset,
        ids,
        file_len: len,
    })
}
