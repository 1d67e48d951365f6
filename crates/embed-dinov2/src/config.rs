//! The DINOv2 configuration, read from `config.json`.

use std::path::Path;

use embed_torch::config::{check_eps, check_range, from_value, square_size};
use embed_torch::vit::Activation;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Result;

/// `Dinov2Config` / `Dinov2WithRegistersConfig`. Missing keys take `transformers`' defaults of
/// the matching `model_type` (they differ in `patch_size`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dinov2Config {
    /// Width of the transformer.
    pub hidden_size: i64,
    /// Number of blocks.
    pub num_hidden_layers: i64,
    /// Attention heads per block (must divide `hidden_size`).
    pub num_attention_heads: i64,
    /// MLP width = `int(hidden_size * mlp_ratio)` (before SwiGLU's rounding).
    pub mlp_ratio: f64,
    /// Activation of the standard MLP (`gelu`).
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Side of the image the position embeddings were trained for.
    #[serde(deserialize_with = "square_size")]
    pub image_size: i64,
    /// Patch side in pixels.
    #[serde(deserialize_with = "square_size")]
    pub patch_size: i64,
    /// Input channels.
    pub num_channels: i64,
    /// Whether query/key/value projections have biases.
    pub qkv_bias: bool,
    /// SwiGLU MLP (giant).
    pub use_swiglu_ffn: bool,
    /// Whether the checkpoint carries `embeddings.mask_token` (unused at inference).
    pub use_mask_token: bool,
    /// Register tokens (`Dinov2WithRegistersModel`; 0 for plain DINOv2).
    pub num_register_tokens: i64,
    /// `dinov2` or `dinov2_with_registers`.
    pub model_type: String,
}

impl Default for Dinov2Config {
    fn default() -> Self {
        Self::base()
    }
}

impl Dinov2Config {
    /// `facebook/dinov2-base`.
    pub fn base() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            mlp_ratio: 4.0,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-6,
            image_size: 518,
            patch_size: 14,
            num_channels: 3,
            qkv_bias: true,
            use_swiglu_ffn: false,
            use_mask_token: true,
            num_register_tokens: 0,
            model_type: "dinov2".into(),
        }
    }

    /// `facebook/dinov2-small`.
    pub fn small() -> Self {
        Self {
            hidden_size: 384,
            num_attention_heads: 6,
            ..Self::base()
        }
    }

    /// `facebook/dinov2-large`.
    pub fn large() -> Self {
        Self {
            hidden_size: 1024,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            ..Self::base()
        }
    }

    /// `facebook/dinov2-giant` (SwiGLU MLP).
    pub fn giant() -> Self {
        Self {
            hidden_size: 1536,
            num_hidden_layers: 40,
            num_attention_heads: 24,
            use_swiglu_ffn: true,
            ..Self::base()
        }
    }

    /// Reads and validates `config.json` (`model_type` `dinov2` or `dinov2_with_registers`).
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

    /// Parses the JSON of a `config.json`; see [`Dinov2Config::from_file`].
    pub fn from_json(value: Value) -> Result<Self> {
        let Value::Object(mut top) = value else {
            return Err(embed_torch::Error::config("config.json is not a JSON object").into());
        };
        let model_type = top
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("dinov2")
            .to_string();
        match model_type.as_str() {
            "dinov2" => {
                top.remove("num_register_tokens");
            }
            "dinov2_with_registers" => {
                // transformers' defaults of Dinov2WithRegistersConfig.
                top.entry("patch_size").or_insert(Value::from(16));
                top.entry("num_register_tokens").or_insert(Value::from(4));
                top.entry("image_size").or_insert(Value::from(224));
                top.insert("use_mask_token".into(), Value::Bool(true));
            }
            other => {
                return Err(embed_torch::Error::config(format!(
                    "model_type `{other}` is not DINOv2 (expected `dinov2` or `dinov2_with_registers`)"
                ))
                .into());
            }
        }
        if model_type == "dinov2" {
            top.entry("image_size").or_insert(Value::from(224));
        }
        top.insert("model_type".into(), Value::from(model_type));
        let mut config: Self = from_value(Value::Object(top))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration describes a buildable model.
    pub fn validate(&mut self) -> Result<()> {
        const MAX: i64 = 1 << 16;
        check_range("hidden_size", self.hidden_size, MAX)?;
        check_range("num_hidden_layers", self.num_hidden_layers, 1024)?;
        check_range(
            "num_attention_heads",
            self.num_attention_heads,
            self.hidden_size,
        )?;
        check_range("num_channels", self.num_channels, 64)?;
        check_range("image_size", self.image_size, MAX)?;
        check_range("patch_size", self.patch_size, self.image_size)?;
        check_range("num_register_tokens", self.num_register_tokens + 1, 1025)?;
        check_eps(self.layer_norm_eps)?;
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0 && self.mlp_ratio <= 64.0) {
            return Err(embed_torch::Error::config(format!(
                "`mlp_ratio` = {} is outside (0, 64]",
                self.mlp_ratio
            ))
            .into());
        }
        check_range("MLP width", self.intermediate_size(), 1 << 18)?;
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(embed_torch::Error::config(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ))
            .into());
        }
        if !self.use_swiglu_ffn {
            self.activation()?;
        }
        Ok(())
    }

    /// The parsed `hidden_act`.
    pub fn activation(&self) -> Result<Activation> {
        Ok(self.hidden_act.parse()?)
    }

    /// The MLP's inner width: `int(hidden_size * mlp_ratio)`, and for SwiGLU
    /// `(int(w * 2 / 3) + 7) // 8 * 8` of that, as `transformers` computes it.
    pub fn intermediate_size(&self) -> i64 {
        let w = (self.hidden_size as f64 * self.mlp_ratio) as i64;
        if self.use_swiglu_ffn {
            ((w as f64 * 2.0 / 3.0) as i64 + 7) / 8 * 8
        } else {
            w
        }
    }

    /// Patches per side of the position-embedding grid.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }
}
