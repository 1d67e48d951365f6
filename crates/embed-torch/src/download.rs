//! Downloading a checkpoint from the Hugging Face hub into the standard local cache, so that
//! [`crate::resolve_model`] finds it afterwards, online or not.
//!
//! Files are fetched from `{endpoint}/{repo}/resolve/{revision}/{file}` (the hub's URL scheme;
//! the endpoint is `$HF_ENDPOINT`, default `https://huggingface.co`) and laid out as
//! `huggingface_hub` does:
//!
//! ```text
//! models--ORG--NAME/
//!     blobs/<etag or sha256>          the file contents
//!     snapshots/<commit>/<file>       a symbolic link to ../../blobs/<...> (a copy where links fail)
//!     refs/<revision>                 the commit the revision resolved to
//! ```
//!
//! Every file is written to a temporary name, synced and renamed, so an interrupted download
//! never leaves a truncated file under its final name. `HF_HUB_OFFLINE=1` (or
//! [`DownloadOptions::offline`]) forbids the network: files already in the cache are used,
//! anything missing is an error that says so.
//!
//! ```no_run
//! use embed_torch::download::{DownloadOptions, download_model};
//!
//! let dir = download_model("facebook/dinov2-small", &DownloadOptions::from_env())?;
//! println!("checkpoint in {}", dir.display());
//! # Ok::<(), embed_torch::download::DownloadError>(())
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The hub's default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The files of a checkpoint this workspace loads.
pub const CHECKPOINT_FILES: &[&str] = &[
    "config.json",
    "preprocessor_config.json",
    crate::weights::SAFETENSORS_FILE,
];

/// What can go wrong while downloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Offline mode and the files are not in the cache.
    #[error(
        "{model_id}: {file} is not in the local cache ({cache}) and downloads are disabled \
         (HF_HUB_OFFLINE=1 or --offline); unset HF_HUB_OFFLINE or drop --offline to download it, \
         or pass a checkpoint folder"
    )]
    Offline {
        /// The model id.
        model_id: String,
        /// The first missing file.
        file: String,
        /// The cache folder consulted.
        cache: PathBuf,
    },
    /// The request failed (network, TLS, or an HTTP error status).
    #[error("downloading {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong (for a 401/404, likely a wrong id or a gated model).
        message: String,
    },
    /// Reading or writing the cache failed.
    #[error("{}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The model id or an option is unusable.
    #[error("{0}")]
    Invalid(String),
}

type Result<T, E = DownloadError> = std::result::Result<T, E>;

/// Where and how to download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Base URL of the hub (`$HF_ENDPOINT`, default [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// Branch, tag or commit (default `main`).
    pub revision: String,
    /// The cache folder (the first of [`crate::hf_cache_dirs`] by default).
    pub cache_dir: PathBuf,
    /// Never touch the network (`$HF_HUB_OFFLINE` set to `1`, `true`, `yes` or `on`).
    pub offline: bool,
    /// The files to fetch (default [`CHECKPOINT_FILES`]).
    pub files: Vec<String>,
    /// Report progress to the hook set with [`set_progress_hook`] (nothing is printed when no
    /// hook is set: the library never writes to the terminal itself).
    pub progress: bool,
    /// Optional bearer token (`$HF_TOKEN`) for gated or private models.
    pub token: Option<String>,
}

impl DownloadOptions {
    /// Options from the environment: `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_TOKEN` and the cache
    /// folders of [`crate::hf_cache_dirs`].
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            revision: "main".to_string(),
            cache_dir: crate::hf_cache_dirs()
                .into_iter()
                .next()
                .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub")),
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
            files: CHECKPOINT_FILES.iter().map(|f| f.to_string()).collect(),
            progress: true,
            token: var("HF_TOKEN"),
        }
    }
}

fn is_truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.split('/').all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(DownloadError::Invalid(format!(
            "{what} {s:?} is not a valid hub name (ORG/NAME, letters, digits, `-`, `_`, `.`)"
        )))
    }
}

/// The snapshot folder of `revision` if `refs/<revision>` exists and every file is there.
fn cached_snapshot(repo_dir: &Path, revision: &str, files: &[String]) -> Option<PathBuf> {
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision)).ok()?;
    let dir = repo_dir.join("snapshots").join(commit.trim());
    files.iter().all(|f| dir.join(f).is_file()).then_some(dir)
}

