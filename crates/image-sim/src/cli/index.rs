//! `index`: builds an index from embeddings: exact (flat f32, 8-bit or half-float codes),
//! HNSW (over f32 rows or 8-bit codes) or IVF-PQ, given by `--kind` or chosen for a memory
//! budget by `--max-memory` (`vecindex::choose_kind`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use vecindex::{AnyIndex, HnswIndex, HnswParams, IndexType, Metric, Plan, choose_kind};

use super::files::{check_overwrite, read_id_lines, read_matrix};
use super::progress::TerminalProgress;

/// Kind of index to build.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Exact search; written as a FAISS `IndexFlatIP`/`IndexFlatL2` file plus `<out>.ids`.
    Flat,
    /// Approximate search (HNSW); written in vecindex's own format (an embedded hnsw_rs dump).
    Hnsw,
    /// Exact search over 8-bit codes (FAISS `IndexScalarQuantizer`, a quarter of the memory).
    Sq8,
    /// Exact search over half floats (FAISS `IndexScalarQuantizer` fp16, half the memory).
    F16,
    /// HNSW over 8-bit codes (FAISS `IndexHNSWSQ`, about a third of HNSW's memory at d 768).
    HnswSq8,
    /// IVF with product quantisation (FAISS `IndexIVFPQ`, nlist and m from the data size).
    Ivfpq,
}

impl From<Kind> for IndexType {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Flat => IndexType::Flat,
            Kind::Hnsw => IndexType::Hnsw,
            Kind::Sq8 => IndexType::Sq8,
            Kind::F16 => IndexType::F16,
            Kind::HnswSq8 => IndexType::HnswSq8,
            Kind::Ivfpq => IndexType::IvfPq,
        }
    }
}

/// A size: bytes, or a number with K, M, G or T (powers of 1024; an optional `iB`/`B`
/// after the letter), e.g. `512M`, `1.5G`, `2GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, shift) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 10),
        Some('m') => (&body[..body.len() - 1], 20),
        Some('g') => (&body[..body.len() - 1], 30),
        Some('t') => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 800M, 4G, 1.5GiB)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("size {s:?} must be positive"));
    }
    Ok((v * (1u64 << shift) as f64) as u64)
}

/// Similarity measure.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricArg {
    /// Inner product (cosine on unit vectors).
    Ip,
    /// Squared Euclidean distance (score = -distance).
    L2,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Ip => Metric::InnerProduct,
            MetricArg::L2 => Metric::L2,
        }
    }
}

/// Arguments of `index`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// N×D float32 .npy of reference embeddings.
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Text file with N ids, one per line, in the order of the embeddings' rows.
    #[arg(long)]
    pub ids: PathBuf,
    /// Index kind; without it, `--max-memory` chooses one.
    #[arg(long, value_enum, required_unless_present = "max_memory")]
    pub kind: Option<Kind>,
    /// Memory budget (e.g. 800M, 4G): the most accurate kind that fits is built (exact search
    /// up to 10,000 vectors, else HNSW over f32 rows, else HNSW over 8-bit codes, else IVF-PQ);
    /// with `--kind`, an error if that kind does not fit.
    #[arg(long, value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Similarity measure.
    #[arg(long, value_enum, default_value = "ip")]
    pub metric: MetricArg,
    /// Output index file (flat: also `<out>.ids`).
    #[arg(long)]
    pub out: PathBuf,
    /// Model id recorded in HNSW index files.
    #[arg(long, default_value = "")]
    pub model_id: String,
    /// HNSW: neighbours per node (M).
    #[arg(long, default_value_t = HnswParams::default().m, value_parser = super::hnsw_m)]
    pub m: usize,
    /// HNSW: candidate list size while building.
    #[arg(long, default_value_t = HnswParams::default().ef_construction, value_parser = super::hnsw_ef)]
    pub ef_construction: usize,
    /// HNSW: default candidate list size while searching.
    #[arg(long, default_value_t = HnswParams::default().ef_search, value_parser = super::hnsw_ef)]
    pub ef_search: usize,
    /// HNSW: seed of the insertion order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
}

