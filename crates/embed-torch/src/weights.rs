//! Strict safetensors loading.
//!
//! `tch`'s `VarStore::load` ignores tensors the model does not ask for and adopts the file's
//! dtype. [`Checkpoint`] does neither: every tensor is fetched by its checkpoint key with the
//! shape the configuration implies, converted to the requested precision and checked for
//! NaN/Inf; whatever is left at [`Checkpoint::finish`] is an error, unless it was skipped
//! knowingly (a known other tower, a buffer).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo};
use tch::{Device, Kind, Tensor};

use crate::device::TorchOptions;
use crate::error::{Error, Result};

/// The single-file checkpoint name `transformers` writes.
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// The index of a sharded checkpoint.
pub const SAFETENSORS_INDEX_FILE: &str = "model.safetensors.index.json";

struct Shard {
    path: PathBuf,
    map: Mmap,
    data_start: usize,
}

/// An opened checkpoint (one or more safetensors files) from which a model takes its tensors.
pub struct Checkpoint {
    shards: Vec<Shard>,
    entries: BTreeMap<String, (usize, TensorInfo)>,
    taken: BTreeSet<String>,
    options: TorchOptions,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field(
                "files",
                &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("tensors", &self.entries.len())
            .field("options", &self.options)
            .finish()
    }
}

