//! The DINOv2 backbone (with or without registers). Field names repeat the checkpoint keys
//! (`embeddings.cls_token`, `encoder.layer.{i}.attention.attention.query`, `layernorm`, ...).

use std::sync::Mutex;

use embed_torch::vit::{Attention, AttentionKeys, Block, LayerNorm, Mlp};
use embed_torch::{Checkpoint, check_pixels};
use tch::{Device, Kind, Tensor};

use crate::config::Dinov2Config;
use crate::error::Result;

/// `embeddings.*`.
#[derive(Debug)]
struct Embeddings {
    /// `cls_token` (`1 × 1 × C`).
    cls_token: Tensor,
    /// `register_tokens` (`1 × R × C`), with-registers variant only.
    register_tokens: Option<Tensor>,
    /// `patch_embeddings.projection.weight` (`C × channels × p × p`).
    projection_weight: Tensor,
    /// `patch_embeddings.projection.bias` (`C`).
    projection_bias: Tensor,
    /// `position_embeddings` (`1 × (1 + grid²) × C`).
    position_embeddings: Tensor,
}

/// What the backbone computes for a batch.
#[derive(Debug)]
pub struct Dinov2Output {
    /// `N × (1 + R + patches) × C`, after the final `layernorm`.
    pub last_hidden_state: Tensor,
    /// `N × C`: the CLS token of `last_hidden_state`.
    pub pooler_output: Tensor,
}

/// The DINOv2 backbone (`Dinov2Model` / `Dinov2WithRegistersModel`).
#[derive(Debug)]
pub struct Dinov2Model {
    config: Dinov2Config,
    embeddings: Embeddings,
    layers: Vec<Block>,
    layernorm: LayerNorm,
    device: Device,
    kind: Kind,
    /// Position embeddings resized for the last input grid: `((height, width), tensor)`.
    resized: Mutex<Option<((i64, i64), Tensor)>>,
}

