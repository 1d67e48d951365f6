//! FAISS `IndexIVFPQ` files (`IwPQ`).
//!
//! Layout after the common header ([`crate::faiss_bin`]): nlist u64, nprobe u64; the coarse
//! quantiser as a whole flat index (`IxFI`/`IxF2`: header with ntotal = nlist, float count,
//! centroids); the direct map (type u8, then a `vector<int64>`, plus a vector of pairs for the
//! hash-table type); by_residual u8 (must be 1); code_size u64; the product quantiser (d u64,
//! M u64, nbits u64 = 8, centroids `vector<float>` of d × 256); the inverted lists `ilar`:
//! nlist u64, code_size u64, `full` (a `vector<size_t>` of nlist list sizes) or `sprs` (pairs
//! list, size for the non-empty lists; FAISS writes it when at most half the lists hold
//! vectors), then for each non-empty list its codes and its ids (i64). String ids live in the
//! same sidecar as flat files.

use std::path::Path;

use super::index::{InvList, IvfPqIndex};
use super::pq::{KSUB, ProductQuantizer};
use crate::error::Result;
use crate::faiss_bin::{FileBytes, Reader, Writer, flat_fourcc};
use crate::faiss_io::{
    IdSource, ReadOptions, commit_with_sidecars, create_with_sidecars, load_ids, sidecar_path,
    verified_meta,
};
use crate::faiss_meta::FaissMeta;
use crate::ids::IdMap;
use crate::persist::AtomicFile;
use crate::{MAX_DIM, Metric, VectorIndex};

/// Largest list count accepted (rows and lists are u32 here).
const MAX_NLIST: u64 = u32::MAX as u64;

/// Reads the coarse quantiser (a flat index) of an IVF file: `nlist × d` centroids.
pub(crate) fn read_coarse(
    r: &mut Reader<'_>,
    d: usize,
    nlist: usize,
    metric: Metric,
) -> Result<Vec<f32>> {
    let four = r.fourcc("quantizer fourcc")?;
    if &four != flat_fourcc(metric) {
        return Err(r.err(format!(
            "coarse quantiser {:?} is not the flat index of the IVF's metric ({:?})",
            String::from_utf8_lossy(&four),
            String::from_utf8_lossy(flat_fourcc(metric))
        )));
    }
    let q = r.header()?;
    if q.dim != d || q.ntotal != nlist || q.metric != metric {
        return Err(r.err(format!(
            "coarse quantiser holds {} centroids of dimension {} ({}), expected {nlist} of {d} ({metric})",
            q.ntotal, q.dim, q.metric
        )));
    }
    let count = r.u64("centroid float count")?;
    if Some(count) != (nlist as u64).checked_mul(d as u64) {
        return Err(r.err(format!("{count} centroid floats for {nlist} x {d}")));
    }
    r.f32s(nlist * d, "coarse centroids")
}

/// Skips the direct map (FAISS's id → list position map; rebuilt on demand, not used here).
pub(crate) fn skip_direct_map(r: &mut Reader<'_>) -> Result<()> {
    let kind = r.u8("direct map type")?;
    let n = r.vec_len(8, "direct map")?;
    r.take(8 * n, "direct map")?;
    match kind {
        0 | 1 => Ok(()),
        2 => {
            let n = r.vec_len(16, "direct map hash table")?;
            r.take(16 * n, "direct map hash table").map(|_| ())
        }
        k => Err(r.err(format!("unknown direct map type {k}"))),
    }
}

/// Reads `ilar` inverted lists: per list, codes and FAISS labels.
pub(crate) fn read_lists(
    r: &mut Reader<'_>,
    nlist: usize,
    code_size: usize,
    ntotal: usize,
) -> Result<Vec<(Vec<u8>, Vec<i64>)>> {
    let four = r.fourcc("inverted lists fourcc")?;
    if &four != b"ilar" {
        return Err(r.err(format!(
            "inverted lists {:?} are not supported (ilar is)",
            String::from_utf8_lossy(&four)
        )));
    }
    let n = r.size(MAX_NLIST, "inverted lists nlist")?;
    let cs = r.size(u64::MAX, "inverted lists code_size")?;
    if n != nlist || cs != code_size {
        return Err(r.err(format!(
            "inverted lists of {n} lists x {cs} bytes, expected {nlist} x {code_size}"
        )));
    }
    let kind = r.fourcc("list type")?;
    let mut sizes = vec![0usize; 0];
    let raw = r.i64_vec("list sizes")?;
    match &kind {
        b"full" => {
            if raw.len() != nlist {
                return Err(r.err(format!("{} list sizes for {nlist} lists", raw.len())));
            }
            sizes.reserve(nlist);
            for &s in &raw {
                sizes.push(usize::try_from(s).map_err(|_| r.err(format!("list size {s}")))?);
            }
        }
        b"sprs" => {
            if raw.len() % 2 != 0 {
                return Err(r.err("odd sparse list size vector"));
            }
            sizes = vec![0; nlist];
            for pair in raw.chunks_exact(2) {
                let (l, s) = (pair[0], pair[1]);
                let li = usize::try_from(l).ok().filter(|&l| l < nlist);
                let s = usize::try_from(s).ok();
                match (li, s) {
                    (Some(li), Some(s)) => sizes[li] = s,
                    _ => return Err(r.err(format!("sparse list entry ({l}, {})", pair[1]))),
                }
            }
        }
        other => {
            return Err(r.err(format!("list type {:?}", String::from_utf8_lossy(other))));
        }
    }
    let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
    if total != Some(ntotal) {
        return Err(r.err(format!(
            "the lists hold {total:?} vectors, the header says {ntotal}"
        )));
    }
    let mut lists = Vec::with_capacity(nlist);
    for &s in &sizes {
        if s == 0 {
            lists.push((Vec::new(), Vec::new()));
            continue;
        }
        let bytes = s
            .checked_mul(code_size)
            .ok_or_else(|| r.err("list too large"))?;
        let codes = r.take(bytes, "list codes")?.to_vec();
        let ids = r.i64s(s, "list ids")?;
        lists.push((codes, ids));
    }
    Ok(lists)
}