/// Downloads `files` of `model_id` (`ORG/NAME`) into the cache unless they are there already,
/// and returns the snapshot folder. A second call finds the files without the network; with
/// [`DownloadOptions::offline`] a missing file is [`DownloadError::Offline`].
pub fn download_model(model_id: &str, options: &DownloadOptions) -> Result<PathBuf> {
    check_name("model id", model_id)?;
    for (what, name) in std::iter::once(("revision", &options.revision))
        .chain(options.files.iter().map(|f| ("file name", f)))
    {
        check_name(what, name)?;
        if name.contains('/') {
            return Err(DownloadError::Invalid(format!(
                "{what} {name:?}: nested paths are not supported"
            )));
        }
    }
    let repo_dir = options
        .cache_dir
        .join(format!("models--{}", model_id.replace('/', "--")));
    if let Some(dir) = cached_snapshot(&repo_dir, &options.revision, &options.files) {
        return Ok(dir);
    }
    if options.offline {
        let missing = options.files.first().cloned().unwrap_or_default();
        let commit = std::fs::read_to_string(repo_dir.join("refs").join(&options.revision)).ok();
        let file = commit
            .and_then(|c| {
                let dir = repo_dir.join("snapshots").join(c.trim());
                options
                    .files
                    .iter()
                    .find(|f| !dir.join(f).is_file())
                    .cloned()
            })
            .unwrap_or(missing);
        return Err(DownloadError::Offline {
            model_id: model_id.to_string(),
            file,
            cache: options.cache_dir.clone(),
        });
    }

    let blobs = repo_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Fail fast on a machine without network; the body itself may take long (GBs).
        .timeout_resolve(Some(std::time::Duration::from_secs(15)))
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let endpoint = options.endpoint.trim_end_matches('/');
    let mut commit: Option<String> = None;
    let mut fetched: Vec<(String, String)> = Vec::new(); // (file, blob name)
    for file in &options.files {
        // Pin every file after the first to the commit the first resolved to, so a push to the
        // branch during the download cannot mix two revisions.
        let rev = commit.as_deref().unwrap_or(&options.revision);
        let url = format!("{endpoint}/{model_id}/resolve/{rev}/{file}");
        let blob = fetch(&agent, &url, file, &blobs, options)?;
        if commit.is_none() {
            commit = Some(blob.commit.clone().unwrap_or_else(|| {
                // No `X-Repo-Commit` header (a plain file server): a 40-hex revision is a
                // commit; otherwise name the snapshot after the revision itself.
                options.revision.clone()
            }));
        }
        fetched.push((file.clone(), blob.name));
    }
    let commit = commit.unwrap_or_else(|| options.revision.clone());
    let snapshot = repo_dir.join("snapshots").join(&commit);
    std::fs::create_dir_all(&snapshot).map_err(io_err(&snapshot))?;
    for (file, blob) in &fetched {
        link_into_snapshot(&blobs.join(blob), &snapshot.join(file), blob)?;
    }
    let refs = repo_dir.join("refs");
    std::fs::create_dir_all(&refs).map_err(io_err(&refs))?;
    write_atomic(&refs.join(&options.revision), commit.as_bytes())?;
    Ok(snapshot)
}

struct Blob {
    name: String,
    commit: Option<String>,
}

/// Streams `url` into `blobs/<name>` (temporary file, sync, rename) and returns the blob name:
/// the ETag the hub sends (`X-Linked-Etag` for large files), else the SHA-256 of the contents.
fn fetch(
    agent: &ureq::Agent,
    url: &str,
    file: &str,
    blobs: &Path,
    options: &DownloadOptions,
) -> Result<Blob> {
    let http = |message: String| DownloadError::Http {
        url: url.to_string(),
        message,
    };
    let mut request = agent.get(url);
    if let Some(token) = &options.token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request.call().map_err(|e| http(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let hint = match status.as_u16() {
            401 | 403 => " (a gated or private model: set HF_TOKEN)",
            404 => " (no such model, revision or file)",
            _ => "",
        };
        return Err(http(format!("HTTP {status}{hint}")));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let commit = header("x-repo-commit").filter(|c| check_name("commit", c).is_ok());
    let etag = header("x-linked-etag")
        .or_else(|| header("etag"))
        .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string())
        .filter(|e| check_name("etag", e).is_ok() && !e.contains('/'));
    let total = header("content-length").and_then(|v| v.parse::<u64>().ok());

    let tmp = blobs.join(format!(
        ".{}.{}.incomplete",
        file.replace('/', "_"),
        std::process::id()
    ));
    let mut out = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut reader = response.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = 0u64;
    let copied: Result<()> = (|| {
        loop {
            let n = reader.read(&mut buf).map_err(|e| http(e.to_string()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io_err(&tmp))?;
            hasher.update(&buf[..n]);
            written += n as u64;
            report(options.progress, file, written, total, false);
        }
        if let Some(total) = total
            && written != total
        {
            return Err(http(format!(
                "connection closed after {written} of {total} bytes"
            )));
        }
        out.sync_all().map_err(io_err(&tmp))
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    report(options.progress, file, written, total, true);
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = etag.unwrap_or(digest);
    let dst = blobs.join(&name);
    std::fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
    Ok(Blob { name, commit })
}

/// Where a download stands, as reported to the hook of [`set_progress_hook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadProgress<'a> {
    /// The file being downloaded (`model.safetensors`).
    pub file: &'a str,
    /// Bytes received so far.
    pub done: u64,
    /// The file's size when the server says it.
    pub total: Option<u64>,
    /// Whether the file is complete (the last report for it).
    pub finished: bool,
}

type ProgressHook = Box<dyn Fn(&DownloadProgress<'_>) + Send + Sync>;

static PROGRESS_HOOK: std::sync::OnceLock<ProgressHook> = std::sync::OnceLock::new();

/// Sets, once per process, the function downloads report their progress to (an application's
/// progress bar). Returns `false` when a hook was already set.
pub fn set_progress_hook(hook: impl Fn(&DownloadProgress<'_>) + Send + Sync + 'static) -> bool {
    PROGRESS_HOOK.set(Box::new(hook)).is_ok()
}

fn report(show: bool, file: &str, done: u64, total: Option<u64>, finished: bool) {
    if let (true, Some(hook)) = (show, PROGRESS_HOOK.get()) {
        hook(&DownloadProgress {
            file,
            done,
            total,
            finished,
        });
    }
}

/// Puts `snapshot/file` in place as a relative symbolic link to the blob (as
/// `huggingface_hub` does), or as a copy where links are not possible.
fn link_into_snapshot(blob: &Path, dst: &Path, blob_name: &str) -> Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = dst.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(Path::new("../../blobs").join(blob_name), &tmp).is_ok();
    #[cfg(not(unix))]
    let linked = {
        let _ = blob_name;
        false
    };
    if !linked {
        std::fs::copy(blob, &tmp).map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, dst).map_err(io_err(dst))
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
