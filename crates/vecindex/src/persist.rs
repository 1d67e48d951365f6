//! This crate's own index file format, shared by both kinds of index.
//!
//! ```text
//! offset size field
//!      0    8 magic "VECINDEX"
//!      8    4 format version (u32) = 2 (1 is read too)
//!     12    1 kind: 1 flat, 2 HNSW
//!     13    1 metric: 0 inner product, 1 L2, 2 cosine (format 2)
//!     14    1 HNSW graph distance (format 2; 0 in format 1 and for flat files):
//!             0 the metric's own (minus the inner product, or the squared L2 distance),
//!             1 max(0, 1 - inner product), scored 1 - distance
//!     15    1 reserved, 0
//!     16    4 dim (u32)
//!     20    8 count (u64)
//!     28    4 HNSW M (u32)             \
//!     32    4 HNSW ef_construction     |  0 for flat
//!     36    4 HNSW ef_search           |
//!     40    8 HNSW seed (u64)          /
//!     48    4 model id length (u32, <= 4096), then the UTF-8 model id
//!           8 ids section length (u64), then count x (u32 length + UTF-8 id)
//!           8 payload length (u64), then
//!             flat: count x dim f32 (normalised for cosine)
//!             HNSW: u64 length + hnsw_rs graph dump, u64 length + hnsw_rs data dump
//!                   (`hnsw::dump`; vectors normalised for cosine)
//!   end-4   4 CRC-32 of every byte before it
//! ```
//! All integers and floats little-endian. The checksum is verified before anything else is
//! parsed, so a damaged file never reaches a parser.
//!
//! Format 1 (written before cosine existed) differs only in what it can hold: no cosine, byte
//! 14 zero, and an HNSW inner-product graph whose distance is `max(0, 1 - dot)` (it is read
//! as byte 14 = 1). Its embedded dumps were written in the host's byte order, which was
//! little-endian on every host that wrote them, and name their distance by its Rust type
//! (`hnsw::dump::LEGACY_DISTANCE_NAME`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, format_err, io_err};
use crate::flat::{FlatIndex, Storage};
use crate::hnsw::distance::Distance;
use crate::hnsw::{HnswIndex, HnswParams};
use crate::ids::IdMap;
use crate::{MAX_DIM, Metric, VectorIndex};

const MAGIC: &[u8; 8] = b"VECINDEX";
/// The format version written.
const VERSION: u32 = 2;
/// The versions read.
const READ_VERSIONS: [u32; 2] = [1, 2];
const KIND_FLAT: u8 = 1;
const KIND_HNSW: u8 = 2;
const MAX_MODEL_ID: usize = 4096;
const FIXED: usize = 52;

/// What kind of index file a path holds, judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// This crate's format, flat index ([`FlatIndex::load`]).
    Flat,
    /// This crate's format, HNSW index ([`HnswIndex::load`]).
    Hnsw,
    /// A FAISS flat or `IndexIDMap` file ([`FlatIndex::read_faiss`]).
    Faiss,
    /// A FAISS `IndexScalarQuantizer` file, `IxSQ` ([`crate::sq::FlatSqIndex::read_faiss`]).
    FaissSq,
    /// A FAISS `IndexHNSWSQ` file, `IHNs` ([`crate::HnswSqIndex::read_faiss`]).
    FaissHnswSq,
    /// A FAISS `IndexIVFPQ` file, `IwPQ` ([`crate::ivf::IvfPqIndex::read_faiss`]).
    FaissIvfPq,
}

/// Looks at the first bytes of `path` to tell which loader it needs.
pub fn peek_kind(path: &Path) -> Result<IndexKind> {
    use std::io::Read;
    let mut head = [0u8; 13];
    let mut f = File::open(path).map_err(io_err(path))?;
    let n = f.read(&mut head).map_err(io_err(path))?;
    if n >= 4 {
        match &head[..4] {
            b"IxFI" | b"IxF2" | b"IxMp" => return Ok(IndexKind::Faiss),
            b"IxSQ" => return Ok(IndexKind::FaissSq),
            b"IHNs" => return Ok(IndexKind::FaissHnswSq),
            b"IwPQ" => return Ok(IndexKind::FaissIvfPq),
            _ => {}
        }
    }
    if n >= 13 && &head[..8] == MAGIC {
        return match head[12] {
            KIND_FLAT => Ok(IndexKind::Flat),
            KIND_HNSW => Ok(IndexKind::Hnsw),
            k => Err(format_err(path, format!("unknown index kind {k}"))),
        };
    }
    Err(format_err(
        path,
        "neither a vecindex file nor a FAISS index this crate reads (IxFI, IxF2, IxMp, IxSQ, IHNs, IwPQ)",
    ))
}

