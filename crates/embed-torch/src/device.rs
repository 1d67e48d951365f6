//! Device and precision, chosen once when a model is built.

use std::fmt;
use std::str::FromStr;

use tch::{Device, Kind};

use crate::error::{Error, Result};

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA device 0 when libtorch sees a GPU, else the
/// CPU).
///
/// A CUDA device that does not exist is an error here, not at the first forward pass.
///
/// ```
/// assert_eq!(embed_torch::parse_device("cpu").unwrap(), tch::Device::Cpu);
/// assert!(embed_torch::parse_device("tpu").is_err());
/// ```
pub fn parse_device(s: &str) -> Result<Device> {
    crate::cuda_link::keep_cuda_linked();
    let s = s.trim().to_ascii_lowercase();
    let device = match s.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "auto" => return Ok(Device::cuda_if_available()),
        "cuda" | "gpu" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:") {
            Some(n) => Device::Cuda(n.parse::<usize>().map_err(|_| {
                Error::Device(format!("`{other}`: expected cpu, cuda, cuda:N or auto"))
            })?),
            None => {
                return Err(Error::Device(format!(
                    "`{other}`: expected cpu, cuda, cuda:N or auto"
                )));
            }
        },
    };
    let count = tch::Cuda::device_count();
    if let Device::Cuda(n) = device
        && (n as i64) >= count
    {
        return Err(Error::Device(format!(
            "`{s}` asked for, but libtorch sees {count} CUDA device(s)"
        )));
    }
    Ok(device)
}

/// The floating-point precision weights and activations are kept in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 32-bit floats (the reference precision).
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// The libtorch kind.
    pub fn kind(self) -> Kind {
        match self {
            Self::F32 => Kind::Float,
            Self::F16 => Kind::Half,
            Self::Bf16 => Kind::BFloat16,
        }
    }

    /// The name used on command lines (`f32`, `f16`, `bf16`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" | "float" => Ok(Self::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(Error::Precision(other.to_string())),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and in which precision a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TorchOptions {
    /// The device weights live on and the forward pass runs on.
    pub device: Device,
    /// Weights and activations precision.
    pub precision: Precision,
}

impl Default for TorchOptions {
    /// CPU, `f32`.
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            precision: Precision::F32,
        }
    }
}

impl TorchOptions {
    /// From the command-line strings (`None` = `auto` and `f32`).
    pub fn parse(device: Option<&str>, precision: Option<&str>) -> Result<Self> {
        Ok(Self {
            device: parse_device(device.unwrap_or("auto"))?,
            precision: precision.map(str::parse).transpose()?.unwrap_or_default(),
        })
    }
}
