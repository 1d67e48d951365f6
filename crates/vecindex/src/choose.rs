//! Which index to build for a memory budget: [`IndexType`], [`Plan`], [`choose_kind`].
//!
//! The rule, most accurate first: exact search ([`IndexType::Flat`]) for up to
//! [`FLAT_UP_TO`] vectors (a scan of that many costs less than a graph's upkeep and is exact);
//! else HNSW over f32 rows if it fits; else HNSW over 8-bit codes (a quarter of the vector
//! bytes, recall within about a point of f32's); else IVF-PQ, with `nlist` and `m` from the
//! data ([`ivfpq_options_for`]) and `m` lowered until it fits. Each kind's bytes are
//! estimated by [`estimate_bytes`] from the layout this crate holds in memory (vectors or
//! codes, neighbour lists, centroids) plus [`ID_BYTES`] a vector for the ids; the estimate of
//! HNSW's upper layers uses the expected number of levels, so a built index can differ from
//! it by a fraction of a percent.

use crate::error::{Error, Result};
use crate::hnsw::HnswParams;
use crate::ivf::IvfPqOptions;

/// Up to this many vectors the rule picks exact search.
pub const FLAT_UP_TO: usize = 10_000;

/// Bytes a vector's id is estimated to take (the string and its place in the id map).
pub const ID_BYTES: usize = 64;

/// The kinds of index this crate builds, as named on a command line (`flat`, `hnsw`, `sq8`,
/// `f16`, `hnsw-sq8`, `ivfpq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexType {
    /// Exact search over f32 rows ([`crate::FlatIndex`]).
    Flat,
    /// HNSW over f32 rows ([`crate::HnswIndex`]).
    Hnsw,
    /// Exact search over 8-bit codes ([`crate::sq::FlatSqIndex`]).
    Sq8,
    /// Exact search over half floats ([`crate::sq::FlatSqIndex`]).
    F16,
    /// HNSW over 8-bit codes ([`crate::HnswSqIndex`]).
    HnswSq8,
    /// IVF with product quantisation ([`crate::ivf::IvfPqIndex`]).
    IvfPq,
}

impl IndexType {
    /// Every kind, in the order of the command line's list.
    pub const ALL: [IndexType; 6] = [
        IndexType::Flat,
        IndexType::Hnsw,
        IndexType::Sq8,
        IndexType::F16,
        IndexType::HnswSq8,
        IndexType::IvfPq,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Flat => "flat",
            IndexType::Hnsw => "hnsw",
            IndexType::Sq8 => "sq8",
            IndexType::F16 => "f16",
            IndexType::HnswSq8 => "hnsw-sq8",
            IndexType::IvfPq => "ivfpq",
        }
    }
}

impl std::fmt::Display for IndexType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for IndexType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        IndexType::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "index kind {s:?} (use flat, hnsw, sq8, f16, hnsw-sq8 or ivfpq)"
                ))
            })
    }
}

/// What to build: a kind, its parameters, the bytes it is estimated to hold, and why it was
/// chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The kind.
    pub kind: IndexType,
    /// HNSW parameters (HNSW kinds).
    pub hnsw: HnswParams,
    /// IVF-PQ parameters (IVF-PQ).
    pub ivfpq: IvfPqOptions,
    /// [`estimate_bytes`] of the kind with these parameters.
    pub estimated_bytes: u64,
    /// Why this kind, in a sentence.
    pub reason: String,
}

impl Plan {
    /// A plan for a kind given by the user (no budget).
    pub fn of(kind: IndexType, n: usize, dim: usize, hnsw: HnswParams) -> Self {
        let ivfpq = ivfpq_options_for(n, dim);
        Self {
            kind,
            hnsw,
            ivfpq,
            estimated_bytes: estimate_bytes(kind, n, dim, &hnsw, &ivfpq),
            reason: "asked for".into(),
        }
    }
}

/// IVF-PQ parameters for `n` vectors of `dim`: `nlist` the power of two nearest `4 √n`
/// within 16..=65,536 and at most `n / 39` (FAISS's fewest training points per centroid),
/// at least 1; `m` the largest of 96, 64, 48, 32, 16, 8, 4, 2, 1 that divides `dim` and leaves
/// at least 8 dimensions per sub-quantiser (96 at d 768, 64 at d 512); `nprobe` 16.
pub fn ivfpq_options_for(n: usize, dim: usize) -> IvfPqOptions {
    let target = 4.0 * (n as f64).sqrt();
    let pow = target.log2().round().clamp(4.0, 16.0) as u32;
    let nlist = (1usize << pow).min(n / 39).max(1);
    let m = [96, 64, 48, 32, 16, 8, 4, 2, 1]
        .into_iter()
        .find(|&m| dim.is_multiple_of(m) && dim / m >= 8)
        .unwrap_or(1);
    IvfPqOptions {
        nlist,
        m,
        ..IvfPqOptions::default()
    }
}

