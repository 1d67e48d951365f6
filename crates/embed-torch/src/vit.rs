//! The Vision Transformer parts CLIP and DINOv2 share, written once and configured.
//!
//! Each part is built from a [`Checkpoint`] with the checkpoint keys of its model (the model
//! crates pass their own key names, so a reader can map any weight to its line) and has one
//! `forward`. All forwards expect to run under `no_grad`.

use std::str::FromStr;

use tch::Tensor;

use crate::error::{Error, Result};
use crate::weights::Checkpoint;

/// A dense layer `y = x Wᵀ + b`.
#[derive(Debug)]
pub struct Linear {
    /// `out × in`.
    pub weight: Tensor,
    /// `out`, when the layer has one.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Loads `{prefix}.weight` (`out × in`) and, when `bias`, `{prefix}.bias` (`out`).
    pub fn load(
        ckpt: &mut Checkpoint,
        prefix: &str,
        in_dim: i64,
        out_dim: i64,
        bias: bool,
    ) -> Result<Self> {
        let weight = ckpt.tensor(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = if bias {
            Some(ckpt.tensor(&format!("{prefix}.bias"), &[out_dim])?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    /// Applies the layer to the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_linear(&self.weight, self.bias.as_ref())?)
    }
}

/// Layer normalisation over the last dimension, with the epsilon of the model's config.
#[derive(Debug)]
pub struct LayerNorm {
    /// Scale.
    pub weight: Tensor,
    /// Shift.
    pub bias: Tensor,
    /// Epsilon (`layer_norm_eps`).
    pub eps: f64,
    dim: i64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, both of length `dim`.
    pub fn load(ckpt: &mut Checkpoint, prefix: &str, dim: i64, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: ckpt.tensor(&format!("{prefix}.weight"), &[dim])?,
            bias: ckpt.tensor(&format!("{prefix}.bias"), &[dim])?,
            eps,
            dim,
        })
    }

    /// Normalises the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )?)
    }
}

/// The activations `transformers` names in `hidden_act` that these models use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `gelu`: exact, erf-based GELU.
    Gelu,
    /// `gelu_pytorch_tanh` / `gelu_new`: the tanh approximation.
    GeluTanh,
    /// `quick_gelu`: `x · σ(1.702 x)` (OpenAI CLIP).
    QuickGelu,
    /// `relu`.
    Relu,
    /// `silu` / `swish`.
    Silu,
}

impl FromStr for Activation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "gelu" => Self::Gelu,
            "gelu_pytorch_tanh" | "gelu_new" => Self::GeluTanh,
            "quick_gelu" => Self::QuickGelu,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            other => {
                return Err(Error::config(format!(
                    "unsupported hidden_act `{other}` (supported: gelu, gelu_pytorch_tanh, gelu_new, \
                     quick_gelu, relu, silu, swish)"
                )));
            }
        })
    }
}

impl Activation {
    /// Applies the activation, with the same operations as `transformers.activations`.
    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Gelu => x.f_gelu("none")?,
            Self::GeluTanh => x.f_gelu("tanh")?,
            Self::QuickGelu => x.f_mul(&(x * 1.702).f_sigmoid()?)?,
            Self::Relu => x.f_relu()?,
            Self::Silu => x.f_silu()?,
        })
    }
}

/// The feed-forward part of a block.
#[derive(Debug)]
pub enum Mlp {
    /// `fc2(act(fc1(x)))`.
    Standard {
        /// `hidden → intermediate`.
        fc1: Linear,
        /// `intermediate → hidden`.
        fc2: Linear,
        /// The activation between them.
        act: Activation,
    },
    /// SwiGLU (DINOv2 giant): `weights_out(silu(x₁) · x₂)` with `[x₁, x₂] = weights_in(x)`.
    SwiGlu {
        /// `hidden → 2 × intermediate`.
        weights_in: Linear,
        /// `intermediate → hidden`.
        weights_out: Linear,
    },
}

impl Mlp {
    /// Loads `{prefix}.fc1` and `{prefix}.fc2` (with biases).
    pub fn load_standard(
        ckpt: &mut Checkpoint,
        prefix: &str,
        hidden: i64,
        intermediate: i64,
        act: Activation,
    ) -> Result<Self> {
        Ok(Self::Standard {
            fc1: Linear::load(ckpt, &format!("{prefix}.fc1"), hidden, intermediate, true)?,
            fc2: Linear::load(ckpt, &format!("{prefix}.fc2"), intermediate, hidden, true)?,
            act,
        })
    }