/// Names the inputs in an error from the index itself (a bad row, a duplicate id...).
fn inputs(args: &Args) -> String {
    format!(
        "indexing {} (ids {})",
        args.embeddings.display(),
        args.ids.display()
    )
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_overwrite(&args.out, args.force)?;
    if args.kind.is_some_and(|k| k != Kind::Hnsw) {
        check_overwrite(&vecindex::faiss_io::sidecar_path(&args.out), args.force)?;
    }
    super::create_parent(&args.out)?;
    let (data, n, d) = read_matrix(&args.embeddings)?;
    if n == 0 {
        bail!(
            "{} holds no vectors: nothing to index",
            args.embeddings.display()
        );
    }
    let ids = read_id_lines(&args.ids)?;
    if ids.len() != n {
        bail!(
            "{} holds {} ids for {n} embeddings in {}",
            args.ids.display(),
            ids.len(),
            args.embeddings.display()
        );
    }
    if let Some(bad) = ids.iter().find(|id| id.contains([',', '"'])) {
        bail!("id {bad:?} holds a comma or quote, which the predictions CSV cannot carry");
    }
    let metric = Metric::from(args.metric);
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef_search,
        seed: args.seed,
    };
    let plan = plan(args.kind.map(Into::into), args.max_memory, n, d, params)?;
    eprintln!("index kind: {} ({})", plan.kind, plan.reason);
    if args.kind.is_none() && plan.kind != IndexType::Hnsw {
        // Every kind but HNSW over f32 writes an ids sidecar.
        check_overwrite(&vecindex::faiss_io::sidecar_path(&args.out), args.force)?;
    }
    let start = std::time::Instant::now();
    let index = build_any(&plan, d, metric, &ids, &data)
        .with_context(|| inputs(&args))?
        .with_model_id(args.model_id.clone());
    index.write(&args.out)?;
    eprintln!(
        "indexed {n} vectors of dimension {d} ({}, {metric}, {:.1} MiB in memory) in {:.2?} -> {}",
        plan.kind,
        index.memory_bytes() as f64 / (1u64 << 20) as f64,
        start.elapsed(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The kind to build: the one asked for (checked against the budget when there is one), or
/// the budget's choice.
pub(crate) fn plan(
    kind: Option<IndexType>,
    budget: Option<u64>,
    n: usize,
    d: usize,
    params: HnswParams,
) -> anyhow::Result<Plan> {
    Ok(match (kind, budget) {
        (Some(kind), None) => Plan::of(kind, n, d, params),
        (Some(kind), Some(budget)) => {
            let plan = Plan::of(kind, n, d, params);
            if plan.estimated_bytes > budget {
                bail!(
                    "a {} index of {n} vectors of dimension {d} needs about {:.1} MiB, over --max-memory {:.1} MiB",
                    plan.kind,
                    plan.estimated_bytes as f64 / (1u64 << 20) as f64,
                    budget as f64 / (1u64 << 20) as f64
                );
            }
            plan
        }
        (None, Some(budget)) => choose_kind(n, d, budget, params)?,
        (None, None) => bail!("give --kind or --max-memory"),
    })
}

/// [`AnyIndex::build`] with progress (points inserted, rate, ETA) on a terminal for HNSW.
pub fn build_any<S: AsRef<str>>(
    plan: &Plan,
    dim: usize,
    metric: Metric,
    ids: &[S],
    vectors: &[f32],
) -> vecindex::Result<AnyIndex> {
    let progress = TerminalProgress::new("points");
    let result = AnyIndex::build(plan, dim, metric, ids, vectors, &|done, total| {
        progress.set(done, total)
    });
    progress.finish();
    result
}

/// [`HnswIndex::build`] with progress (points inserted, rate, ETA) on a terminal.
pub fn build_hnsw<S: AsRef<str>>(
    dim: usize,
    metric: Metric,
    params: HnswParams,
    ids: &[S],
    vectors: &[f32],
) -> vecindex::Result<HnswIndex> {
    let progress = TerminalProgress::new("points");
    let mut index = HnswIndex::new(dim, metric, params, ids.len())?;
    let result = index.add_with_progress(ids, vectors, &|done, total| progress.set(done, total));
    progress.finish();
    result.map(|()| index)
}
