//! `search`: searches an index with query embeddings, writes predictions CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use vecindex::AnyIndex;
use vecindex::faiss_io::{IdSource, ReadOptions};

use super::files::{check_overwrite, read_id_lines, read_matrix, write_atomic};

/// Arguments of `search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Index file: a FAISS file (flat, scalar quantiser, HNSW over codes or IVF-PQ; ids from
    /// `<index>.ids`, else row numbers) or a vecindex flat/HNSW file.
    #[arg(long)]
    pub index: PathBuf,
    /// Q×D float32 .npy of query embeddings.
    #[arg(long)]
    pub queries: PathBuf,
    /// Text file with Q query ids, one per line.
    #[arg(long)]
    pub query_ids: PathBuf,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10, value_parser = super::at_least_one)]
    pub k: usize,
    /// Output CSV: `query_id,reference_id,score`, higher score = more similar (L2: -distance).
    #[arg(long)]
    pub out: PathBuf,
    /// HNSW: candidate list size (default: the one stored in the index).
    #[arg(long, value_parser = super::hnsw_ef)]
    pub ef: Option<usize>,
    /// IVF-PQ: inverted lists searched per query (default: the one stored in the index).
    #[arg(long, value_parser = super::at_least_one)]
    pub nprobe: Option<usize>,
    /// FAISS files: memory-map the vectors instead of reading them.
    #[arg(long)]
    pub mmap: bool,
    /// FAISS files: ignore `<index>.ids` and use row numbers (or IndexIDMap ids) as ids.
    #[arg(long)]
    pub no_sidecar: bool,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_overwrite(&args.out, args.force)?;
    super::create_parent(&args.out)?;
    let (queries, nq, d) = read_matrix(&args.queries)?;
    let qids = read_id_lines(&args.query_ids)?;
    if qids.len() != nq {
        bail!(
            "{} holds {} ids for {nq} queries",
            args.query_ids.display(),
            qids.len()
        );
    }
    if let Some(bad) = qids
        .iter()
        .find(|id| id.is_empty() || id.contains([',', '"']))
    {
        bail!("query id {bad:?} is empty or holds a comma or quote");
    }
    {
        let mut seen = std::collections::HashMap::with_capacity(qids.len());
        for (line, id) in qids.iter().enumerate() {
            if let Some(first) = seen.insert(id.as_str(), line) {
                bail!(
                    "{}: query id {id:?} on lines {} and {} (the predictions could not tell them apart)",
                    args.query_ids.display(),
                    first + 1,
                    line + 1
                );
            }
        }
    }
    let start = std::time::Instant::now();
    let ids = if args.no_sidecar {
        IdSource::NoSidecar
    } else {
        IdSource::Auto
    };
    let options = ReadOptions {
        mmap: args.mmap,
        ids,
    };
    let mut any = AnyIndex::open(&args.index, options)?;
    let kind = any.kind();
    if let Some(ef) = args.ef
        && !any.set_ef_search(ef)?
    {
        bail!(
            "--ef applies to HNSW indexes; {} is a {kind} index",
            args.index.display()
        );
    }
    if let Some(nprobe) = args.nprobe
        && !any.set_nprobe(nprobe)
    {
        bail!(
            "--nprobe applies to IVF-PQ indexes; {} is a {kind} index",
            args.index.display()
        );
    }
    let index = any.as_dyn();
    if index.dim() != d {
        bail!(
            "the queries in {} have dimension {d}, the index {} {}",
            args.queries.display(),
            args.index.display(),
            index.dim()
        );
    }
    let loaded = start.elapsed();
    let results = index
        .search(&queries, args.k)
        .with_context(|| format!("searching with the queries of {}", args.queries.display()))?;
    let searched = start.elapsed() - loaded;
    // Every row's reference id, checked before anything is written.
    let mut rows: Vec<(&str, &str, f32)> = Vec::with_capacity(results.iter().map(Vec::len).sum());
    for (qid, hits) in qids.iter().zip(&results) {
        for h in hits {
            let rid = index
                .id(h.row)
                .context("search returned a row without an id")?;
            if rid.contains([',', '"']) {
                bail!("reference id {rid:?} holds a comma or quote");
            }
            rows.push((qid, rid, h.score));
        }
    }
    write_atomic(&args.out, |w| {
        writeln!(w, "query_id,reference_id,score")?;
        rows.iter()
            .try_for_each(|(qid, rid, score)| writeln!(w, "{qid},{rid},{score}"))
    })?;
    let rows = rows.len();
    eprintln!(
        "{nq} queries, k = {}, {} index of {} vectors ({}): loaded in {loaded:.2?}, searched in {searched:.2?}; {rows} rows -> {}",
        args.k,
        kind,
        index.len(),
        index.metric(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
