//! The CLIP vision configuration, read from `config.json`.

use std::path::Path;

use embed_torch::config::{check_eps, check_range, from_value, square_size};
use embed_torch::vit::Activation;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Result;

/// The vision tower's part of a CLIP configuration (`CLIPVisionConfig`), plus the projection
/// width. Missing keys take `transformers`' defaults (which are ViT-B/32's).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    /// Width of the transformer.
    pub hidden_size: i64,
    /// Width of the MLP.
    pub intermediate_size: i64,
    /// Number of blocks.
    pub num_hidden_layers: i64,
    /// Attention heads per block (must divide `hidden_size`).
    pub num_attention_heads: i64,
    /// Input channels.
    pub num_channels: i64,
    /// Input side in pixels (inputs must be exactly this size, as in `transformers`).
    #[serde(deserialize_with = "square_size")]
    pub image_size: i64,
    /// Patch side in pixels.
    #[serde(deserialize_with = "square_size")]
    pub patch_size: i64,
    /// `quick_gelu` (OpenAI) or `gelu` (OpenCLIP), among others.
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Width of the image embedding (`visual_projection`).
    pub projection_dim: i64,
    /// `true` when the checkpoint is a full `CLIPModel` (text tower present, skipped on load).
    #[serde(skip)]
    pub full_clip_model: bool,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self::vit_base_patch32()
    }
}

impl ClipVisionConfig {
    /// `openai/clip-vit-base-patch32`.
    pub fn vit_base_patch32() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            projection_dim: 512,
            full_clip_model: false,
        }
    }

    /// `openai/clip-vit-base-patch16`.
    pub fn vit_base_patch16() -> Self {
        Self {
            patch_size: 16,
            ..Self::vit_base_patch32()
        }
    }

    /// `openai/clip-vit-large-patch14`.
    pub fn vit_large_patch14() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            patch_size: 14,
            projection_dim: 768,
            ..Self::vit_base_patch32()
        }
    }

    /// Reads `config.json` of a `CLIPModel` (`vision_config` + top-level `projection_dim`) or a
    /// `CLIPVisionModelWithProjection` (`model_type: clip_vision_model`), and validates it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let value = embed_torch::read_json(path)?;
        Self::from_json(value).map_err(|e| match e {
            crate::Error::Torch(embed_torch::Error::Config {
                path: None,
                message,
            }) => embed_torch::Error::Config {
                path: Some(path.to_path_buf()),
                message,
            }
            .into(),
            other => other,
        })
    }

    /// Parses the JSON of a `config.json`; see [`ClipVisionConfig::from_file`].
    pub fn from_json(value: Value) -> Result<Self> {
        let Value::Object(top) = value else {
            return Err(embed_torch::Error::config("config.json is not a JSON object").into());
        };
        let model_type = top.get("model_type").and_then(Value::as_str).unwrap_or("");
        let is_full = model_type == "clip" || top.contains_key("vision_config");
        let mut config: Self = if is_full {
            let mut vision = match top.get("vision_config") {
                Some(Value::Object(v)) => v.clone(),
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(other) => {
                    return Err(embed_torch::Error::config(format!(
                        "`vision_config` is not an object: {other}"
                    ))
                    .into());
                }
            };
            // Old checkpoints: `vision_config_dict` overrides `vision_config` (as in transformers).
            if let Some(Value::Object(over)) = top.get("vision_config_dict") {
                for (k, v) in over {
                    vision.insert(k.clone(), v.clone());
                }
            }
            let mut c: Self = from_value(Value::Object(vision))?;
            c.projection_dim = match top.get("projection_dim") {
                None | Some(Value::Null) => 512,
                Some(v) => v.as_i64().ok_or_else(|| {
                    embed_torch::Error::config(format!("`projection_dim` is not an integer: {v}"))
                })?,
            };
            c.full_clip_model = true;
            c
        } else if model_type == "clip_vision_model" || model_type.is_empty() {
            from_value(Value::Object(top))?
        } else {
            return Err(embed_torch::Error::config(format!(
                "model_type `{model_type}` is not a CLIP model (expected `clip` or `clip_vision_model`)"
            ))
            .into());
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration describes a buildable model.
    pub fn validate(&mut self) -> Result<()> {
        const MAX: i64 = 1 << 16;
        check_range("hidden_size", self.hidden_size, MAX)?;
        check_range("intermediate_size", self.intermediate_size, 1 << 18)?;
        check_range("num_hidden_layers", self.num_hidden_layers, 1024)?;
        check_range(
            "num_attention_heads",
            self.num_attention_heads,
            self.hidden_size,
        )?;
        check_range("num_channels", self.num_channels, 64)?;
        check_range("image_size", self.image_size, MAX)?;
        check_range("patch_size", self.patch_size, self.image_size)?;
        check_range("projection_dim", self.projection_dim, MAX)?;
        check_eps(self.layer_norm_eps)?;
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(embed_torch::Error::config(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ))
            .into());
        }
        self.activation()?;
        Ok(())
    }

    /// The parsed `hidden_act`.
    pub fn activation(&self) -> Result<Activation> {
        Ok(self.hidden_act.parse()?)
    }

    /// Patches per side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Tokens per image: CLS + patches.
    pub fn num_positions(&self) -> i64 {
        self.grid() * self.grid() + 1
    }
}