/// Header byte 13.
fn metric_code(metric: Metric) -> u8 {
    match metric {
        Metric::InnerProduct => 0,
        Metric::L2 => 1,
        Metric::Cosine => 2,
    }
}

/// Header byte 14: how an HNSW graph's distance differs from its metric's own.
fn distance_code(distance: Distance) -> u8 {
    match distance {
        Distance::ClampedDot => 1,
        Distance::SquaredL2 | Distance::NegDot => 0,
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_FLAT => "flat",
        KIND_HNSW => "HNSW",
        _ => "unknown",
    }
}

pub(crate) fn check_model(stored: &str, expected: &str) -> Result<()> {
    if stored != expected {
        return Err(Error::ModelMismatch {
            expected: expected.to_owned(),
            found: stored.to_owned(),
        });
    }
    Ok(())
}

/// A file written under a temporary name in the target's directory, synced, then renamed into
/// place by [`AtomicFile::commit`]; dropped without commit, the temporary file is removed.
pub(crate) struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl AtomicFile {
    pub(crate) fn create(target: &Path) -> Result<Self> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = target
            .file_name()
            .ok_or_else(|| format_err(target, "not a file path"))?;
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp.{}.{n}", std::process::id()));
        let tmp = target.with_file_name(tmp_name);
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            crc: crc32fast::Hasher::new(),
            len: 0,
        })
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        match &mut self.out {
            Some(out) => out.write_all(bytes).map_err(io_err(&self.tmp)),
            None => Err(format_err(&self.tmp, "already committed")),
        }
    }

    /// CRC-32 of the bytes written so far.
    pub(crate) fn crc(&self) -> u32 {
        self.crc.clone().finalize()
    }

    /// Number of bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        let out = self
            .out
            .take()
            .ok_or_else(|| format_err(&self.tmp, "already committed"))?;
        let file = out
            .into_inner()
            .map_err(|e| io_err(&self.tmp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&self.tmp))?;
        drop(file);
        if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
            // `out` is already taken, so Drop would not remove the temporary file.
            let _ = std::fs::remove_file(&self.tmp);
            return Err(io_err(&self.target)(e));
        }
        remove_stale_temporaries(&self.target);
        // Make the rename durable too (best effort: not every platform can open directories).
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Removes the temporary files that earlier saves of `target` left behind when their process
/// was killed (`.NAME.tmp.PID.N` whose process no longer runs). Where process liveness cannot be
/// told (no `/proc`), nothing is removed. Best effort: errors are ignored.
fn remove_stale_temporaries(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let proc_root = Path::new("/proc/self");
    if !proc_root.exists() {
        return;
    }
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp.");
    let Some(prefix) = prefix.to_str() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

struct Meta<'a> {
    kind: u8,
    metric: Metric,
    /// Header byte 14 ([`distance_code`]).
    distance: u8,
    dim: usize,
    count: usize,
    params: HnswParams,
    model_id: &'a str,
    ids: &'a IdMap,
}

