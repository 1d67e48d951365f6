//! The report of a benchmark run: `report.md` and `report.json` (CLIP and DINOv2 side by side),
//! the predictions of each model as CSV, plots (precision–recall curves, accuracy bars,
//! throughput bars) and a retrieval gallery.

mod gallery;
mod markdown;
mod plots;

use std::path::{Path, PathBuf};

use crate::benchmark::BenchmarkResult;
use crate::dataset::EvalSet;
use crate::metrics::{MetricsError, write_predictions};

pub use gallery::{GalleryOptions, write_gallery};

/// What can go wrong while writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file could not be written.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The output folder already holds a report and `force` is off.
    #[error("{} already exists; pass --force to overwrite it", .0.display())]
    Exists(PathBuf),
    /// Drawing a plot or the gallery failed.
    #[error("drawing {what}: {message}")]
    Draw {
        /// Which picture.
        what: &'static str,
        /// What failed.
        message: String,
    },
    /// Writing predictions failed.
    #[error(transparent)]
    Predictions(#[from] MetricsError),
}

/// Result alias of this module.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Where and on what a run happened.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MachineInfo {
    /// CPU model (from `/proc/cpuinfo` where available).
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Operating system and architecture.
    pub os: String,
    /// The device the models ran on (`cpu`, `cuda:0 (NVIDIA H100 …)`).
    pub device: String,
}

impl MachineInfo {
    /// Describes this machine; `device` is the models' device as chosen.
    pub fn detect(device: &str) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!(" {}", s.trim()))
            .unwrap_or_default();
        let mut device = device.to_string();
        if device.starts_with("cuda") {
            let name = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=name", "--format=csv,noheader"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .filter(|n| !n.is_empty());
            if let Some(name) = name {
                device = format!("{device} ({name})");
            }
        }
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!(
                "{} {}{kernel}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            device,
        }
    }
}

/// Context of a report besides the results themselves.
#[derive(Clone, Debug)]
pub struct ReportInfo {
    /// The machine.
    pub machine: MachineInfo,
    /// The command line that produced the run.
    pub command: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Total wall time of the run, seconds.
    pub wall_seconds: f64,
}

/// The files a report consists of, relative to its folder.
pub const REPORT_FILES: &[&str] = &[
    "report.md",
    "report.json",
    "pr_curves.png",
    "accuracy.png",
    "throughput.png",
    "gallery.png",
];

fn predictions_file(name: &str) -> String {
    format!("predictions_{name}.csv")
}

/// Fails with [`ReportError::Exists`] when `dir` already holds a report file, unless `force`.
pub fn check_output(dir: &Path, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Some(f) = REPORT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
    {
        return Err(ReportError::Exists(f));
    }
    Ok(())
}

/// Removes `predictions_*.csv` files of `dir` that name no model of `result`.
fn remove_stale_predictions(dir: &Path, result: &BenchmarkResult) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let keep: Vec<String> = result
        .models
        .iter()
        .map(|m| predictions_file(&m.name))
        .collect();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("predictions_") && name.ends_with(".csv") && !keep.contains(&name) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}

pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::metrics::csv_write_atomic(path, text.as_bytes()).map_err(|e| match e {
        MetricsError::Io { path, source } => ReportError::Io { path, source },
        other => ReportError::Predictions(other),
    })
}

/// Writes the whole report into `dir` (created if needed). Existing report files are refused
/// unless `force`; with `force`, the predictions files of models this report does not hold
/// (left by an earlier run with other models) are removed, so the folder is one report.
pub fn write_report(
    dir: &Path,
    set: &EvalSet,
    result: &BenchmarkResult,
    info: &ReportInfo,
    gallery: &GalleryOptions,
    force: bool,
) -> Result<()> {
    check_output(dir, force)?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if force {
        remove_stale_predictions(dir, result)?;
    }
    for m in &result.models {
        write_predictions(&dir.join(predictions_file(&m.name)), &m.predictions)?;
    }
    let json = markdown::report_json(set, result, info);
    let text = serde_json::to_string_pretty(&json).map_err(|e| ReportError::Draw {
        what: "report.json",
        message: e.to_string(),
    })?;
    write_text(&dir.join("report.json"), &(text + "\n"))?;
    plots::pr_curves(&dir.join("pr_curves.png"), result)?;
    plots::accuracy_bars(&dir.join("accuracy.png"), result)?;
    plots::throughput_bars(&dir.join("throughput.png"), result)?;
    write_gallery(&dir.join("gallery.png"), set, result, gallery)?;
    write_text(
        &dir.join("report.md"),
        &markdown::report_md(set, result, info),
    )?;
    Ok(())
}