/// Bytes `kind` holds for `n` vectors of `dim` with these parameters, ids included (an
/// estimate: see the module docs).
pub fn estimate_bytes(
    kind: IndexType,
    n: usize,
    dim: usize,
    hnsw: &HnswParams,
    ivfpq: &IvfPqOptions,
) -> u64 {
    let (n, d) = (n as u64, dim as u64);
    let m = hnsw.m.max(2) as u64;
    // Layer 0: count + 2M neighbours; upper layers: 1 / (M - 1) records of count + M expected
    // per point; level byte and upper-layer offset.
    let graph = n * (4 * (1 + 2 * m) + 5) + n * 4 * (1 + m) / (m - 1);
    let ids = n * ID_BYTES as u64;
    ids + match kind {
        IndexType::Flat => 4 * n * d,
        IndexType::Hnsw => n * d.div_ceil(16) * 64 + graph,
        IndexType::Sq8 => n * d + 8 * d,
        IndexType::F16 => 2 * n * d,
        IndexType::HnswSq8 => n * d + 8 * d + graph,
        IndexType::IvfPq => {
            let pq = ivfpq.m as u64;
            // Codes and rows; coarse centroids; PQ centroids twice (as stored, transposed).
            n * (pq + 4) + 4 * ivfpq.nlist as u64 * d + 2 * 4 * 256 * d
        }
    }
}

