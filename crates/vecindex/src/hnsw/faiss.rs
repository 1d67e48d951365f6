//! FAISS `IndexHNSWSQ` files (`IHNs`), read and written.
//!
//! Layout (FAISS `impl/index_write.cpp`, `write_HNSW`), every number little-endian, each
//! `vector<T>` a u64 element count then the elements:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | fourcc | `IHNs` | |
//! | header | d i32, ntotal i64, 2 × i64, is_trained u8, metric_type i32 | [`crate::faiss_bin`] |
//! | assign_probas | `vector<double>` | level probabilities (used by FAISS when adding) |
//! | cum_nneighbor_per_level | `vector<int>` | `[0, 2M, 3M, …]`: start of each layer's slots |
//! | levels | `vector<int>` | per point, its number of layers (top layer + 1) |
//! | offsets | `vector<size_t>` | ntotal + 1; `offsets[i+1] = offsets[i] + cum[levels[i]]` |
//! | neighbors | `vector<int>` | point `i`'s layer `l` list in `offsets[i] + cum[l] .. + cum[l+1]`, ended by −1 |
//! | entry_point, max_level, efConstruction, efSearch, upper_beam | 5 × i32 | (`upper_beam` unused, 1) |
//! | storage | an `IndexScalarQuantizer` (`IxSQ`) file | the codes ([`crate::sq`]) |
//!
//! String ids live in the same `.ids` sidecar as flat files; this crate also writes the
//! `.meta.json` checksum sidecar ([`crate::faiss_io::meta_path`]), which records the metric
//! (a cosine index is an inner-product file over normalised vectors) and the files' lengths
//! and CRC-32s, checked on reading when present. Reading checks every count, offset and
//! neighbour against the file before anything is allocated from it.

use std::path::Path;

use super::distance::Distance;
use super::graph::{Graph, Node};
use super::index::{HnswParams, MAX_EF, MAX_M};
use super::sq_index::HnswSqIndex;
use super::store::SqRows;
use crate::error::Result;
use crate::faiss_bin::{FileBytes, Reader, Writer};
use crate::faiss_io::{
    ReadOptions, commit_with_sidecars, create_with_sidecars, load_ids, verified_meta,
};
use crate::ids::IdMap;
use crate::sq::SqCodes;
use crate::sq::faiss::{read_quantizer, write_quantizer};

/// FAISS's level probabilities for `m` (`HNSW::set_default_probas(M, 1 / ln M)`).
fn default_probas(m: usize) -> Vec<f64> {
    let mult = 1.0 / (m as f64).ln();
    let mut p = Vec::new();
    for level in 0.. {
        let proba = (-f64::from(level) / mult).exp() * (1.0 - (-1.0 / mult).exp());
        if proba < 1e-9 || level > 64 {
            break;
        }
        p.push(proba);
    }
    p
}

impl HnswSqIndex {
    /// Writes the index as a FAISS `IndexHNSWSQ` file (loadable with `faiss.read_index`), its
    /// ids to the sidecar and its metric and checksums to the `.meta.json` sidecar; each
    /// written to a temporary file, synced and renamed.
    pub fn write_faiss(&self, path: &Path) -> Result<()> {
        let g = &self.graph;
        let n = g.n;
        // FAISS's slots per layer (2M, then M), or more if a list read from a file is longer.
        let c0 = (2 * self.params.m).max(g.l0_stride - 1);
        let cu = self.params.m.max(g.upper_stride - 1);
        let probas = default_probas(self.params.m);
        let top = g.level.iter().copied().max().unwrap_or(0);
        let layers = probas.len().max(usize::from(top) + 1);
        let cum: Vec<i32> = (0..=layers)
            .map(|l| {
                if l == 0 {
                    0
                } else {
                    (c0 + (l - 1) * cu) as i32
                }
            })
            .collect();

        let mut f = create_with_sidecars(path)?;
        let mut w = Writer::default();
        w.header(b"IHNs", g.dim, n, self.metric);
        w.u64(probas.len() as u64);
        for p in &probas {
            w.bytes(&p.to_le_bytes());
        }
        w.u64(cum.len() as u64);
        for c in &cum {
            w.i32(*c);
        }
        w.u64(n as u64);
        for &l in &g.level {
            w.i32(i32::from(l) + 1);
        }
        w.u64(n as u64 + 1);
        let mut offset = 0u64;
        w.u64(0);
        for &l in &g.level {
            offset += cum[usize::from(l) + 1] as u64;
            w.u64(offset);
        }
        w.u64(offset);
        for row in 0..n as u32 {
            for layer in 0..=g.level[row as usize] {
                let (list, cap) = match layer {
                    0 => (g.layer0(row), c0),
                    _ => (g.upper_links(row, layer), cu),
                };
                for slot in 0..cap {
                    w.i32(list.get(slot).map_or(-1, |&x| x as i32));
                }
            }
        }
        let (entry, top) = if n == 0 {
            (-1, -1)
        } else {
            (g.entry as i32, i32::from(g.max_level))
        };
        w.i32(entry)
            .i32(top)
            .i32(self.params.ef_construction as i32)
            .i32(self.params.ef_search as i32)
            .i32(1);
        // The storage: an IndexScalarQuantizer.
        let codes = &g.store.codes;
        w.header(b"IxSQ", g.dim, n, self.metric);
        write_quantizer(&mut w, codes.quantizer());
        w.u64(codes.codes().len() as u64);

        w.flush(&mut f)?;
        for chunk in codes.codes().chunks(1 << 24) {
            f.write_all(chunk)?;
        }
        commit_with_sidecars(f, path, self.metric, &self.ids)
    }

