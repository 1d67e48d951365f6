//! `merge`: joins the outputs of `embed --shard I/N` runs, in shard order, into the
//! files one unsharded run writes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use ndarray::{Array2, Axis};

use super::embed_meta::EmbedMeta;
use super::files::{check_distinct_outputs, sidecar, write_atomic};

/// Arguments of `merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shards' `.npy` files (any order; each needs its `.ids.txt`, `.skipped.csv` and
    /// `.meta.json` beside it, as `embed` writes them).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output `.npy`.
    #[arg(long)]
    pub out: PathBuf,
    /// Output ids (default: OUT with extension `.ids.txt`).
    #[arg(long)]
    pub ids: Option<PathBuf>,
    /// Overwrite existing outputs.
    #[arg(long)]
    pub force: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ids_out = args
        .ids
        .clone()
        .unwrap_or_else(|| sidecar(&args.out, "ids.txt"));
    let outputs = [
        &args.out,
        &ids_out,
        &sidecar(&args.out, "skipped.csv"),
        &sidecar(&args.out, "meta.json"),
    ];
    check_distinct_outputs(&outputs)?;
    if !args.force
        && let Some(existing) = outputs.iter().find(|p| p.exists())
    {
        bail!("{} exists (use --force to overwrite)", existing.display());
    }
    for p in outputs {
        super::create_parent(p)?;
    }
    let mut shards = Vec::new();
    for input in &args.inputs {
        let meta_path = sidecar(input, "meta.json");
        let meta: EmbedMeta = serde_json::from_str(
            &std::fs::read_to_string(&meta_path)
                .with_context(|| meta_path.display().to_string())?,
        )
        .with_context(|| meta_path.display().to_string())?;
        shards.push((meta, input.clone()));
    }
    shards.sort_by_key(|(m, _)| m.shard.index);
    let first = shards[0].0.clone();
    let count = first.shard.count;
    ensure!(
        shards.len() == count,
        "{} inputs for an extraction of {count} shards",
        shards.len()
    );
    for (i, (m, p)) in shards.iter().enumerate() {
        ensure!(
            m.shard.index == i && m.shard.count == count,
            "{}: shard {} does not fit (expected {i}/{count}; shards missing or repeated)",
            p.display(),
            m.shard
        );
        ensure!(
            m.extraction == first.extraction
                && m.model_id == first.model_id
                && m.dim == first.dim
                && m.normalized == first.normalized,
            "{}: from another extraction (model, list or options differ)",
            p.display()
        );
    }
    let mut rows: Vec<Array2<f32>> = Vec::new();
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    for (m, p) in &shards {
        let a = embed_core::npy::read_f32_file(p)?;
        let a = a
            .into_dimensionality::<ndarray::Ix2>()
            .with_context(|| format!("{}: not a 2-D array", p.display()))?;
        ensure!(
            a.nrows() == m.rows && a.ncols() == m.dim,
            "{}: {:?} does not match its metadata ({} × {})",
            p.display(),
            a.dim(),
            m.rows,
            m.dim
        );
        let id_path = sidecar(p, "ids.txt");
        let text =
            std::fs::read_to_string(&id_path).with_context(|| id_path.display().to_string())?;
        let these: Vec<String> = text.lines().map(str::to_string).collect();
        ensure!(
            these.len() == m.rows,
            "{}: {} ids for {} rows",
            id_path.display(),
            these.len(),
            m.rows
        );
        ids.extend(these);
        let sk = sidecar(p, "skipped.csv");
        let text = std::fs::read_to_string(&sk).with_context(|| sk.display().to_string())?;
        skipped.extend(text.lines().skip(1).map(str::to_string));
        rows.push(a);
    }
    let views: Vec<_> = rows.iter().map(|a| a.view()).collect();
    let all = ndarray::concatenate(Axis(0), &views)?;
    let meta = EmbedMeta {
        rows: all.nrows(),
        skipped: skipped.len(),
        shard: embed_pipeline::Shard::ALL,
        ..first
    };
    write_atomic(&ids_out, |w| {
        ids.iter().try_for_each(|id| writeln!(w, "{id}"))
    })?;
    write_atomic(&sidecar(&args.out, "skipped.csv"), |w| {
        writeln!(w, "path,reason")?;
        skipped.iter().try_for_each(|l| writeln!(w, "{l}"))
    })?;
    write_atomic(&sidecar(&args.out, "meta.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, &meta)?;
        writeln!(w)
    })?;
    write_atomic(&args.out, |w| embed_core::npy::write_f32(w, &all))?;
    eprintln!(
        "merged {} shards: {} × {} into {}",
        count,
        all.nrows(),
        all.ncols(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
