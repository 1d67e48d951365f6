//! Test support (feature `fixtures`): runs `tests/python/encoders_fixtures.py` once into a
//! cache folder under `target/` and compares outputs with the reference's criteria.
//!
//! Not part of the stable API; the encoder crates' tests and the workspace benches use it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::ArrayD;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// `<workspace>/.venv/bin/python`, or an error saying how to create it.
pub fn python() -> Result<PathBuf, String> {
    let p = workspace_root().join(".venv").join("bin").join("python");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "the Python reference is missing: {} does not exist. Create the virtual environment \
             (scripts/setup.sh, or `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt`).",
            p.display()
        ))
    }
}

/// A Python helper script under `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("tests").join("python").join(name)
}

/// Generates (once; cached by the script's content) the fixtures of a family (`clip` or
/// `dinov2`), tiny or full-size, and returns their folder.
pub fn generate(family: &str, full: bool) -> Result<PathBuf, String> {
    let script = script("encoders_fixtures.py");
    let text = std::fs::read(&script).map_err(|e| format!("{}: {e}", script.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let tag = format!(
        "{family}-{}-{:016x}",
        if full { "full" } else { "tiny" },
        hasher.finish()
    );
    let root = workspace_root().join("target").join("encoders-fixtures");
    let dir = root.join(&tag);
    if dir.join("DONE").is_file() {
        return Ok(dir);
    }
    // One generation at a time in this process: the temporary folder below is named after the
    // process, so two tests of one binary generating at once would clear each other's files
    // (seen in CI: a test read a config.json another thread was rewriting). Other processes
    // use their own folder and the rename below.
    static GENERATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = GENERATING.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("DONE").is_file() {
        return Ok(dir);
    }
    let tmp = root.join(format!("{tag}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut cmd = Command::new(python()?);
    cmd.arg(&script).arg(&tmp).arg("--family").arg(family);
    if full {
        cmd.arg("--full");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Another test process may have finished first; either copy is complete.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if dir.join("DONE").is_file() {
        Ok(dir)
    } else {
        Err(format!("fixture folder {} is incomplete", dir.display()))
    }
}

/// Reads a float32 `.npy` file.
pub fn read_npy(path: &Path) -> Result<ArrayD<f32>, String> {
    embed_core::npy::read_f32_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Cosine similarity and maximum absolute difference of two arrays of equal shape (in `f64`),
/// and the reference's maximum absolute value.
pub fn compare(got: &ArrayD<f32>, want: &ArrayD<f32>) -> Result<(f64, f64, f64), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} vs reference {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (mut dot, mut ng, mut nw, mut maxdiff, mut maxref) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (&g, &w) in got.iter().zip(want.iter()) {
        let (g, w) = (f64::from(g), f64::from(w));
        dot += g * w;
        ng += g * g;
        nw += w * w;
        maxdiff = maxdiff.max((g - w).abs());
        maxref = maxref.max(w.abs());
    }
    let cos = if ng == 0.0 || nw == 0.0 {
        0.0
    } else {
        dot / (ng.sqrt() * nw.sqrt())
    };
    Ok((cos, maxdiff, maxref))
}

/// Checks the parity criteria: cosine ≥ 0.99999 and max |diff| ≤ 1e-4 × max |ref|.
/// Returns a description for the test log.
pub fn check_parity(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>) -> Result<String, String> {
    let (cos, maxdiff, maxref) = compare(got, want).map_err(|e| format!("{what}: {e}"))?;
    let line = format!("{what}: cosine {cos:.9}, max |diff| {maxdiff:.3e} (ref max {maxref:.3e})");
    if cos >= 0.99999 && maxdiff <= 1e-4 * maxref {
        Ok(line)
    } else {
        Err(format!("parity failed: {line}"))
    }
}
