//! The Python reference pipeline (`scripts/gpu/baseline.py`), run on the same images and
//! device as the Rust measurement.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::measure::Figures;
use crate::ModelKind;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(super) fn find_script(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let rel = Path::new("scripts/gpu/baseline.py");
    let mut candidates = vec![rel.to_path_buf(), workspace_root().join(rel)];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("baseline.py"));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .context("scripts/gpu/baseline.py not found (pass --baseline-script)")
}

pub(super) fn find_python(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// What the Python pipeline measured.
pub(super) struct Python {
    /// Its rates, images per second.
    pub(super) figures: Figures,
    /// One image at a time through PIL + the processor + the model, images per second.
    pub(super) seed_style: f64,
    /// Everything the script printed, for the JSON output.
    pub(super) raw: serde_json::Value,
}

/// Runs the baseline script on `images` with the same batch, workers, device and precision.
pub(super) fn run(
    args: &super::Args,
    kind: ModelKind,
    images: &Path,
    batch: usize,
    workers: usize,
    cuda: bool,
) -> anyhow::Result<Python> {
    let script = find_script(args.baseline_script.as_deref())?;
    let py = find_python(args.python.as_deref());
    let mut cmd = Command::new(&py);
    cmd.arg(&script)
        .args(["--model", kind.name(), "--images"])
        .arg(images)
        .args(["--batch-size", &batch.to_string()])
        .args(["--workers", &workers.to_string()])
        .args(["--model-iters", &args.model_iters.to_string()])
        .args(["--device", if cuda { "cuda" } else { "cpu" }]);
    if let Some(p) = &args.runtime.precision {
        cmd.args(["--precision", p]);
    }
    log::info!("bench: running {} {}", py.display(), script.display());
    let out = cmd
        .output()
        .with_context(|| format!("running {}", py.display()))?;
    if !out.status.success() {
        bail!(
            "the Python baseline failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).context("baseline output")?;
    let r = &v["results"];
    let get = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    Ok(Python {
        figures: Figures {
            decode_preprocess: get("decode_preprocess"),
            model_only: get("model_only"),
            end_to_end: get("e2e"),
        },
        seed_style: get("seed_style"),
        raw: v,
    })
}