    /// Loads `{prefix}.weights_in` (`2·intermediate × hidden`) and `{prefix}.weights_out`.
    pub fn load_swiglu(
        ckpt: &mut Checkpoint,
        prefix: &str,
        hidden: i64,
        intermediate: i64,
    ) -> Result<Self> {
        Ok(Self::SwiGlu {
            weights_in: Linear::load(
                ckpt,
                &format!("{prefix}.weights_in"),
                hidden,
                2 * intermediate,
                true,
            )?,
            weights_out: Linear::load(
                ckpt,
                &format!("{prefix}.weights_out"),
                intermediate,
                hidden,
                true,
            )?,
        })
    }

    /// Applies the MLP.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Standard { fc1, fc2, act } => fc2.forward(&act.forward(&fc1.forward(x)?)?),
            Self::SwiGlu {
                weights_in,
                weights_out,
            } => {
                let h = weights_in.forward(x)?;
                let parts = h.f_chunk(2, -1)?;
                let [x1, x2] = parts.as_slice() else {
                    return Err(Error::Input("SwiGLU chunk did not yield two halves".into()));
                };
                weights_out.forward(&x1.f_silu()?.f_mul(x2)?)
            }
        }
    }
}

/// The checkpoint keys of one attention layer's four projections.
#[derive(Clone, Debug)]
pub struct AttentionKeys {
    /// Query projection prefix.
    pub query: String,
    /// Key projection prefix.
    pub key: String,
    /// Value projection prefix.
    pub value: String,
    /// Output projection prefix.
    pub output: String,
}

/// Multi-head self-attention through `scaled_dot_product_attention` (so CUDA can use its
/// fused kernels). Query, key and value weights are concatenated at load time into one
/// projection: one matrix product instead of three.
#[derive(Debug)]
pub struct Attention {
    qkv: Linear,
    output: Linear,
    num_heads: i64,
    head_dim: i64,
    scale: f64,
}

impl Attention {
    /// Loads the four projections (`hidden × hidden` each; query/key/value biases when
    /// `qkv_bias`, the output projection always has one). `hidden` must be a multiple of
    /// `num_heads`.
    pub fn load(
        ckpt: &mut Checkpoint,
        keys: &AttentionKeys,
        hidden: i64,
        num_heads: i64,
        qkv_bias: bool,
    ) -> Result<Self> {
        if num_heads <= 0 || hidden % num_heads != 0 {
            return Err(Error::config(format!(
                "hidden size {hidden} is not a multiple of the number of attention heads {num_heads}"
            )));
        }
        let q = Linear::load(ckpt, &keys.query, hidden, hidden, qkv_bias)?;
        let k = Linear::load(ckpt, &keys.key, hidden, hidden, qkv_bias)?;
        let v = Linear::load(ckpt, &keys.value, hidden, hidden, qkv_bias)?;
        let weight = Tensor::f_cat(&[&q.weight, &k.weight, &v.weight], 0)?;
        let bias = match (q.bias, k.bias, v.bias) {
            (Some(qb), Some(kb), Some(vb)) => Some(Tensor::f_cat(&[qb, kb, vb], 0)?),
            _ => None,
        };
        let output = Linear::load(ckpt, &keys.output, hidden, hidden, true)?;
        let head_dim = hidden / num_heads;
        Ok(Self {
            qkv: Linear { weight, bias },
            output,
            num_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// `x`: `B × T × C` → `B × T × C`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.size3()?;
        let qkv = self
            .qkv
            .forward(x)?
            .f_view([b, t, 3, self.num_heads, self.head_dim])?
            .f_permute([2, 0, 3, 1, 4])?;
        let (q, k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
        let attn = Tensor::f_scaled_dot_product_attention::<Tensor>(
            &q, &k, &v, None, 0.0, false, self.scale, false,
        )?;
        let merged = attn.f_transpose(1, 2)?.f_reshape([b, t, c])?;
        self.output.forward(&merged)
    }
}

/// A pre-norm transformer block with optional LayerScale:
/// `h = x + ls₁·attn(norm₁(x))`, `out = h + ls₂·mlp(norm₂(h))`.
#[derive(Debug)]
pub struct Block {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attention: Attention,
    /// LayerScale of the attention branch (DINOv2's `layer_scale1.lambda1`).
    pub layer_scale1: Option<Tensor>,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// Feed-forward part.
    pub mlp: Mlp,
    /// LayerScale of the MLP branch.
    pub layer_scale2: Option<Tensor>,
}

impl Block {
    /// Applies the block to `B × T × C`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut a = self.attention.forward(&self.norm1.forward(x)?)?;
        if let Some(ls) = &self.layer_scale1 {
            a = a.f_mul(ls)?;
        }
        let h = a.f_add(x)?;
        let mut m = self.mlp.forward(&self.norm2.forward(&h)?)?;
        if let Some(ls) = &self.layer_scale2 {
            m = m.f_mul(ls)?;
        }
        Ok(m.f_add(&h)?)
    }
}