impl Dinov2Model {
    /// Builds the model from a checkpoint, taking every tensor it needs under the checkpoint's
    /// names (`embeddings.mask_token`, unused at inference, is checked and skipped). Call
    /// [`Checkpoint::finish`] afterwards to reject unexpected keys.
    pub fn new(config: &Dinov2Config, ckpt: &mut Checkpoint) -> Result<Self> {
        let mut config = config.clone();
        config.validate()?;
        let c = config.hidden_size;
        let p = config.patch_size;
        let eps = config.layer_norm_eps;
        let g = config.grid();
        let registers = config.num_register_tokens;
        let embeddings = Embeddings {
            cls_token: ckpt.tensor("embeddings.cls_token", &[1, 1, c])?,
            register_tokens: if registers > 0 {
                Some(ckpt.tensor("embeddings.register_tokens", &[1, registers, c])?)
            } else {
                None
            },
            projection_weight: ckpt.tensor(
                "embeddings.patch_embeddings.projection.weight",
                &[c, config.num_channels, p, p],
            )?,
            projection_bias: ckpt.tensor("embeddings.patch_embeddings.projection.bias", &[c])?,
            position_embeddings: ckpt
                .tensor("embeddings.position_embeddings", &[1, 1 + g * g, c])?,
        };
        if config.use_mask_token {
            ckpt.skip("embeddings.mask_token", Some(&[1, c]))?;
        }
        // SwiGLU has its own activation; `hidden_act` only matters for the standard MLP.
        let act = if config.use_swiglu_ffn {
            None
        } else {
            Some(config.activation()?)
        };
        let inner = config.intermediate_size();
        let mut layers = Vec::with_capacity(config.num_hidden_layers as usize);
        for i in 0..config.num_hidden_layers {
            let l = format!("encoder.layer.{i}");
            let keys = AttentionKeys {
                query: format!("{l}.attention.attention.query"),
                key: format!("{l}.attention.attention.key"),
                value: format!("{l}.attention.attention.value"),
                output: format!("{l}.attention.output.dense"),
            };
            let norm1 = LayerNorm::load(ckpt, &format!("{l}.norm1"), c, eps)?;
            let attention =
                Attention::load(ckpt, &keys, c, config.num_attention_heads, config.qkv_bias)?;
            let layer_scale1 = Some(ckpt.tensor(&format!("{l}.layer_scale1.lambda1"), &[c])?);
            let norm2 = LayerNorm::load(ckpt, &format!("{l}.norm2"), c, eps)?;
            let mlp = match act {
                None => Mlp::load_swiglu(ckpt, &format!("{l}.mlp"), c, inner)?,
                Some(act) => Mlp::load_standard(ckpt, &format!("{l}.mlp"), c, inner, act)?,
            };
            let layer_scale2 = Some(ckpt.tensor(&format!("{l}.layer_scale2.lambda1"), &[c])?);
            layers.push(Block {
                norm1,
                attention,
                layer_scale1,
                norm2,
                mlp,
                layer_scale2,
            });
        }
        let layernorm = LayerNorm::load(ckpt, "layernorm", c, eps)?;
        let options = ckpt.options();
        Ok(Self {
            config,
            embeddings,
            layers,
            layernorm,
            device: options.device,
            kind: options.precision.kind(),
            resized: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Dinov2Config {
        &self.config
    }

    /// Where the weights live.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Precision of weights and activations.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Position embeddings for an input of `height × width` pixels with `num_patches`
    /// patches, exactly as `transformers`' `interpolate_pos_encoding`: unchanged when the patch
    /// count matches and the input is square, else the patch rows resized with bicubic
    /// interpolation (`align_corners=False`, in `f32`; antialiased for the with-registers
    /// variant, as its implementation does), the CLS row kept.
    pub fn position_embeddings(&self, height: i64, width: i64, num_patches: i64) -> Result<Tensor> {
        let pe = &self.embeddings.position_embeddings;
        let g = self.config.grid();
        if num_patches == g * g && height == width {
            return Ok(pe.shallow_clone());
        }
        let p = self.config.patch_size;
        let (gh, gw) = (height / p, width / p);
        let mut cache = self.resized.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(((h, w), t)) = cache.as_ref()
            && (*h, *w) == (height, width)
        {
            return Ok(t.shallow_clone());
        }
        let c = self.config.hidden_size;
        let cls = pe.f_narrow(1, 0, 1)?;
        let grid = pe
            .f_narrow(1, 1, g * g)?
            .f_reshape([1, g, g, c])?
            .f_permute([0, 3, 1, 2])?
            .f_to_kind(Kind::Float)?;
        let resized = if self.config.model_type == "dinov2_with_registers" {
            grid.f_internal_upsample_bicubic2d_aa([gh, gw], false, None, None)?
        } else {
            grid.f_upsample_bicubic2d([gh, gw], false, None, None)?
        };
        let patches = resized
            .f_to_kind(self.kind)?
            .f_permute([0, 2, 3, 1])?
            .f_reshape([1, gh * gw, c])?;
        let out = Tensor::f_cat(&[cls, patches], 1)?;
        *cache = Some(((height, width), out.shallow_clone()));
        Ok(out)
    }

    /// Runs the backbone on `N × channels × H × W` pixels (any float kind, moved to the model's
    /// device and kind; H and W at least one patch).
    pub fn forward(&self, pixels: &Tensor) -> Result<Dinov2Output> {
        let _guard = tch::no_grad_guard();
        let (n, h, w) = check_pixels(pixels, self.config.num_channels)?;
        let p = self.config.patch_size;
        if h < p || w < p {
            return Err(embed_torch::Error::Input(format!(
                "input of {h}×{w} pixels is smaller than one {p}×{p} patch"
            ))
            .into());
        }
        let c = self.config.hidden_size;
        let x = pixels.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let e = &self.embeddings;
        let patches = x
            .f_conv2d(
                &e.projection_weight,
                Some(&e.projection_bias),
                [p, p],
                [0, 0],
                [1, 1],
                1,
            )?
            .f_flatten(2, -1)?
            .f_transpose(1, 2)?;
        let num_patches = patches.size()[1];
        let cls = e.cls_token.f_expand([n, 1, c], false)?;
        let tokens = Tensor::f_cat(&[cls, patches], 1)?;
        let mut hidden = tokens.f_add(&self.position_embeddings(h, w, num_patches)?)?;
        if let Some(reg) = &e.register_tokens {
            let r = reg.size()[1];
            hidden = Tensor::f_cat(
                &[
                    hidden.f_narrow(1, 0, 1)?,
                    reg.f_expand([n, r, c], false)?,
                    hidden.f_narrow(1, 1, num_patches)?,
                ],
                1,
            )?;
        }
        for layer in &self.layers {
            hidden = layer.forward(&hidden)?;
        }
        let last_hidden_state = self.layernorm.forward(&hidden)?;
        let pooler_output = last_hidden_state.f_select(1, 0)?;
        Ok(Dinov2Output {
            last_hidden_state,
            pooler_output,
        })
    }
}
