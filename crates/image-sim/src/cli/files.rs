//! The files commands read and write: `.npy` matrices, id lists, sidecars, atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// [`embed_pipeline::atomic::write_atomic`], with errors naming `path`.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    embed_pipeline::atomic::write_atomic(path, write)
        .with_context(|| format!("writing {}", path.display()))
}

/// `OUT` with its extension replaced by `suffix` (`emb.npy` → `emb.skipped.csv`).
pub fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// Quotes a CSV field when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `path,reason` rows (with a header) for images that could not be used.
pub fn write_skipped_csv(path: &Path, skipped: &[embed_pipeline::Skipped]) -> anyhow::Result<()> {
    write_atomic(path, |w| {
        writeln!(w, "path,reason")?;
        for s in skipped {
            writeln!(
                w,
                "{},{}",
                csv_field(&s.path.to_string_lossy()),
                csv_field(&s.reason)
            )?;
        }
        Ok(())
    })
}

/// Errors when two of a command's output files are the same file (e.g. `--ids` = `--out`):
/// the second write would replace the first.
pub fn check_distinct_outputs<P: AsRef<Path>>(outputs: &[P]) -> anyhow::Result<()> {
    let full: Vec<PathBuf> = outputs
        .iter()
        .map(|p| std::path::absolute(p.as_ref()).unwrap_or_else(|_| p.as_ref().to_path_buf()))
        .collect();
    for (i, a) in full.iter().enumerate() {
        if full[..i].contains(a) {
            bail!(
                "{} is given for two outputs (e.g. --ids equal to --out): each needs its own file",
                outputs[i].as_ref().display()
            );
        }
    }
    Ok(())
}

/// Reads a text file of ids, one per line (a trailing newline is optional; `\r\n` accepted).
pub fn read_id_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading ids from {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect())
}

/// Reads an N×D float32 .npy into (row-major data, N, D).
pub fn read_matrix(path: &Path) -> anyhow::Result<(Vec<f32>, usize, usize)> {
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
pub fn check_overwrite(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.exists() {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    Ok(())
}