    /// Reads a FAISS `IndexHNSWSQ` file (`IHNs`, 8-bit or fp16 codes, inner product or L2).
    /// Ids come from the sidecar or are row numbers, per `options.ids` (`options.mmap` is
    /// ignored: the file is read into memory). With a `.meta.json` sidecar the metric comes
    /// from it and the files must match its lengths and CRC-32s ([`crate::Error::Damaged`]).
    /// A truncated, inconsistent or out-of-range file is an error, never a panic.
    pub fn read_faiss(path: &Path, options: ReadOptions) -> Result<Self> {
        let file = FileBytes::open(path)?;
        let meta = verified_meta(path, file.bytes())?;
        let mut r = Reader::new(file.bytes(), path);
        let mut index = parse(&mut r)?;
        if let Some(meta) = &meta {
            index.metric = meta.metric(path, index.metric)?;
        }
        index.ids = load_ids(path, index.graph.n, options, meta.as_ref())?;
        Ok(index)
    }
}

/// A `vector<int>`.
fn i32_vec(r: &mut Reader<'_>, what: &str) -> Result<Vec<i32>> {
    let n = r.vec_len(4, what)?;
    Ok(r.take(4 * n, what)?
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Parses the whole file (ids are row numbers).
fn parse(r: &mut Reader<'_>) -> Result<HnswSqIndex> {
    let four = r.fourcc("fourcc")?;
    if &four != b"IHNs" {
        return Err(r.err(format!(
            "fourcc {:?} is not an HNSW scalar quantiser index (IHNs)",
            String::from_utf8_lossy(&four)
        )));
    }
    let h = r.header()?;
    let n = h.ntotal;
    if u32::try_from(n).is_err() {
        return Err(r.err(format!("{n} points: more than u32 rows")));
    }
    let probas = r.vec_len(8, "assign_probas")?;
    r.take(8 * probas, "assign_probas")?;
    let cum = i32_vec(r, "cum_nneighbor_per_level")?;
    if cum.first().is_some_and(|&c| c != 0) || cum.windows(2).any(|w| w[1] < w[0]) {
        return Err(r.err("cum_nneighbor_per_level does not rise from 0"));
    }
    let levels = i32_vec(r, "levels")?;
    if levels.len() != n {
        return Err(r.err(format!("{} levels for {n} points", levels.len())));
    }
    if let Some((i, &l)) = levels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l < 1 || l as usize >= cum.len() || l > 256)
    {
        return Err(r.err(format!(
            "point {i} has {l} layers (1..{} allowed)",
            cum.len().min(257)
        )));
    }
    let offsets = {
        let count = r.vec_len(8, "offsets")?;
        if count != n + 1 {
            return Err(r.err(format!("{count} offsets for {n} points")));
        }
        let raw = r.i64s(count, "offsets")?;
        raw.into_iter().map(|o| o as u64).collect::<Vec<u64>>()
    };
    let neighbors = i32_vec(r, "neighbors")?;
    for i in 0..n {
        let end = offsets[i].checked_add(cum[levels[i] as usize] as u64);
        if end != Some(offsets[i + 1]) || offsets[i + 1] > neighbors.len() as u64 {
            return Err(r.err(format!(
                "offsets of point {i} ({}..{}) do not fit its {} layers or the {} neighbour slots",
                offsets[i],
                offsets[i + 1],
                levels[i],
                neighbors.len()
            )));
        }
    }
    if let Some(bad) = neighbors.iter().find(|&&v| v < -1 || v as i64 >= n as i64) {
        return Err(r.err(format!("neighbour {bad} outside -1..{n}")));
    }
    let entry = r.i32("entry_point")?;
    let max_level = r.i32("max_level")?;
    let ef_construction = r.i32("efConstruction")?;
    let ef_search = r.i32("efSearch")?;
    let _upper_beam = r.i32("upper_beam")?;
    if n > 0 {
        let top = usize::try_from(entry)
            .ok()
            .filter(|&e| e < n)
            .map(|e| levels[e] - 1);
        if top != Some(max_level) {
            return Err(r.err(format!(
                "entry point {entry} (of {n}) with max_level {max_level}: not a point on the top layer"
            )));
        }
    }
    let (c0, cu) = (
        cum.get(1).map_or(0, |&c| c as usize),
        cum.windows(2)
            .skip(1)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0),
    );
    let m = if cu > 0 { cu } else { c0 / 2 };
    let in_ef = |v: i32| (1..=MAX_EF as i64).contains(&i64::from(v));
    let params = HnswParams {
        m: m.clamp(2, MAX_M),
        ef_construction: if in_ef(ef_construction) {
            ef_construction as usize
        } else {
            return Err(r.err(format!(
                "efConstruction {ef_construction} outside 1..={MAX_EF}"
            )));
        },
        ef_search: if in_ef(ef_search) {
            ef_search as usize
        } else {
            return Err(r.err(format!("efSearch {ef_search} outside 1..={MAX_EF}")));
        },
        seed: 0,
    };
    // The storage.
    let four = r.fourcc("storage fourcc")?;
    if &four != b"IxSQ" {
        return Err(r.err(format!(
            "storage fourcc {:?} is not a scalar quantiser index (IxSQ)",
            String::from_utf8_lossy(&four)
        )));
    }
    let sh = r.header()?;
    if (sh.dim, sh.ntotal, sh.metric) != (h.dim, n, h.metric) {
        return Err(r.err(format!(
            "storage (d {}, {} vectors, {}) disagrees with the index (d {}, {n} vectors, {})",
            sh.dim, sh.ntotal, sh.metric, h.dim, h.metric
        )));
    }
    let sq = read_quantizer(r, h.dim)?;
    let codes = r.byte_vec("codes")?;
    if Some(codes.len()) != n.checked_mul(sq.code_size()) {
        return Err(r.err(format!(
            "{} code bytes for {n} vectors of {} bytes",
            codes.len(),
            sq.code_size()
        )));
    }
    r.finish()?;
    let store = SqRows {
        // Read at random by every search: huge pages, as the f32 rows get.
        codes: SqCodes::from_codes(sq, h.metric, crate::huge_pages::copied(codes))?,
    };
    let distance = Distance::of_metric(h.metric);
    let graph = if n == 0 {
        Graph::empty_with(distance, h.dim, store)
    } else {
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let links = (0..levels[i] as usize)
                    .map(|l| {
                        let from = (offsets[i] + cum[l] as u64) as usize;
                        let to = (offsets[i] + cum[l + 1] as u64) as usize;
                        neighbors[from..to]
                            .iter()
                            .take_while(|&&v| v >= 0)
                            .map(|&v| v as u32)
                            .filter(|&v| v as usize != i)
                            .collect()
                    })
                    .collect();
                Node {
                    row: i,
                    level: (levels[i] - 1) as u8,
                    links,
                }
            })
            .collect();
        Graph::assemble_with(
            distance,
            h.dim,
            n,
            entry as usize,
            max_level as u8,
            &nodes,
            store,
        )
        .map_err(|m| r.err(m))?
    };
    let index = HnswSqIndex {
        graph,
        metric: h.metric,
        params,
        ids: IdMap::new(),
        model_id: String::new(),
    };
    index.params.validate().map_err(|e| r.err(e.to_string()))?;
    Ok(index)
}
