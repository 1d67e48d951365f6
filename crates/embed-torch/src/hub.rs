//! Finding checkpoint folders: an explicit folder, or a model id in the local Hugging Face
//! cache (`models--ORG--NAME/snapshots/REV/`).

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// A checkpoint folder and the id vectors made with it are labelled with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The folder holding `config.json` and the safetensors files.
    pub dir: PathBuf,
    /// `ORG/NAME` when the folder is (inside) a Hugging Face cache entry or was found from an
    /// id; otherwise the folder as given.
    pub model_id: String,
}

/// The Hugging Face hub cache folders, in the order `huggingface_hub` consults them:
/// `$HF_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
/// `~/.cache/huggingface/hub` (duplicates removed).
pub fn hf_cache_dirs() -> Vec<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut dirs = Vec::new();
    if let Some(p) = var("HF_HUB_CACHE") {
        dirs.push(p);
    }
    if let Some(p) = var("HF_HOME") {
        dirs.push(p.join("hub"));
    }
    if let Some(p) = var("XDG_CACHE_HOME") {
        dirs.push(p.join("huggingface").join("hub"));
    }
    if let Some(home) = var("HOME") {
        dirs.push(home.join(".cache").join("huggingface").join("hub"));
    }
    let mut unique: Vec<PathBuf> = Vec::new();
    for d in dirs {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

fn looks_like_model_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    !s.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// `ORG/NAME` if `dir` is `.../models--ORG--NAME/snapshots/REV`.
pub fn model_id_from_cache_path(dir: &Path) -> Option<String> {
    let comps: Vec<String> = dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let n = comps.len();
    if n >= 3 && comps[n - 2] == "snapshots" {
        let repo = comps[n - 3].strip_prefix("models--")?;
        return Some(repo.replace("--", "/"));
    }
    None
}

fn has_weights(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && (dir.join(crate::weights::SAFETENSORS_FILE).is_file()
            || dir.join(crate::weights::SAFETENSORS_INDEX_FILE).is_file())
}

/// Finds a checkpoint: `spec` is a folder, or a model id (`openai/clip-vit-base-patch32`)
/// looked up in every folder of [`hf_cache_dirs`] (the revision `refs/main` points to, else the
/// most recently modified complete snapshot). With the `download` feature, a model id found
/// nowhere is downloaded from the hub into the first cache folder (see the `download` module),
/// unless `HF_HUB_OFFLINE` is set. The error lists every place it looked and how to download
/// the files.
pub fn resolve_model(spec: &str) -> Result<ResolvedModel> {
    let found = resolve_model_in(spec, &hf_cache_dirs());
    #[cfg(feature = "download")]
    if let Err(Error::WeightsNotFound {
        model,
        searched,
        hint,
    }) = found
    {
        if !looks_like_model_id(spec) || Path::new(spec).exists() {
            return Err(Error::WeightsNotFound {
                model,
                searched,
                hint,
            });
        }
        let options = crate::download::DownloadOptions::from_env();
        if options.offline {
            return Err(Error::WeightsNotFound {
                model,
                searched,
                hint: format!("{hint} (HF_HUB_OFFLINE is set: not downloading.)"),
            });
        }
        return match crate::download::download_model(spec, &options) {
            Ok(dir) => Ok(ResolvedModel {
                dir,
                model_id: spec.to_string(),
            }),
            Err(e) => Err(Error::WeightsNotFound {
                model,
                searched,
                hint: format!("Downloading it from the hub failed: {e}. {hint}"),
            }),
        };
    }
    found
}

/// [`resolve_model`] with explicit cache folders.
pub fn resolve_model_in(spec: &str, cache_dirs: &[PathBuf]) -> Result<ResolvedModel> {
    let as_path = Path::new(spec);
    if as_path.is_dir() {
        let model_id = model_id_from_cache_path(as_path).unwrap_or_else(|| spec.to_string());
        return Ok(ResolvedModel {
            dir: as_path.to_path_buf(),
            model_id,
        });
    }
    let mut searched = vec![as_path.to_path_buf()];
    if looks_like_model_id(spec) {
        let repo = format!("models--{}", spec.replace('/', "--"));
        for cache in cache_dirs {
            let repo_dir = cache.join(&repo);
            let snapshots = repo_dir.join("snapshots");
            searched.push(snapshots.clone());
            if let Ok(rev) = std::fs::read_to_string(repo_dir.join("refs").join("main")) {
                let dir = snapshots.join(rev.trim());
                if has_weights(&dir) {
                    return Ok(ResolvedModel {
                        dir,
                        model_id: spec.to_string(),
                    });
                }
            }
            let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
            if let Ok(entries) = std::fs::read_dir(&snapshots) {
                for entry in entries.flatten() {
                    let dir = entry.path();
                    if !has_weights(&dir) {
                        continue;
                    }
                    let modified = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
                    if best.as_ref().is_none_or(|(t, _)| modified > *t) {
                        best = Some((modified, dir));
                    }
                }
            }
            if let Some((_, dir)) = best {
                return Ok(ResolvedModel {
                    dir,
                    model_id: spec.to_string(),
                });
            }
        }
    }
    let hint = if looks_like_model_id(spec) {
        format!(
            "Download the checkpoint with `hf download {spec} config.json \
             model.safetensors preprocessor_config.json` (huggingface_hub's command line; \
             `huggingface-cli` in versions before 1.0), set HF_HUB_CACHE / HF_HOME if your \
             cache lives elsewhere, or pass the checkpoint folder."
        )
    } else {
        "Pass a folder holding config.json and model.safetensors, or a Hugging Face model id \
         (ORG/NAME) present in the local cache."
            .to_string()
    };
    Err(Error::WeightsNotFound {
        model: spec.to_string(),
        searched,
        hint,
    })
}
