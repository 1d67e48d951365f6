//! FAISS flat index files: `IndexFlatIP` (`IxFI`), `IndexFlatL2` (`IxF2`) and the `IndexIDMap`
//! wrapper (`IxMp`, 64-bit ids) around either, plus a string-ids sidecar.
//!
//! Layout (little-endian, back to back): fourcc; header = d (i32), ntotal (i64), two ignored
//! i64, is_trained (u8), metric_type (i32); then for a flat index the float count (u64, must be
//! `ntotal * d`) and the vectors; for `IxMp` the wrapped index followed by the id count (u64) and
//! the ids (i64). Everything is validated against the file length before anything is allocated.
//!
//! The sidecar (`<index path>.ids`, see [`sidecar_path`]) holds one id per line, in row order.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, format_err, io_err};
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

/// Reads a sidecar: one id per line, `expected` lines, distinct and non-empty.
pub fn read_sidecar(path: &Path, expected: usize) -> Result<IdMap> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
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
    let mut f = AtomicFile::create(path)?;
    for id in ids.as_slice() {
        f.write_all(id.as_bytes())?;
        f.write_all(b"\n")?;
    }
    f.commit()
}

fn fourcc(metric: Metric) -> &'static [u8; 4] {
    match metric {
        Metric::InnerProduct => b"IxFI",
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
    /// `faiss.read_index`) and its ids to the sidecar [`sidecar_path`]`(path)`. Both files are
    /// written to temporary files, synced and renamed.
    pub fn write_faiss(&self, path: &Path) -> Result<()> {
        let mut f = AtomicFile::create(path)?;
        write_flat_body(&mut f, self)?;
        f.commit()?;
        write_sidecar(&sidecar_path(path), &self.ids)
    }

    /// Writes the index wrapped in a FAISS `IndexIDMap` (`IxMp`) with the given 64-bit ids (one
    /// per row; FAISS does not require them distinct). No sidecar is written.
    pub fn write_faiss_with_ids(&self, path: &Path, ids: &[i64]) -> Result<()> {
        if ids.len() != self.len() {
            return Err(Error::IdCountMismatch {
                ids: ids.len(),
                vectors: self.len(),
            });
        }
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
        f.commit()
    }

    /// Reads a FAISS flat file (`IxFI`, `IxF2`, or `IxMp` wrapping one of them). Ids come from
    /// the sidecar, the `IndexIDMap` ids (as decimal strings) or row numbers, per
    /// `options.ids`. With `options.mmap` the vectors stay in the mapped file.
    pub fn read_faiss(path: &Path, options: ReadOptions) -> Result<Self> {
        let parsed = parse(path)?;
        let storage = if options.mmap {
            let file = File::open(path).map_err(io_err(path))?;
            // SAFETY: the map is read-only; like every mmap user we rely on the file not being
            // truncated while mapped (the length is checked again right below).
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
            if (map.len() as u64) != parsed.file_len {
                return Err(format_err(path, "file changed while being loaded"));
            }
            Storage::Mapped {
                map,
                offset: parsed.data_offset as usize,
                rows: parsed.ntotal,
            }
        } else {
            let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err(path))?);
            r.seek(SeekFrom::Start(parsed.data_offset))
                .map_err(io_err(path))?;
            let total = parsed.ntotal * parsed.dim;
            let mut v = Vec::with_capacity(total);
            let mut bytes = vec![0u8; 1 << 20];
            while v.len() < total {
                let want = ((total - v.len()) * 4).min(bytes.len());
                r.read_exact(&mut bytes[..want]).map_err(io_err(path))?;
                v.extend(
                    bytes[..want]
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            Storage::Owned(v)
        };
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
        let ids = match options.ids {
            IdSource::Sidecar => read_sidecar(&side, parsed.ntotal)?,
            IdSource::Auto if side.exists() => read_sidecar(&side, parsed.ntotal)?,
            _ => match parsed.ids {
                Some(ids) => {
                    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                    IdMap::from_vec(ids)
                        .map_err(|e| format_err(path, format!("IndexIDMap ids: {e}")))?
                }
                None => IdMap::row_numbers(parsed.ntotal),
            },
        };
        Ok(FlatIndex {
            dim: parsed.dim,
            metric: parsed.metric,
            storage,
            ids,
            model_id: String::new(),
        })
    }
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
