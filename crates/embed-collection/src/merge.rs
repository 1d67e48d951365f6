//! Merging the shard collections of a sharded build (one per task) into one collection equal
//! to an unsharded build: the same rows in the same order, the same ids, the same index answers.

use std::path::{Path, PathBuf};

use crate::collection::Collection;
use crate::error::{Error, Result, io_err};
use crate::manifest::{CollectionInfo, MANIFEST_FILE, Manifest, Source};
use crate::writer::{CollectionWriter, WriteOptions};

/// The sub-folders of `shards_dir` (sorted by name): the shard collections of one build, as
/// the Slurm script lays them out (`OUT/shards/shard_<i>`).
pub fn shard_dirs(shards_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(shards_dir).map_err(io_err(shards_dir))? {
        let entry = entry.map_err(io_err(shards_dir))?;
        if entry.file_type().map_err(io_err(shards_dir))?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Merges shard collections into `out` (created or replaced atomically). Every shard must come
/// from the same image list (digest and length), the same shard count, model, weights,
/// preprocessing, dimension, metric, dtype and index; each shard index must appear exactly
/// once; each shard's rows plus skipped images must be its share of the list. A folder
/// without a committed collection (a task that did not finish) and missing shard numbers are
/// named in the error. Shard files are hard-linked when `out` is on the same file system.
pub fn merge_shards(shards: &[PathBuf], out: &Path, options: WriteOptions) -> Result<Manifest> {
    if shards.is_empty() {
        return Err(Error::Shards("no shard folders given".into()));
    }
    let mut opened = Vec::with_capacity(shards.len());
    let mut unfinished = Vec::new();
    for dir in shards {
        if !dir.join(MANIFEST_FILE).exists() {
            unfinished.push(dir.display().to_string());
            continue;
        }
        opened.push(Collection::open(dir)?);
    }
    let first = opened.first().ok_or_else(|| {
        Error::Shards(format!(
            "no finished shard (no collection.json in {})",
            unfinished.join(", ")
        ))
    })?;
    let first_info = first.info()?;
    let source = source_of(first)?;
    let count = source.1.count;
    let mut slots: Vec<Option<usize>> = vec![None; count];
    for (i, c) in opened.iter().enumerate() {
        let info = c.info()?;
        first_info
            .check_compatible(&info)
            .map_err(|e| Error::Shards(format!("{}: {e}", c.dir().display())))?;
        let (src, spec) = source_of(c)?;
        if src.list_digest != source.0.list_digest || src.list_len != source.0.list_len {
            return Err(Error::Shards(format!(
                "{} comes from another image list ({} of {} images) than {} ({} of {})",
                c.dir().display(),
                src.list_digest,
                src.list_len,
                first.dir().display(),
                source.0.list_digest,
                source.0.list_len
            )));
        }
        if spec.count != count || spec.index >= count {
            return Err(Error::Shards(format!(
                "{} is shard {spec} but {} is one of {count}",
                c.dir().display(),
                first.dir().display()
            )));
        }
        if let Some(j) = slots[spec.index] {
            return Err(Error::Shards(format!(
                "shard {spec} twice: {} and {}",
                opened[j].dir().display(),
                c.dir().display()
            )));
        }
        let share = spec.range(src.list_len as usize).len();
        let got = c.len() + c.skipped().len();
        if got != share {
            return Err(Error::Shards(format!(
                "{} (shard {spec}) accounts for {got} images (rows + skipped), its share of \
                 the list is {share}",
                c.dir().display()
            )));
        }
        slots[spec.index] = Some(i);
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| slots[i].is_none())
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        let mut msg = format!("missing shard(s) {} of {count}", missing.join(", "));
        if !unfinished.is_empty() {
            msg.push_str(&format!(
                "; unfinished (no collection.json): {}",
                unfinished.join(", ")
            ));
        }
        return Err(Error::Shards(msg));
    }

    let info = CollectionInfo {
        source: Some(Source {
            shard: None,
            ..source.0.clone()
        }),
        ..first_info
    };
    let mut w = CollectionWriter::replace(out, info)?;
    w.set_options(options)?;
    for slot in slots.into_iter().flatten() {
        let c = &opened[slot];
        let m = c.manifest();
        let mut row = 0usize;
        for s in &m.shards {
            let n = s.rows as usize;
            let npy = m.file(&s.embeddings);
            let meta = m.file(&s.metadata);
            let (Some(npy), Some(meta)) = (npy, meta) else {
                return Err(Error::Shards(format!(
                    "{}: shard files without checksums",
                    c.dir().display()
                )));
            };
            w.adopt_shard(
                &c.dir().join(&s.embeddings),
                &c.dir().join(&s.metadata),
                (npy, meta),
                &c.rows()[row..row + n],
            )?;
            row += n;
        }
        w.extend_skipped(c.skipped());
    }
    w.finish()
}

/// The list source and shard of a shard collection.
fn source_of(c: &Collection) -> Result<(&Source, crate::ShardSpec)> {
    let src = c.manifest().source.as_ref();
    match src.and_then(|s| s.shard.map(|spec| (s, spec))) {
        Some(pair) => Ok(pair),
        None => Err(Error::Shards(format!(
            "{} is not a shard of a sharded build (collection.json has no source shard)",
            c.dir().display()
        ))),
    }
}