fn write_file(
    path: &Path,
    meta: &Meta<'_>,
    payload_len: u64,
    payload: impl FnOnce(&mut AtomicFile) -> Result<()>,
) -> Result<()> {
    if meta.model_id.len() > MAX_MODEL_ID {
        return Err(Error::TooLarge(format!(
            "model id of {} bytes (max {MAX_MODEL_ID})",
            meta.model_id.len()
        )));
    }
    let mut f = AtomicFile::create(path)?;
    let mut h = Vec::with_capacity(FIXED + meta.model_id.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.push(meta.kind);
    h.push(metric_code(meta.metric));
    h.push(meta.distance);
    h.push(0);
    h.extend_from_slice(&(meta.dim as u32).to_le_bytes());
    h.extend_from_slice(&(meta.count as u64).to_le_bytes());
    h.extend_from_slice(&(meta.params.m as u32).to_le_bytes());
    h.extend_from_slice(&(meta.params.ef_construction as u32).to_le_bytes());
    h.extend_from_slice(&(meta.params.ef_search as u32).to_le_bytes());
    h.extend_from_slice(&meta.params.seed.to_le_bytes());
    h.extend_from_slice(&(meta.model_id.len() as u32).to_le_bytes());
    h.extend_from_slice(meta.model_id.as_bytes());
    let ids_len: usize = meta.ids.as_slice().iter().map(|s| 4 + s.len()).sum();
    h.extend_from_slice(&(ids_len as u64).to_le_bytes());
    f.write_all(&h)?;
    let mut buf = Vec::with_capacity(ids_len.min(1 << 20) + 64);
    for id in meta.ids.as_slice() {
        buf.extend_from_slice(&(id.len() as u32).to_le_bytes());
        buf.extend_from_slice(id.as_bytes());
        if buf.len() >= 1 << 20 {
            f.write_all(&buf)?;
            buf.clear();
        }
    }
    f.write_all(&buf)?;
    f.write_all(&payload_len.to_le_bytes())?;
    payload(&mut f)?;
    let crc = f.crc();
    f.write_all(&crc.to_le_bytes())?;
    f.commit()
}

pub(crate) fn save_flat(index: &FlatIndex, path: &Path) -> Result<()> {
    let (dim, count) = (index.dim(), index.len());
    let meta = Meta {
        kind: KIND_FLAT,
        metric: index.metric(),
        distance: 0,
        dim,
        count,
        params: HnswParams::zero(),
        model_id: index.model_id(),
        ids: index.ids(),
    };
    write_file(path, &meta, (count * dim * 4) as u64, |f| {
        let mut buf = Vec::new();
        let mut bytes = Vec::new();
        for start in (0..count).step_by(4096) {
            let end = (start + 4096).min(count);
            bytes.clear();
            for v in index.storage.block(dim, start, end, &mut buf) {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            f.write_all(&bytes)?;
        }
        Ok(())
    })
}

pub(crate) fn save_hnsw(index: &HnswIndex, path: &Path) -> Result<()> {
    let (graph, data) = index.dump_bytes()?;
    let meta = Meta {
        kind: KIND_HNSW,
        metric: index.metric(),
        distance: distance_code(index.graph_distance()),
        dim: index.dim(),
        count: index.len(),
        params: *index.params(),
        model_id: index.model_id(),
        ids: index.ids(),
    };
    write_file(
        path,
        &meta,
        16 + graph.len() as u64 + data.len() as u64,
        |f| {
            f.write_all(&(graph.len() as u64).to_le_bytes())?;
            f.write_all(&graph)?;
            f.write_all(&(data.len() as u64).to_le_bytes())?;
            f.write_all(&data)
        },
    )
}

/// A parsed file; slices borrow the file's bytes.
pub(crate) struct Loaded<'a> {
    pub(crate) metric: Metric,
    /// The HNSW graph's distance (for flat files, the metric's own).
    pub(crate) distance: Distance,
    pub(crate) dim: usize,
    pub(crate) count: usize,
    pub(crate) params: HnswParams,
    pub(crate) model_id: String,
    pub(crate) ids: IdMap,
    pub(crate) payload: &'a [u8],
}

struct Cur<'a, 'p> {
    b: &'a [u8],
    path: &'p Path,
}

impl<'a> Cur<'a, '_> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        if n > self.b.len() as u64 {
            return Err(format_err(
                self.path,
                format!("{what}: {n} bytes claimed, {} left", self.b.len()),
            ));
        }
        let (head, rest) = self.b.split_at(n as usize);
        self.b = rest;
        Ok(head)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

