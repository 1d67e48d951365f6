//! The model an extraction runs, and how its batches travel.

use embed_core::{Embedder, PreprocessSpec};
#[cfg(feature = "torch")]
use embed_torch::TorchEmbedder;

/// The model an extraction runs.
///
/// A libtorch model on a GPU must be passed as [`Model::Torch`] (feature `torch`): as
/// [`Model::Host`] every batch would be built in `f32` on the CPU and copied to the device,
/// several times slower, so the pipeline refuses a host model that says it runs on an
/// accelerator ([`Embedder::on_accelerator`]).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Model<'a> {
    /// Any [`Embedder`]: batches are handed over as `f32` host arrays.
    Host(&'a dyn Embedder),
    /// A libtorch model: on CUDA, batches travel as 8-bit pixels through pinned memory and are
    /// normalised on the device (see the crate documentation).
    #[cfg(feature = "torch")]
    Torch(&'a dyn TorchEmbedder),
}

impl Model<'_> {
    pub(crate) fn embedder(&self) -> &dyn Embedder {
        match self {
            Model::Host(e) => *e,
            #[cfg(feature = "torch")]
            Model::Torch(e) => *e,
        }
    }
    /// The model's identifier.
    pub fn model_id(&self) -> &str {
        self.embedder().model_id()
    }
    /// Width of an embedding.
    pub fn dim(&self) -> usize {
        self.embedder().dim()
    }
    /// The model's preprocessing.
    pub fn preprocess_spec(&self) -> &PreprocessSpec {
        self.embedder().preprocess_spec()
    }
    /// A batch size suited to where the model runs: 256 on an accelerator (large enough to
    /// keep an H100 busy with ViT-B at 224 px in f16, and 8-bit batch buffers of ~38 MiB), 32
    /// elsewhere (a CPU gains nothing from larger batches; results arrive sooner).
    pub fn default_batch_size(&self) -> usize {
        if self.embedder().on_accelerator() {
            256
        } else {
            32
        }
    }
}

/// How the batches of a [`Model::Torch`] reach it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transfer {
    /// 8-bit pixels normalised on the device when the model is on CUDA; `f32` host batches
    /// otherwise.
    #[default]
    Auto,
    /// Always `f32` batches from the host.
    Host,
    /// Always 8-bit pixels normalised by libtorch, on whatever device the model is (on the CPU
    /// this exercises the same code as CUDA without pinned memory).
    Device,
}

/// Where a [`Model::Torch`]'s images are resized and cropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResizeOn {
    /// On the CPU workers, bit-exact with PIL (the default).
    #[default]
    Host,
    /// On the model's device: workers only decode, the 8-bit images travel as they are and
    /// libtorch's antialiased bicubic resizes them (`resize_crop_on_device`, feature `torch`):
    /// close to PIL, not bit-exact (two 8-bit levels at most on the tests' images, 84 % of
    /// values equal). Frees CPU time when decoding is the bottleneck. Needs the 8-bit device
    /// transfer ([`Transfer::Device`], or [`Transfer::Auto`] on CUDA); images larger than
    /// [`crate::ExtractOptions::device_resize_max_pixels`] are still resized on the host.
    Device,
}

/// Names for the command line and configuration files: `auto`, `host`, `device`.
impl std::str::FromStr for Transfer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "host" => Ok(Self::Host),
            "device" => Ok(Self::Device),
            other => Err(format!("`{other}`: expected auto, host or device")),
        }
    }
}

impl std::fmt::Display for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Host => "host",
            Self::Device => "device",
        })
    }
}

/// Names for the command line and configuration files: `host`, `device`.
impl std::str::FromStr for ResizeOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(Self::Host),
            "device" => Ok(Self::Device),
            other => Err(format!("`{other}`: expected host or device")),
        }
    }
}

impl std::fmt::Display for ResizeOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Host => "host",
            Self::Device => "device",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in [Transfer::Auto, Transfer::Host, Transfer::Device] {
            assert_eq!(t.to_string().parse::<Transfer>(), Ok(t));
        }
        for r in [ResizeOn::Host, ResizeOn::Device] {
            assert_eq!(r.to_string().parse::<ResizeOn>(), Ok(r));
        }
        assert!("gpu".parse::<Transfer>().is_err());
    }
}
