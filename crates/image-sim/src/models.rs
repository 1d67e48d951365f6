//! Loading CLIP or DINOv2 by model id or folder (feature `torch`), and the digest of their
//! weights that caches key on.

use std::path::{Path, PathBuf};

use embed_clip::ClipEmbedder;
use embed_dinov2::{Dinov2Embedder, Pooling};
use embed_torch::{TorchEmbedder, TorchOptions};
use sha2::{Digest, Sha256};

use crate::{Error, ModelKind, Result};

/// How to load an encoder.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// A checkpoint folder, or a Hugging Face model id looked up in the local cache (and
    /// downloaded into it when the machine is online). `None`: the study's checkpoint
    /// ([`ModelKind::default_weights`]).
    pub weights: Option<String>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (default).
    pub device: Option<String>,
    /// `f32` (default), `f16` or `bf16`.
    pub precision: Option<String>,
    /// DINOv2 pooling: `mean` (default, the study's), `cls`, `patch-mean`, `cls-patch-mean`.
    pub pooling: Option<String>,
}

/// An encoder loaded on its device, with where its weights came from.
pub struct LoadedModel {
    /// The encoder. It is `Send` but not `Sync`: one thread owns it.
    pub embedder: Box<dyn TorchEmbedder>,
    /// Its family.
    pub kind: ModelKind,
    /// The checkpoint folder it was loaded from (a Hugging Face snapshot folder for a model id).
    pub dir: PathBuf,
}

/// The marker file of a checkpoint whose weights were drawn at random (made to show the system
/// working without the real weights): outputs made with it say so.
pub const RANDOM_WEIGHTS_MARKER: &str = "RANDOM_WEIGHTS";

impl LoadedModel {
    /// Whether the checkpoint folder holds [`RANDOM_WEIGHTS_MARKER`]: its embeddings say
    /// nothing about the model family, and reports label them so.
    pub fn random_weights(&self) -> bool {
        self.dir.join(RANDOM_WEIGHTS_MARKER).is_file()
    }

    /// The digest of the family and the checkpoint's files ([`weights_digest`]): two loads
    /// share it only when they run the same weights, whatever id or folder named them.
    pub fn weights_digest(&self) -> Result<String> {
        weights_digest(self.kind, &self.dir)
    }
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("model_id", &self.embedder.model_id())
            .field("kind", &self.kind)
            .field("dir", &self.dir)
            .finish()
    }
}

/// Loads an encoder on the device and in the precision asked for. A model id is resolved to
/// its snapshot folder first (see `embed_torch::resolve_model`), so the result says which
/// files it runs.
pub fn load(kind: ModelKind, options: &ModelOptions) -> Result<LoadedModel> {
    let torch = TorchOptions::parse(options.device.as_deref(), options.precision.as_deref())?;
    if let Some(warning) = torch.slow_precision_warning() {
        log::warn!("{warning}");
    }
    let weights = options.weights.as_deref().unwrap_or(kind.default_weights());
    let resolved = embed_torch::resolve_model(weights)?;
    let embedder: Box<dyn TorchEmbedder> = match kind {
        ModelKind::Clip => {
            if options.pooling.is_some() {
                return Err(Error::InvalidOption(
                    "pooling applies to DINOv2 only (CLIP's embedding is its projected CLS token)"
                        .into(),
                ));
            }
            Box::new(
                ClipEmbedder::from_dir(&resolved.dir, resolved.model_id, torch).map_err(
                    |source| Error::Clip {
                        weights: weights.to_string(),
                        source,
                    },
                )?,
            )
        }
        ModelKind::Dinov2 => {
            let pooling: Pooling = options
                .pooling
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: embed_dinov2::Error| Error::InvalidOption(e.to_string()))?
                .unwrap_or_default();
            Box::new(
                Dinov2Embedder::from_dir(&resolved.dir, resolved.model_id, pooling, torch)
                    .map_err(|source| Error::Dinov2 {
                        weights: weights.to_string(),
                        source,
                    })?,
            )
        }
    };
    Ok(LoadedModel {
        embedder,
        kind,
        dir: resolved.dir,
    })
}

/// A hex SHA-256 of the model family and of every `.json`, `.safetensors` and `.bin` file of
/// the checkpoint folder `dir` (names and contents, in name order). Caches of embeddings key on
/// it: a new snapshot of the same model id gets a new digest, the same files under another
/// name keep theirs.
pub fn weights_digest(kind: ModelKind, dir: &Path) -> Result<String> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut h = Sha256::new();
    h.update(b"image-sim weights v1\0");
    h.update(kind.name().as_bytes());
    h.update([0]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "json" || e == "safetensors" || e == "bin")
        })
        .collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        let mut file = std::fs::File::open(&f).map_err(io(&f))?;
        std::io::copy(&mut file, &mut h).map_err(io(&f))?;
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn digest_follows_the_files_and_the_family_not_the_folder_name() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for dir in [a.path(), b.path()] {
            std::fs::write(dir.join("config.json"), b"{}").unwrap();
            std::fs::write(dir.join("model.safetensors"), b"weights v1").unwrap();
            std::fs::write(dir.join("README.md"), dir.display().to_string()).unwrap();
        }
        let da = weights_digest(ModelKind::Clip, a.path()).unwrap();
        assert_eq!(da, weights_digest(ModelKind::Clip, b.path()).unwrap());
        assert_ne!(da, weights_digest(ModelKind::Dinov2, a.path()).unwrap());
        // A new snapshot: same names, other weights.
        std::fs::write(b.path().join("model.safetensors"), b"weights v2").unwrap();
        assert_ne!(da, weights_digest(ModelKind::Clip, b.path()).unwrap());
    }
}
