//! How a DINOv2 sequence becomes one vector.

use std::fmt;
use std::str::FromStr;

use tch::Tensor;

use crate::error::{Error, Result};

/// Pooling of the final-layernormed sequence `[CLS, registers…, patches…]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// Mean over **all** tokens (CLS, registers and patches): `last_hidden_state.mean(dim=1)`,
    /// the original study's choice. The default.
    #[default]
    Mean,
    /// The CLS token (`pooler_output`).
    Cls,
    /// Mean over the patch tokens only (registers excluded).
    PatchMean,
    /// CLS concatenated with the patch mean (twice the width), as DINOv2's linear probes use.
    ClsPatchMean,
}

impl Pooling {
    /// All variants.
    pub const ALL: [Pooling; 4] = [Self::Mean, Self::Cls, Self::PatchMean, Self::ClsPatchMean];

    /// The command-line name (`mean`, `cls`, `patch-mean`, `cls-patch-mean`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Cls => "cls",
            Self::PatchMean => "patch-mean",
            Self::ClsPatchMean => "cls-patch-mean",
        }
    }

    /// Output width for a model of width `hidden`.
    pub fn dim(self, hidden: usize) -> usize {
        if self == Self::ClsPatchMean {
            2 * hidden
        } else {
            hidden
        }
    }

    /// Pools `N × T × C` (with `registers` register tokens after CLS) to `N × dim`.
    pub fn apply(self, last_hidden_state: &Tensor, registers: i64) -> Result<Tensor> {
        let t = last_hidden_state.size().get(1).copied().unwrap_or(0);
        let patch_mean = || -> Result<Tensor> {
            Ok(last_hidden_state
                .f_narrow(1, 1 + registers, t - 1 - registers)?
                .f_mean_dim(1, false, None)?)
        };
        Ok(match self {
            Self::Mean => last_hidden_state.f_mean_dim(1, false, None)?,
            Self::Cls => last_hidden_state.f_select(1, 0)?,
            Self::PatchMean => patch_mean()?,
            Self::ClsPatchMean => {
                Tensor::f_cat(&[last_hidden_state.f_select(1, 0)?, patch_mean()?], -1)?
            }
        })
    }
}

impl FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "mean" => Ok(Self::Mean),
            "cls" => Ok(Self::Cls),
            "patch-mean" => Ok(Self::PatchMean),
            "cls-patch-mean" => Ok(Self::ClsPatchMean),
            other => Err(embed_torch::Error::config(format!(
                "unknown pooling `{other}` (expected mean, cls, patch-mean or cls-patch-mean)"
            ))
            .into()),
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