impl Checkpoint {
    /// Opens `model.safetensors` in `dir`, or the shards listed by
    /// `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path, options: TorchOptions) -> Result<Self> {
        let single = dir.join(SAFETENSORS_FILE);
        if single.is_file() {
            return Self::open_files(&[single], options);
        }
        let index = dir.join(SAFETENSORS_INDEX_FILE);
        if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|source| Error::Io {
                path: index.clone(),
                source,
            })?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| Error::Config {
                    path: Some(index.clone()),
                    message: e.to_string(),
                })?;
            let map = value
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::Config {
                    path: Some(index.clone()),
                    message: "no `weight_map` object".into(),
                })?;
            let mut files = BTreeSet::new();
            for file in map.values() {
                let name = file.as_str().ok_or_else(|| Error::Config {
                    path: Some(index.clone()),
                    message: format!("`weight_map` value {file} is not a file name"),
                })?;
                if name.contains('/') || name.contains('\\') || name == ".." {
                    return Err(Error::Config {
                        path: Some(index.clone()),
                        message: format!("shard `{name}` is not a plain file name"),
                    });
                }
                files.insert(dir.join(name));
            }
            return Self::open_files(&files.into_iter().collect::<Vec<_>>(), options);
        }
        let bin = dir.join("pytorch_model.bin");
        let extra = if bin.is_file() {
            " (only `pytorch_model.bin` is there: convert it to safetensors, e.g. load it with \
             transformers and `save_pretrained(dir, safe_serialization=True)`)"
        } else {
            ""
        };
        Err(Error::Io {
            path: single,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {SAFETENSORS_FILE} nor {SAFETENSORS_INDEX_FILE} found{extra}"),
            ),
        })
    }

    /// Opens these safetensors files as one checkpoint. A key present in two files is an error.
    pub fn open_files(paths: &[PathBuf], options: TorchOptions) -> Result<Self> {
        crate::cuda_link::keep_cuda_linked();
        let mut shards = Vec::with_capacity(paths.len());
        let mut entries = BTreeMap::new();
        for path in paths {
            let file = File::open(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            // SAFETY: the map is only read. Like every reader of memory-mapped files we rely on
            // the checkpoint not being truncated while it is open; the data is copied into
            // tensors right away.
            let map = unsafe { Mmap::map(&file) }.map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let (header_len, metadata): (usize, Metadata) = SafeTensors::read_metadata(&map)
                .map_err(|e| Error::Safetensors {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let data_start = 8 + header_len;
            let index = shards.len();
            for (name, info) in metadata.tensors() {
                if entries
                    .insert(name.clone(), (index, info.clone()))
                    .is_some()
                {
                    return Err(Error::Safetensors {
                        path: path.clone(),
                        message: format!("tensor `{name}` appears in more than one shard"),
                    });
                }
            }
            shards.push(Shard {
                path: path.clone(),
                map,
                data_start,
            });
        }
        Ok(Self {
            shards,
            entries,
            taken: BTreeSet::new(),
            options,
        })
    }

    /// Device and precision tensors are converted to.
    pub fn options(&self) -> TorchOptions {
        self.options
    }

    /// Every key in the checkpoint, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds this key.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The shape stored for a key.
    pub fn shape(&self, key: &str) -> Option<Vec<i64>> {
        self.entries
            .get(key)
            .map(|(_, info)| info.shape.iter().map(|&d| d as i64).collect())
    }

    fn check(&self, key: &str, shape: &[i64]) -> Result<&(usize, TensorInfo)> {
        let entry = self.entries.get(key).ok_or_else(|| Error::MissingTensor {
            key: key.to_string(),
        })?;
        let found: Vec<i64> = entry.1.shape.iter().map(|&d| d as i64).collect();
        if found != shape {
            return Err(Error::ShapeMismatch {
                key: key.to_string(),
                expected: shape.to_vec(),
                found,
            });
        }
        Ok(entry)
    }

    /// Takes a tensor: it must exist with exactly `shape` (a broadcastable shape is not
    /// accepted) and a floating-point dtype. It is converted to the requested precision, checked
    /// for NaN/Inf, and moved to the device.
    pub fn tensor(&mut self, key: &str, shape: &[i64]) -> Result<Tensor> {
        let kind = self.options.precision.kind();
        let device = self.options.device;
        self.tensor_as(key, shape, kind, device)
    }

    /// Like [`Checkpoint::tensor`], with an explicit kind and device.
    pub fn tensor_as(
        &mut self,
        key: &str,
        shape: &[i64],
        kind: Kind,
        device: Device,
    ) -> Result<Tensor> {
        let (shard, info) = self.check(key, shape)?;
        let file_kind = match info.dtype {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            other => {
                return Err(Error::Dtype {
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let shard = &self.shards[*shard];
        let (start, end) = info.data_offsets;
        let bytes = shard
            .map
            .get(shard.data_start + start..shard.data_start + end)
            .ok_or_else(|| Error::Safetensors {
                path: shard.path.clone(),
                message: format!("data of `{key}` lies outside the file"),
            })?;
        let raw = Tensor::f_from_data_size(bytes, shape, file_kind)?;
        if !all_finite(&raw)? {
            return Err(Error::NonFinite {
                key: key.to_string(),
                detail: String::new(),
            });
        }
        let converted = raw.f_to_kind(kind)?;
        if kind != file_kind && !all_finite(&converted)? {
            return Err(Error::NonFinite {
                key: key.to_string(),
                detail: format!(" after conversion from {file_kind:?} to {kind:?} (out of range)"),
            });
        }
        let tensor = converted.f_to_device(device)?.f_contiguous()?;
        self.taken.insert(key.to_string());
        Ok(tensor)
    }

    /// Marks a key the model knows but does not use (e.g. DINOv2's `mask_token`); with
    /// `shape`, its shape is checked too. Missing keys are an error.
    pub fn skip(&mut self, key: &str, shape: Option<&[i64]>) -> Result<()> {
        match shape {
            Some(shape) => {
                self.check(key, shape)?;
            }
            None => {
                if !self.contains(key) {
                    return Err(Error::MissingTensor {
                        key: key.to_string(),
                    });
                }
            }
        }
        self.taken.insert(key.to_string());
        Ok(())
    }

    /// Marks a key as known and unused if it is present (e.g. a non-persistent buffer some
    /// exporters save).
    pub fn skip_if_present(&mut self, key: &str) {
        if self.contains(key) {
            self.taken.insert(key.to_string());
        }
    }

    /// Marks every key starting with `prefix` as knowingly ignored (a known other tower, like
    /// CLIP's `text_model.`). Returns how many keys that covered.
    pub fn skip_prefix(&mut self, prefix: &str) -> usize {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let n = keys.len();
        self.taken.extend(keys);
        n
    }

    /// Finishes loading: any key neither taken nor skipped is an error listing them all.
    pub fn finish(self) -> Result<()> {
        let keys: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !self.taken.contains(*k))
            .cloned()
            .collect();
        if keys.is_empty() {
            Ok(())
        } else {
            Err(Error::UnexpectedTensors { keys })
        }
    }
}

fn all_finite(t: &Tensor) -> Result<bool> {
    if t.numel() == 0 {
        return Ok(true);
    }
    Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0)
}
