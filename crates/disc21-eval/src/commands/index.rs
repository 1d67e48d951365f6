//! `disc21-eval index`: builds a flat (FAISS file + ids sidecar) or HNSW index from embeddings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use vecindex::{FlatIndex, HnswParams, Metric};

/// Kind of index to build.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Exact search; written as a FAISS `IndexFlatIP`/`IndexFlatL2` file plus `<out>.ids`.
    Flat,
    /// Approximate search (HNSW); written in vecindex's own format (an embedded hnsw_rs dump).
    Hnsw,
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

/// Arguments of `disc21-eval index`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// N×D float32 .npy of reference embeddings.
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Text file with N ids, one per line, in the order of the embeddings' rows.
    #[arg(long)]
    pub ids: PathBuf,
    /// Index kind.
    #[arg(long, value_enum)]
    pub kind: Kind,
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

/// Reads a text file of ids, one per line (a trailing newline is optional; `\r\n` accepted).
pub(crate) fn read_id_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading ids from {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect())
}

/// Reads an N×D float32 .npy into (row-major data, N, D).
pub(crate) fn read_matrix(path: &Path) -> anyhow::Result<(Vec<f32>, usize, usize)> {
    let a = embed_core::npy::read_f32_file(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let (n, d) = match a.shape() {
        [n, d] => (*n, *d),
        other => bail!(
            "{}: expected an N×D array, got shape {other:?}",
            path.display()
        ),
    };
    let data = match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().copied().collect(),
    };
    Ok((data, n, d))
}

/// Fails when `path` exists and `force` is not set.
pub(crate) fn check_overwrite(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.exists() {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    Ok(())
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
    if args.kind == Kind::Flat {
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
    let start = std::time::Instant::now();
    match args.kind {
        Kind::Flat => {
            let index = FlatIndex::from_vectors(d, metric, &ids, &data)
                .with_context(|| inputs(&args))?
                .with_model_id(args.model_id.clone());
            index.write_faiss(&args.out)?;
        }
        Kind::Hnsw => {
            let params = HnswParams {
                m: args.m,
                ef_construction: args.ef_construction,
                ef_search: args.ef_search,
                seed: args.seed,
            };
            let index = disc21_eval::benchmark::build_hnsw(d, metric, params, &ids, &data, true)
                .with_context(|| inputs(&args))?
                .with_model_id(args.model_id.clone());
            index.save(&args.out)?;
        }
    }
    eprintln!(
        "indexed {n} vectors of dimension {d} ({:?}, {metric}) in {:.2?} -> {}",
        args.kind,
        start.elapsed(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
