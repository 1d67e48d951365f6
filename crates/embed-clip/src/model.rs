//! The CLIP vision tower and its projection. Field names repeat the checkpoint keys
//! (`vision_model.embeddings.class_embedding`, `vision_model.pre_layrnorm` (sic), ...).

use embed_torch::vit::{Attention, AttentionKeys, Block, LayerNorm, Linear, Mlp};
use embed_torch::{Checkpoint, check_pixels};
use tch::{Device, Kind, Tensor};

use crate::config::ClipVisionConfig;
use crate::error::Result;

/// `vision_model.embeddings.*`.
#[derive(Debug)]
struct Embeddings {
    /// `class_embedding` (`C`).
    class_embedding: Tensor,
    /// `patch_embedding.weight` (`C × channels × p × p`, no bias).
    patch_embedding: Tensor,
    /// `position_embedding.weight` (`1 + grid² × C`).
    position_embedding: Tensor,
}

/// Everything the vision tower computes for a batch.
#[derive(Debug)]
pub struct ClipVisionOutput {
    /// `N × (1 + grid²) × C`: the encoder output (before `post_layernorm`, as in
    /// `transformers`).
    pub last_hidden_state: Tensor,
    /// `N × C`: `post_layernorm` of the CLS token (`pooler_output`).
    pub pooler_output: Tensor,
    /// `N × projection_dim`: `visual_projection(pooler_output)`, the image embedding
    /// (`get_image_features`).
    pub image_embeds: Tensor,
}

/// The CLIP vision transformer with `visual_projection`.
#[derive(Debug)]
pub struct ClipVisionModel {
    config: ClipVisionConfig,
    embeddings: Embeddings,
    pre_layrnorm: LayerNorm,
    layers: Vec<Block>,
    post_layernorm: LayerNorm,
    visual_projection: Linear,
    device: Device,
    kind: Kind,
}

impl ClipVisionModel {
    /// Builds the model from a checkpoint, taking every tensor it needs under the checkpoint's
    /// names. For a full `CLIPModel` the text tower (`text_model.*`, `text_projection.weight`,
    /// `logit_scale`) is skipped knowingly; call [`Checkpoint::finish`] afterwards to reject
    /// anything else.
    pub fn new(config: &ClipVisionConfig, ckpt: &mut Checkpoint) -> Result<Self> {
        let mut config = config.clone();
        config.validate()?;
        let c = config.hidden_size;
        let p = config.patch_size;
        let eps = config.layer_norm_eps;
        let act = config.activation()?;
        let vm = "vision_model";
        let embeddings = Embeddings {
            class_embedding: ckpt.tensor(&format!("{vm}.embeddings.class_embedding"), &[c])?,
            patch_embedding: ckpt.tensor(
                &format!("{vm}.embeddings.patch_embedding.weight"),
                &[c, config.num_channels, p, p],
            )?,
            position_embedding: ckpt.tensor(
                &format!("{vm}.embeddings.position_embedding.weight"),
                &[config.num_positions(), c],
            )?,
        };
        // A non-persistent buffer that older exports saved.
        ckpt.skip_if_present(&format!("{vm}.embeddings.position_ids"));
        let pre_layrnorm = LayerNorm::load(ckpt, &format!("{vm}.pre_layrnorm"), c, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers as usize);
        for i in 0..config.num_hidden_layers {
            let l = format!("{vm}.encoder.layers.{i}");
            let keys = AttentionKeys {
                query: format!("{l}.self_attn.q_proj"),
                key: format!("{l}.self_attn.k_proj"),
                value: format!("{l}.self_attn.v_proj"),
                output: format!("{l}.self_attn.out_proj"),
            };
            layers.push(Block {
                norm1: LayerNorm::load(ckpt, &format!("{l}.layer_norm1"), c, eps)?,
                attention: Attention::load(ckpt, &keys, c, config.num_attention_heads, true)?,
                layer_scale1: None,
                norm2: LayerNorm::load(ckpt, &format!("{l}.layer_norm2"), c, eps)?,
                mlp: Mlp::load_standard(
                    ckpt,
                    &format!("{l}.mlp"),
                    c,
                    config.intermediate_size,
                    act,
                )?,
                layer_scale2: None,
            });
        }
        let post_layernorm = LayerNorm::load(ckpt, &format!("{vm}.post_layernorm"), c, eps)?;
        let visual_projection =
            Linear::load(ckpt, "visual_projection", c, config.projection_dim, false)?;
        if config.full_clip_model {
            ckpt.skip_prefix("text_model.");
            ckpt.skip_if_present("text_projection.weight");
            ckpt.skip_if_present("logit_scale");
        }
        let options = ckpt.options();
        Ok(Self {
            config,
            embeddings,
            pre_layrnorm,
            layers,
            post_layernorm,
            visual_projection,
            device: options.device,
            kind: options.precision.kind(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClipVisionConfig {
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

    /// Embeds and encodes: `N × channels × S × S` (S = `image_size`; any float kind, moved to the
    /// model's device and kind) → the encoder output `N × T × C`.
    pub fn last_hidden_state(&self, pixels: &Tensor) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let (n, h, w) = check_pixels(pixels, self.config.num_channels)?;
        let s = self.config.image_size;
        if h != s || w != s {
            return Err(embed_torch::Error::Input(format!(
                "input image size ({h}*{w}) doesn't match model ({s}*{s})"
            ))
            .into());
        }
        let c = self.config.hidden_size;
        let p = self.config.patch_size;
        let x = pixels.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let patches = x
            .f_conv2d::<Tensor>(
                &self.embeddings.patch_embedding,
                None,
                [p, p],
                [0, 0],
                [1, 1],
                1,
            )?
            .f_flatten(2, -1)?
            .f_transpose(1, 2)?;
        let cls = self.embeddings.class_embedding.f_expand([n, 1, c], false)?;
        let tokens =
            Tensor::f_cat(&[cls, patches], 1)?.f_add(&self.embeddings.position_embedding)?;
        let mut hidden = self.pre_layrnorm.forward(&tokens)?;
        for layer in &self.layers {
            hidden = layer.forward(&hidden)?;
        }
        Ok(hidden)
    }

    /// All outputs: last hidden state, pooled output and image embedding.
    pub fn forward(&self, pixels: &Tensor) -> Result<ClipVisionOutput> {
        let _guard = tch::no_grad_guard();
        let last_hidden_state = self.last_hidden_state(pixels)?;
        let pooler_output = self
            .post_layernorm
            .forward(&last_hidden_state.f_select(1, 0)?)?;
        let image_embeds = self.visual_projection.forward(&pooler_output)?;
        Ok(ClipVisionOutput {
            last_hidden_state,
            pooler_output,
            image_embeds,
        })
    }

    /// The image embedding `visual_projection(post_layernorm(CLS))`, `N × projection_dim`, in
    /// the model's kind.
    pub fn image_embeds(&self, pixels: &Tensor) -> Result<Tensor> {
        Ok(self.forward(pixels)?.image_embeds)
    }
}