pub(crate) fn read_verified(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    if bytes.len() < FIXED + 4 + 16 {
        return Err(format_err(
            path,
            format!("{} bytes is too short for a vecindex file", bytes.len()),
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err(format_err(path, "bad magic: not a vecindex file"));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(body) != stored {
        return Err(format_err(
            path,
            "checksum mismatch: the file is truncated or corrupted",
        ));
    }
    Ok(bytes)
}

pub(crate) fn parse<'a>(path: &Path, bytes: &'a [u8], want_kind: u8) -> Result<Loaded<'a>> {
    let body = &bytes[..bytes.len() - 4];
    let mut c = Cur {
        b: &body[8..],
        path,
    };
    let version = c.u32("version")?;
    if !READ_VERSIONS.contains(&version) {
        return Err(format_err(
            path,
            format!("format version {version}, this build reads {READ_VERSIONS:?}"),
        ));
    }
    let fixed = c.take(4, "kind")?;
    let (kind, metric, distance) = (fixed[0], fixed[1], fixed[2]);
    if kind != want_kind {
        return Err(format_err(
            path,
            format!(
                "holds a {} index, not a {} index",
                kind_name(kind),
                kind_name(want_kind)
            ),
        ));
    }
    let metric = match (metric, version) {
        (0, _) => Metric::InnerProduct,
        (1, _) => Metric::L2,
        (2, 2..) => Metric::Cosine,
        (m, _) => return Err(format_err(path, format!("unknown metric {m}"))),
    };
    if fixed[3] != 0 || (version == 1 && distance != 0) {
        return Err(format_err(path, "reserved bytes are not zero"));
    }
    let distance = match (kind, distance, metric, version) {
        (KIND_HNSW, 0, Metric::InnerProduct, 1) => Distance::ClampedDot,
        (_, 0, _, _) => Distance::of_metric(metric),
        (KIND_HNSW, 1, Metric::InnerProduct, 2..) => Distance::ClampedDot,
        (_, d, _, _) => {
            return Err(format_err(
                path,
                format!(
                    "graph distance {d} for a {metric} {} index",
                    kind_name(kind)
                ),
            ));
        }
    };
    let dim = c.u32("dim")? as usize;
    if dim == 0 || dim > MAX_DIM {
        return Err(format_err(
            path,
            format!("dimension {dim} outside 1..=2^20"),
        ));
    }
    let count = c.u64("count")?;
    let params = HnswParams {
        m: c.u32("M")? as usize,
        ef_construction: c.u32("ef_construction")? as usize,
        ef_search: c.u32("ef_search")? as usize,
        seed: c.u64("seed")?,
    };
    if kind == KIND_HNSW {
        params
            .validate()
            .map_err(|e| format_err(path, e.to_string()))?;
    } else if params != HnswParams::zero() {
        return Err(format_err(path, "flat index with HNSW parameters"));
    }
    let model_len = c.u32("model id length")? as usize;
    if model_len > MAX_MODEL_ID {
        return Err(format_err(path, format!("model id of {model_len} bytes")));
    }
    let model_id = std::str::from_utf8(c.take(model_len as u64, "model id")?)
        .map_err(|_| format_err(path, "model id is not UTF-8"))?
        .to_owned();
    let ids_len = c.u64("ids length")?;
    // Each id takes at least 5 bytes: a count that cannot fit is refused before allocating.
    if count.checked_mul(5).is_none_or(|x| x > ids_len) {
        return Err(format_err(
            path,
            format!("{count} ids cannot fit in {ids_len} bytes"),
        ));
    }
    let mut ids_b = Cur {
        b: c.take(ids_len, "ids")?,
        path,
    };
    let mut ids = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let n = ids_b.u32("id length")?;
        let s = std::str::from_utf8(ids_b.take(n as u64, "id")?)
            .map_err(|_| format_err(path, "id is not UTF-8"))?;
        ids.push(s.to_owned());
    }
    if !ids_b.b.is_empty() {
        return Err(format_err(path, "ids section longer than its ids"));
    }
    let ids = IdMap::from_vec(ids).map_err(|e| format_err(path, e.to_string()))?;
    let payload_len = c.u64("payload length")?;
    let payload = c.take(payload_len, "payload")?;
    if !c.b.is_empty() {
        return Err(format_err(
            path,
            format!("{} bytes of trailing data", c.b.len()),
        ));
    }
    Ok(Loaded {
        metric,
        distance,
        dim,
        count: count as usize,
        params,
        model_id,
        ids,
        payload,
    })
}

pub(crate) fn load_flat(path: &Path) -> Result<FlatIndex> {
    let bytes = read_verified(path)?;
    let l = parse(path, &bytes, KIND_FLAT)?;
    let want = (l.count as u64).checked_mul(l.dim as u64 * 4);
    if want != Some(l.payload.len() as u64) {
        return Err(format_err(
            path,
            "vector payload size does not match count x dim",
        ));
    }
    let v: Vec<f32> = l
        .payload
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
        return Err(format_err(
            path,
            format!("row {} holds a non-finite value", pos / l.dim),
        ));
    }
    Ok(FlatIndex {
        dim: l.dim,
        metric: l.metric,
        storage: Storage::Owned(v),
        ids: l.ids,
        model_id: l.model_id,
    })
}

pub(crate) fn load_hnsw(path: &Path) -> Result<HnswIndex> {
    let bytes = read_verified(path)?;
    let l = parse(path, &bytes, KIND_HNSW)?;
    let mut c = Cur { b: l.payload, path };
    let n = c.u64("graph length")?;
    let graph = c.take(n, "graph")?;
    let n = c.u64("data length")?;
    let data = c.take(n, "data")?;
    if !c.b.is_empty() {
        return Err(format_err(path, "trailing bytes in the HNSW payload"));
    }
    HnswIndex::from_dump(path, &l, l.distance, graph, data)
}