/// Writes `ilar` inverted lists, `full` or `sprs` as FAISS chooses.
pub(crate) fn write_lists(
    w: &mut Writer,
    f: &mut AtomicFile,
    code_size: usize,
    lists: &[(&[u8], Vec<i64>)],
) -> Result<()> {
    w.bytes(b"ilar")
        .u64(lists.len() as u64)
        .u64(code_size as u64);
    let non_empty = lists.iter().filter(|l| !l.1.is_empty()).count();
    if non_empty > lists.len() / 2 {
        w.bytes(b"full").u64(lists.len() as u64);
        for l in lists {
            w.u64(l.1.len() as u64);
        }
    } else {
        w.bytes(b"sprs").u64(2 * non_empty as u64);
        for (i, l) in lists.iter().enumerate().filter(|(_, l)| !l.1.is_empty()) {
            w.u64(i as u64).u64(l.1.len() as u64);
        }
    }
    w.flush(f)?;
    for (codes, ids) in lists {
        if ids.is_empty() {
            continue;
        }
        f.write_all(codes)?;
        for id in ids {
            w.i64(*id);
        }
        w.flush(f)?;
    }
    Ok(())
}

/// Rows per list, and the labels by row when they are not the row numbers.
pub(crate) type ListRows = (Vec<Vec<u32>>, Option<Vec<i64>>);

/// Rows for FAISS labels: the labels themselves when they are `0..n` in some order, else
/// their rank (distinct labels required). Returns per-list rows, and the labels by row when
/// they are not the row numbers.
pub(crate) fn rows_of_labels(r: &Reader<'_>, labels: &[Vec<i64>], n: usize) -> Result<ListRows> {
    let mut seen = vec![false; n];
    let identity = labels.iter().flatten().all(|&l| {
        let ok = usize::try_from(l).ok().filter(|&l| l < n && !seen[l]);
        if let Some(l) = ok {
            seen[l] = true;
        }
        ok.is_some()
    });
    if identity {
        let rows = labels
            .iter()
            .map(|l| l.iter().map(|&x| x as u32).collect())
            .collect();
        return Ok((rows, None));
    }
    let mut sorted: Vec<i64> = labels.iter().flatten().copied().collect();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(
            r.err("the inverted lists hold a label twice (distinct labels are required here)")
        );
    }
    let rank = |l: i64| sorted.binary_search(&l).unwrap_or(0) as u32;
    let rows = labels
        .iter()
        .map(|l| l.iter().map(|&x| rank(x)).collect())
        .collect();
    Ok((rows, Some(sorted)))
}

/// Ids: the sidecar (checked against the checksum record), else FAISS labels as decimal
/// strings (or row numbers), per `options`.
fn ids_for(
    path: &Path,
    n: usize,
    labels: &Option<Vec<i64>>,
    options: ReadOptions,
    meta: Option<&FaissMeta>,
) -> Result<IdMap> {
    let sidecar = match options.ids {
        IdSource::Sidecar => true,
        IdSource::Auto => sidecar_path(path).exists(),
        IdSource::NoSidecar => false,
    };
    match labels {
        Some(l) if !sidecar => IdMap::from_vec(l.iter().map(i64::to_string).collect()),
        _ => load_ids(path, n, options, meta),
    }
}

