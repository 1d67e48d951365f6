//! `slurm-script` (a submission script for a sharded `build` on a Slurm cluster) and
//! `merge-shards` (the job that joins the shards). Neither runs a model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use embed_collection::slurm::{BuildCommand, ImageSource, SlurmOptions, slurm_script};
use embed_collection::{WriteOptions, merge_shards, shard_dirs};

use crate::ModelKind;

/// Arguments of `slurm-script`: `build`'s, less `--shard`, plus the job's.
#[derive(clap::Args, Debug)]
pub struct ScriptArgs {
    /// Shard tasks in the job array.
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub shards: usize,
    /// The model family.
    #[arg(long, value_parser = crate::cli::model_kind)]
    pub model: ModelKind,
    /// Checkpoint folder (made absolute) or Hugging Face model id, as the compute nodes see it.
    #[arg(long)]
    pub weights: Option<String>,
    /// Embed every file of this folder (made absolute).
    #[arg(long, conflicts_with = "list", required_unless_present = "list")]
    pub images: Option<PathBuf>,
    /// Embed the files listed in this file (made absolute; relative paths inside it are
    /// read from the folder the script is run in, which is where the jobs start).
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// The final collection (made absolute); shards go to OUT/shards/, logs to OUT/logs/.
    #[arg(long)]
    pub out: PathBuf,
    /// Index kind: `flat` or `hnsw`.
    #[arg(long, value_parser = crate::cli::build::index_kind)]
    pub kind: Option<vecindex::IndexType>,
    /// `f32` or `f16`.
    #[arg(long, value_parser = crate::cli::build::dtype)]
    pub dtype: Option<embed_collection::Dtype>,
    /// Device of each task: `cuda` (one GPU per task, `--gres=gpu:1`; the task uses the GPU
    /// Slurm gives it through CUDA_VISIBLE_DEVICES) or `cpu` (no GPU asked for).
    #[arg(long, default_value = "cuda", value_parser = crate::cli::device)]
    pub device: String,
    /// `f32`, `f16` or `bf16`.
    #[arg(long, value_parser = crate::cli::precision)]
    pub precision: Option<String>,
    /// Images per model call.
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub batch_size: Option<usize>,
    /// Decoding threads per task (default: one per CPU the task gets).
    #[arg(long, value_parser = crate::cli::workers)]
    pub workers: Option<usize>,
    /// `build`'s --max-failure-rate.
    #[arg(long, value_parser = crate::cli::fraction)]
    pub max_failure_rate: Option<f64>,
    /// The `image-sim` the compute nodes run (default: this one, by absolute path: the
    /// cluster's nodes must see it at the same place, e.g. on a shared filesystem).
    #[arg(long)]
    pub program: Option<PathBuf>,
    /// Job name prefix (`NAME-shards`, `NAME-merge`).
    #[arg(long, default_value = "image-sim")]
    pub job_name: String,
    /// `sbatch --partition`.
    #[arg(long)]
    pub partition: Option<String>,
    /// `sbatch --time` of each task and of the merge.
    #[arg(long)]
    pub time: Option<String>,
    /// `sbatch --account`.
    #[arg(long)]
    pub account: Option<String>,
    /// `sbatch --qos`.
    #[arg(long)]
    pub qos: Option<String>,
    /// `sbatch --mem`.
    #[arg(long)]
    pub mem: Option<String>,
    /// `sbatch --cpus-per-task`.
    #[arg(long, value_parser = crate::cli::at_least_one)]
    pub cpus_per_task: Option<usize>,
    /// Another `sbatch` option for both jobs, e.g. `--sbatch-arg=--requeue` (repeatable).
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Further `build` arguments, after `--` (e.g. `-- --pooling cls`).
    #[arg(last = true)]
    pub build_args: Vec<String>,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("making {} absolute", p.display()))
}

/// Runs `slurm-script`: prints the script.
pub fn run_script(args: ScriptArgs) -> anyhow::Result<ExitCode> {
    let program = match &args.program {
        Some(p) if p.components().count() > 1 => absolute(p)?,
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("image-sim"),
    };
    let images = match (&args.images, &args.list) {
        (Some(d), _) => ImageSource::Dir(absolute(d)?),
        (None, Some(l)) => ImageSource::List(absolute(l)?),
        (None, None) => anyhow::bail!("give --images DIR or --list FILE"),
    };
    let weights = args.weights.as_deref().map(|w| {
        let p = Path::new(w);
        if p.exists() {
            absolute(p)
        } else {
            Ok(PathBuf::from(w))
        }
    });
    let mut extra = Vec::new();
    if let Some(d) = args.dtype {
        extra.extend(["--dtype".to_string(), d.to_string()]);
    }
    if let Some(r) = args.max_failure_rate {
        extra.extend(["--max-failure-rate".to_string(), r.to_string()]);
    }
    extra.extend(args.build_args.iter().cloned());
    let build = BuildCommand {
        program,
        images,
        model: args.model.name().to_string(),
        weights: weights.transpose()?,
        kind: args.kind.map(|k| k.name().to_string()),
        device: args.device.trim().to_ascii_lowercase(),
        precision: args.precision.clone(),
        batch_size: args.batch_size,
        workers: args.workers,
        extra_args: extra,
        out: absolute(&args.out)?,
    };
    let mut sbatch_args = Vec::new();
    if let Some(q) = &args.qos {
        sbatch_args.push(format!("--qos={q}"));
    }
    sbatch_args.extend(args.sbatch_args.iter().cloned());
    let slurm = SlurmOptions {
        shards: args.shards,
        job_name: args.job_name.clone(),
        partition: args.partition.clone(),
        time: args.time.clone(),
        account: args.account.clone(),
        mem: args.mem.clone(),
        cpus_per_task: args.cpus_per_task,
        sbatch_args,
    };
    print!("{}", slurm_script(&build, &slurm)?);
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `merge-shards`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The folder holding one shard collection per sub-folder (`OUT/shards` of the script).
    pub shards_dir: PathBuf,
    /// The merged collection (created, or replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `merge-shards`.
pub fn run_merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let dirs = shard_dirs(&args.shards_dir)?;
    let m = merge_shards(&dirs, &args.out, WriteOptions::default())?;
    eprintln!(
        "merged {} shards into {}: {} rows, {} skipped (listed in {})",
        dirs.len(),
        args.out.display(),
        m.rows,
        m.skipped.len(),
        args.out.join(embed_collection::SKIPPED_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}