/// The most accurate kind whose [`estimate_bytes`] fits `budget` bytes for `n` vectors of
/// `dim` (the rule in the module docs), for an inner-product or cosine index; an error when
/// not even the smallest IVF-PQ fits.
///
/// ```
/// use vecindex::{HnswParams, IndexType, choose_kind};
/// let p = HnswParams::default();
/// // 1M DINOv2 vectors: HNSW over f32 needs ~3.4 GB, over 8-bit codes ~1.1 GB.
/// let plan = choose_kind(1_000_000, 768, 2 << 30, p)?;
/// assert_eq!(plan.kind, IndexType::HnswSq8);
/// let plan = choose_kind(1_000_000, 768, 512 << 20, p)?;
/// assert_eq!((plan.kind, plan.ivfpq.m), (IndexType::IvfPq, 96));
/// # Ok::<(), vecindex::Error>(())
/// ```
pub fn choose_kind(n: usize, dim: usize, budget: u64, hnsw: HnswParams) -> Result<Plan> {
    let mut ivfpq = ivfpq_options_for(n, dim);
    let est = |kind, ivfpq: &IvfPqOptions| estimate_bytes(kind, n, dim, &hnsw, ivfpq);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let plan = |kind, ivfpq, reason: String| Plan {
        kind,
        hnsw,
        ivfpq,
        estimated_bytes: est(kind, &ivfpq),
        reason,
    };
    let flat = est(IndexType::Flat, &ivfpq);
    if n <= FLAT_UP_TO && flat <= budget {
        return Ok(plan(
            IndexType::Flat,
            ivfpq,
            format!(
                "{n} vectors (at most {FLAT_UP_TO}): exact search, {:.1} MiB of {:.1} MiB",
                mib(flat),
                mib(budget)
            ),
        ));
    }
    let f32_graph = est(IndexType::Hnsw, &ivfpq);
    if f32_graph <= budget {
        return Ok(plan(
            IndexType::Hnsw,
            ivfpq,
            format!(
                "HNSW over f32 rows fits: {:.1} MiB of {:.1} MiB",
                mib(f32_graph),
                mib(budget)
            ),
        ));
    }
    let sq_graph = est(IndexType::HnswSq8, &ivfpq);
    if sq_graph <= budget {
        return Ok(plan(
            IndexType::HnswSq8,
            ivfpq,
            format!(
                "HNSW over f32 rows needs {:.1} MiB, over the budget of {:.1} MiB; over 8-bit codes {:.1} MiB",
                mib(f32_graph),
                mib(budget),
                mib(sq_graph)
            ),
        ));
    }
    loop {
        let b = est(IndexType::IvfPq, &ivfpq);
        if b <= budget {
            return Ok(plan(
                IndexType::IvfPq,
                ivfpq,
                format!(
                    "HNSW over 8-bit codes needs {:.1} MiB, over the budget of {:.1} MiB; IVF-PQ with nlist {} and m {} ({} bytes a vector) {:.1} MiB",
                    mib(sq_graph),
                    mib(budget),
                    ivfpq.nlist,
                    ivfpq.m,
                    ivfpq.m,
                    mib(b)
                ),
            ));
        }
        // Fewer sub-quantisers, as long as one still divides the dimension.
        match (1..ivfpq.m).rev().find(|&m| dim.is_multiple_of(m)) {
            Some(m) => ivfpq.m = m,
            None => {
                return Err(Error::OverBudget(format!(
                    "no index of {n} vectors of dimension {dim} fits {:.1} MiB: IVF-PQ with one byte a vector needs {:.1} MiB",
                    mib(budget),
                    mib(b)
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p() -> HnswParams {
        HnswParams::default()
    }

    #[test]
    fn names_round_trip() {
        for k in IndexType::ALL {
            assert_eq!(k.name().parse::<IndexType>().unwrap(), k);
        }
        assert!("hnsw_sq8".parse::<IndexType>().is_err());
    }

    /// Each kind is chosen exactly when its estimate fits and no more accurate one does.
    #[test]
    fn the_most_accurate_kind_that_fits() {
        let (n, d) = (100_000, 768);
        let o = ivfpq_options_for(n, d);
        let e = |k| estimate_bytes(k, n, d, &p(), &o);
        let (hnsw, sq, pq) = (
            e(IndexType::Hnsw),
            e(IndexType::HnswSq8),
            e(IndexType::IvfPq),
        );
        assert!(pq < sq && sq < hnsw);
        // HNSW-SQ8 is about a third of HNSW f32 at d 768.
        let ratio = sq as f64 / hnsw as f64;
        assert!((0.25..0.40).contains(&ratio), "{ratio}");
        assert_eq!(choose_kind(n, d, hnsw, p()).unwrap().kind, IndexType::Hnsw);
        assert_eq!(
            choose_kind(n, d, hnsw - 1, p()).unwrap().kind,
            IndexType::HnswSq8
        );
        assert_eq!(choose_kind(n, d, sq, p()).unwrap().kind, IndexType::HnswSq8);
        let plan = choose_kind(n, d, sq - 1, p()).unwrap();
        assert_eq!((plan.kind, plan.ivfpq.m), (IndexType::IvfPq, 96));
        assert!(plan.estimated_bytes < sq);
        assert!(plan.reason.contains("IVF-PQ"), "{}", plan.reason);
        // Below IVF-PQ with m 96: fewer sub-quantisers.
        let plan = choose_kind(n, d, pq - 1, p()).unwrap();
        assert_eq!(plan.kind, IndexType::IvfPq);
        assert!(plan.ivfpq.m < 96 && d % plan.ivfpq.m == 0);
        assert!(plan.estimated_bytes < pq);
        // Nothing fits.
        assert!(matches!(
            choose_kind(n, d, 1 << 20, p()),
            Err(Error::OverBudget(_))
        ));
        // Small sets are searched exactly when they fit.
        assert_eq!(
            choose_kind(5_000, d, 1 << 30, p()).unwrap().kind,
            IndexType::Flat
        );
    }

    #[test]
    fn ivfpq_parameters_follow_the_data_size() {
        let o = ivfpq_options_for(1_000_000, 768);
        assert_eq!((o.nlist, o.m), (4096, 96));
        let o = ivfpq_options_for(100_000, 512);
        assert_eq!((o.nlist, o.m), (1024, 64));
        // At least 39 training points per list.
        let o = ivfpq_options_for(2_000, 100);
        assert_eq!(o.nlist, 2_000 / 39);
        assert_eq!(o.m, 4);
        assert_eq!(ivfpq_options_for(10, 3).nlist, 1);
    }

    /// The estimate of HNSW-SQ8 is what a built index holds, to within 5 %.
    #[test]
    fn estimate_matches_a_built_index() {
        let (n, d) = (3000, 64);
        let data: Vec<f32> = (0..n * d)
            .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 1000.0)
            .collect();
        let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let hp = HnswParams {
            m: 8,
            ef_construction: 20,
            ..p()
        };
        let index = crate::HnswSqIndex::build(
            d,
            crate::Metric::InnerProduct,
            crate::sq::SqKind::Sq8,
            hp,
            &ids,
            &data,
        )
        .unwrap();
        let est = estimate_bytes(IndexType::HnswSq8, n, d, &hp, &IvfPqOptions::default())
            - (n * ID_BYTES) as u64;
        let got = index.memory_bytes() as f64;
        assert!((est as f64 / got - 1.0).abs() < 0.05, "{est} vs {got}");
    }
}
