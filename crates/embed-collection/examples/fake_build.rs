//! A stand-in for `image-sim build` / `merge-shards` / `slurm-script` that embeds nothing: each
//! image's vector is drawn from a generator seeded by its path (paths containing `bad` are
//! skipped), so a sharded build on a Slurm cluster can be checked end to end against an
//! unsharded one without a model. Used by `scripts/slurm/e2e.sh`.
//!
//! ```text
//! fake_build build --list FILE --device cpu|cuda [--shard auto] --out DIR
//! fake_build merge-shards SHARDS_DIR --out DIR
//! fake_build slurm-script --list FILE --device cpu|cuda --shards N --out DIR
//! fake_build compare DIR_A DIR_B
//! ```
//! `compare` checks any two collections (of any dimension) for the same rows, skipped images,
//! vectors and search answers; `scripts/slurm/e2e.sh` uses it on collections `image-sim`
//! wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use embed_collection::slurm::{BuildCommand, ImageSource, SlurmOptions, shard_from_process_env};
use embed_collection::{
    Collection, CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec, ShardSpec, Source,
    WriteOptions, list_digest, merge_shards, shard_dirs,
};
use rand::{Rng, SeedableRng};

const DIM: usize = 32;

fn flag(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn vector(path: &str) -> Vec<f32> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h.finish());
    (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn build(list: &Path, shard: Option<ShardSpec>, out: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(list).context("reading the list")?;
    let paths: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let range = shard.map_or(0..paths.len(), |s| s.range(paths.len()));
    let info = CollectionInfo {
        model_id: "fake/random".into(),
        weights_digest: "sha256:none".into(),
        preprocessing: "none".into(),
        dim: DIM,
        metric: vecindex::Metric::InnerProduct,
        dtype: Dtype::F16,
        index: IndexSpec::hnsw_default(),
        source: Some(Source {
            list_digest: list_digest(&paths),
            list_len: paths.len() as u64,
            shard,
        }),
        tool: "fake_build".into(),
    };
    let mut w = CollectionWriter::replace(out, info)?;
    w.set_options(WriteOptions {
        rows_per_file: 50,
        hnsw_threads: 1,
    })?;
    for &p in &paths[range] {
        if p.contains("bad") {
            w.skip(p, "not an image");
            continue;
        }
        let stem = Path::new(p)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let row = ImageRow {
            image_path: p.into(),
            id: stem,
            width: 64,
            height: 48,
        };
        w.push_batch(&[row], &vector(p))?;
        // Slow enough that a requeue or a kill can land mid-build.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let m = w.finish()?;
    println!(
        "{}: {} rows, {} skipped",
        out.display(),
        m.rows,
        m.skipped.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = flag(&args, "--out").map(PathBuf::from);
    match args.first().map(String::as_str) {
        Some("build") => {
            let shard = match flag(&args, "--shard").as_deref() {
                Some("auto") => Some(shard_from_process_env()?),
                None => None,
                Some(other) => bail!("--shard {other}: only auto"),
            };
            let list = PathBuf::from(flag(&args, "--list").context("--list")?);
            build(&list, shard, &out.context("--out")?)
        }
        Some("merge-shards") => {
            let dirs = shard_dirs(Path::new(&args[1]))?;
            let m = merge_shards(&dirs, &out.context("--out")?, WriteOptions::default())?;
            println!("merged {} shards: {} rows", dirs.len(), m.rows);
            Ok(())
        }
        Some("slurm-script") => {
            let build = BuildCommand {
                program: std::env::current_exe()?,
                images: ImageSource::List(flag(&args, "--list").context("--list")?.into()),
                model: "fake/random".into(),
                weights: None,
                kind: None,
                device: flag(&args, "--device").unwrap_or_else(|| "cpu".into()),
                precision: None,
                batch_size: None,
                workers: None,
                extra_args: vec![],
                out: out.context("--out")?,
            };
            let slurm = SlurmOptions {
                shards: flag(&args, "--shards").context("--shards")?.parse()?,
                job_name: "e2e".into(),
                ..Default::default()
            };
            print!("{}", embed_collection::slurm::slurm_script(&build, &slurm)?);
            Ok(())
        }
        Some("compare") => {
            let (a, b) = (
                Collection::open(Path::new(&args[1]))?,
                Collection::open(Path::new(&args[2]))?,
            );
            if a.rows() != b.rows() || a.skipped() != b.skipped() {
                bail!("rows or skipped lists differ");
            }
            let vectors = |c: &Collection| {
                let mut v = Vec::new();
                c.for_each_vector_block(|_, b| {
                    v.extend_from_slice(b);
                    Ok(())
                })
                .map(|_| v)
            };
            let (va, vb) = (vectors(&a)?, vectors(&b)?);
            if va != vb {
                bail!("vectors differ");
            }
            if a.manifest().dim != b.manifest().dim {
                bail!("dimensions differ");
            }
            for q in va.chunks_exact(a.manifest().dim).step_by(7) {
                let ha: Vec<_> = a.search(q, 5)?.iter().map(|h| (h.row, h.score)).collect();
                let hb: Vec<_> = b.search(q, 5)?.iter().map(|h| (h.row, h.score)).collect();
                if ha != hb {
                    bail!("search answers differ");
                }
            }
            let same_index = std::fs::read(a.dir().join("image.index"))?
                == std::fs::read(b.dir().join("image.index"))?;
            println!(
                "same {} rows, {} skipped, vectors and search answers; index files identical: {same_index}",
                a.len(),
                a.skipped().len()
            );
            Ok(())
        }
        _ => bail!("usage: fake_build build|merge-shards|slurm-script|compare ..."),
    }
}
