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
    let device = match device_name(s)? {
        DeviceName::Cpu => return Ok(Device::Cpu),
        DeviceName::Auto => return Ok(Device::cuda_if_available()),
        DeviceName::Cuda(n) => Device::Cuda(n),
    };
    let s = s.trim().to_ascii_lowercase();
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

/// A device as named on a command line, before libtorch is asked whether it exists.
enum DeviceName {
    Cpu,
    Auto,
    Cuda(usize),
}

/// Reads `cpu`, `cuda` (or `gpu`), `cuda:N` or `auto`, any case.
fn device_name(s: &str) -> Result<DeviceName> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "cpu" => Ok(DeviceName::Cpu),
        "auto" => Ok(DeviceName::Auto),
        "cuda" | "gpu" => Ok(DeviceName::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(DeviceName::Cuda)
            .ok_or_else(|| Error::Device(format!("`{other}`: expected cpu, cuda, cuda:N or auto"))),
    }
}

/// Checks that `s` names a device the way [`parse_device`] reads it, without asking libtorch
/// whether that device exists (for command-line parsing, before any work).
///
/// ```
/// assert!(embed_torch::check_device_name("CUDA:1").is_ok());
/// assert!(embed_torch::check_device_name("tpu").is_err());
/// ```
pub fn check_device_name(s: &str) -> Result<()> {
    device_name(s).map(|_| ())
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
    /// The precision of a libtorch kind, `None` for a kind that is none of the three.
    ///
    /// ```
    /// use embed_torch::Precision;
    /// assert_eq!(Precision::of_kind(tch::Kind::BFloat16), Some(Precision::Bf16));
    /// assert_eq!(Precision::of_kind(tch::Kind::Int), None);
    /// ```
    pub fn of_kind(kind: Kind) -> Option<Self> {
        [Self::F32, Self::F16, Self::Bf16]
            .into_iter()
            .find(|p| p.kind() == kind)
    }

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

impl Precision {
    /// Whether this CPU computes in this precision natively, `None` when not known.
    ///
    /// libtorch runs f16 and bf16 on any CPU, but without the instructions for them (AVX512_BF16
    /// for bf16, AVX512_FP16 for f16; AMX implies them on the chips that have it) it converts
    /// to f32 and back around every kernel, and the model runs several times *slower* than in
    /// f32 (measured on a Zen 4 CPU, which has AVX512_BF16 but not AVX512_FP16: f16 4.5× slower
    /// than f32; bf16 with its native kernels disabled 2.3× slower, with them 1.9× faster).
    /// Known on x86-64 only; `Some(true)` for f32.
    pub fn native_on_cpu(self) -> Option<bool> {
        #[cfg(target_arch = "x86_64")]
        {
            Some(match self {
                Self::F32 => true,
                Self::Bf16 => std::arch::is_x86_feature_detected!("avx512bf16"),
                Self::F16 => std::arch::is_x86_feature_detected!("avx512fp16"),
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            (self == Self::F32).then_some(true)
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
    /// A warning when these options will run slower than f32 would: f16 or bf16 on a CPU
    /// without instructions for it (see [`Precision::native_on_cpu`]). `None` on CUDA, in f32,
    /// and where the CPU has them or it is not known.
    ///
    /// ```
    /// use embed_torch::{Precision, TorchOptions};
    /// let f32_cpu = TorchOptions::default();
    /// assert!(f32_cpu.slow_precision_warning().is_none());
    /// let f16_cpu = TorchOptions { precision: Precision::F16, ..f32_cpu };
    /// // Some(..) exactly when this CPU lacks AVX512_FP16.
    /// assert_eq!(
    ///     f16_cpu.slow_precision_warning().is_some(),
    ///     Precision::F16.native_on_cpu() == Some(false)
    /// );
    /// ```
    pub fn slow_precision_warning(&self) -> Option<String> {
        if self.device != Device::Cpu || self.precision.native_on_cpu() != Some(false) {
            return None;
        }
        let instructions = match self.precision {
            Precision::Bf16 => "AVX512_BF16",
            Precision::F16 => "AVX512_FP16",
            Precision::F32 => return None,
        };
        let instead = if Precision::Bf16.native_on_cpu() == Some(true) {
            "use bf16, which this CPU has, or f32"
        } else {
            "use f32, or a GPU"
        };
        Some(format!(
            "this CPU has no {instructions} instructions: libtorch will emulate {} and run the model \
             several times slower than in f32 ({instead})",
            self.precision
        ))
    }

    /// From the command-line strings (`None` = `auto` and `f32`).
    pub fn parse(device: Option<&str>, precision: Option<&str>) -> Result<Self> {
        Ok(Self {
            device: parse_device(device.unwrap_or("auto"))?,
            precision: precision.map(str::parse).transpose()?.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_precision_warning_only_for_emulated_half_precision_on_the_cpu() {
        for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
            let cpu = TorchOptions {
                device: Device::Cpu,
                precision,
            };
            let warning = cpu.slow_precision_warning();
            assert_eq!(
                warning.is_some(),
                precision.native_on_cpu() == Some(false),
                "{precision}: {warning:?}"
            );
            if let Some(w) = warning {
                assert!(w.contains(precision.as_str()), "{w}");
            }
            // A GPU runs half precision natively: never a warning there.
            let cuda = TorchOptions {
                device: Device::Cuda(0),
                precision,
            };
            assert_eq!(cuda.slow_precision_warning(), None);
        }
        assert_eq!(Precision::F32.native_on_cpu(), Some(true));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn native_on_cpu_follows_the_cpu_flags() {
        // Linux lists the flags the kernel saw; compare with std's detection of them.
        let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let flags: Vec<&str> = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        assert_eq!(
            Precision::Bf16.native_on_cpu(),
            Some(flags.contains(&"avx512_bf16"))
        );
        assert_eq!(
            Precision::F16.native_on_cpu(),
            Some(flags.contains(&"avx512_fp16"))
        );
    }
}