impl IvfPqIndex {
    /// Reads a FAISS `IndexIVFPQ` file (`IwPQ`: 8-bit codes, by residual, flat coarse quantiser
    /// of the index's metric, array inverted lists). Ids come from the sidecar, else from the
    /// FAISS labels (row numbers when they are `0..n`), per `options.ids`; `options.mmap` is
    /// ignored. The L2 precomputed table is rebuilt, as FAISS does on load.
    ///
    /// ```no_run
    /// use vecindex::ivf::IvfPqIndex;
    /// let index = IvfPqIndex::read_faiss(std::path::Path::new("refs.ivfpq"), Default::default())?;
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    pub fn read_faiss(path: &Path, options: ReadOptions) -> Result<Self> {
        let file = FileBytes::open(path)?;
        let meta = verified_meta(path, file.bytes())?;
        let mut r = Reader::new(file.bytes(), path);
        let four = r.fourcc("fourcc")?;
        if &four != b"IwPQ" {
            return Err(r.err(format!(
                "fourcc {:?} is not an IVF-PQ index (IwPQ)",
                String::from_utf8_lossy(&four)
            )));
        }
        let h = r.header()?;
        if !h.trained {
            return Err(r.err("the IVF-PQ index is not trained"));
        }
        if h.ntotal > u32::MAX as usize {
            return Err(r.err(format!("{} vectors (at most 2^32 - 1 here)", h.ntotal)));
        }
        let nlist = r.size(MAX_NLIST, "nlist")?;
        if nlist == 0 {
            return Err(r.err("nlist is 0"));
        }
        let nprobe = r.size(u64::MAX, "nprobe")?;
        let centroids = read_coarse(&mut r, h.dim, nlist, h.metric)?;
        skip_direct_map(&mut r)?;
        if r.u8("by_residual")? != 1 {
            return Err(r.err("IVF-PQ without residuals (by_residual = 0) is not supported"));
        }
        let code_size = r.size(MAX_DIM as u64, "code_size")?;
        let pq_d = r.size(MAX_DIM as u64, "PQ d")?;
        let m = r.size(MAX_DIM as u64, "PQ M")?;
        let nbits = r.u64("PQ nbits")?;
        if pq_d != h.dim || nbits != 8 || m == 0 || code_size != m {
            return Err(r.err(format!(
                "PQ of d {pq_d}, M {m}, {nbits} bits, code size {code_size}: only 8-bit PQ of the \
                 index's dimension {} with code size M is supported",
                h.dim
            )));
        }
        let pq_centroids = r.f32_vec("PQ centroids")?;
        if pq_centroids.len() != h.dim * KSUB {
            return Err(r.err(format!(
                "{} PQ centroid floats, expected d * 256",
                pq_centroids.len()
            )));
        }
        let pq = ProductQuantizer::from_centroids(h.dim, m, pq_centroids)
            .map_err(|e| r.err(e.to_string()))?;
        let raw = read_lists(&mut r, nlist, code_size, h.ntotal)?;
        r.finish()?;
        let labels: Vec<Vec<i64>> = raw.iter().map(|l| l.1.clone()).collect();
        let (rows, labels) = rows_of_labels(&r, &labels, h.ntotal)?;
        let ids = ids_for(path, h.ntotal, &labels, options, meta.as_ref())?;
        let metric = match &meta {
            Some(meta) => meta.metric(path, h.metric)?,
            None => h.metric,
        };
        let mut index = IvfPqIndex::from_parts(h.dim, metric, nprobe, centroids, pq)?;
        index.lists = raw
            .into_iter()
            .zip(rows)
            .map(|((codes, _), rows)| InvList { codes, rows })
            .collect();
        index.ids = ids;
        index.labels = labels;
        Ok(index)
    }

    /// Writes the index as a FAISS `IndexIVFPQ` file (loadable with `faiss.read_index`, nprobe
    /// stored) and its ids to the sidecar; both written to temporary files, synced, renamed.
    pub fn write_faiss(&self, path: &Path) -> Result<()> {
        let mut f = create_with_sidecars(path)?;
        let mut w = Writer::default();
        let (d, nlist) = (self.dim, self.nlist());
        w.header(b"IwPQ", d, self.len(), self.metric)
            .u64(nlist as u64)
            .u64(self.nprobe as u64)
            .header(flat_fourcc(self.metric), d, nlist, self.metric)
            .u64((nlist * d) as u64);
        for c in &self.centroids {
            w.f32(*c);
        }
        w.bytes(&[0]).u64(0); // no direct map
        w.bytes(&[1]).u64(self.m() as u64); // by_residual, code_size
        w.u64(d as u64)
            .u64(self.m() as u64)
            .u64(8)
            .f32_vec(self.pq.centroids());
        let label = |row: u32| match &self.labels {
            Some(l) => l[row as usize],
            None => row as i64,
        };
        let lists: Vec<(&[u8], Vec<i64>)> = self
            .lists
            .iter()
            .map(|l| (&l.codes[..], l.rows.iter().map(|&r| label(r)).collect()))
            .collect();
        write_lists(&mut w, &mut f, self.m(), &lists)?;
        commit_with_sidecars(f, path, self.metric, &self.ids)
    }
}
