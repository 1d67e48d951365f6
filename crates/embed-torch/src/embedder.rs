//! The device-resident embedding interface and the conversions between `ndarray` batches and
//! tensors.

use embed_core::Embedder;
use ndarray::{Array2, ArrayView4};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// An [`Embedder`] whose model lives on a libtorch device and can take batches already there,
/// so a GPU pipeline never copies pixels back through the host.
pub trait TorchEmbedder: Embedder {
    /// Where the weights live and the forward pass runs.
    fn device(&self) -> Device;

    /// The precision of weights and activations.
    fn kind(&self) -> Kind;

    /// Embeds `N × 3 × H × W` pixels on the model's device, in any floating-point kind
    /// (converted to [`TorchEmbedder::kind`]). Returns `N × dim` `f32` rows on the device, not
    /// normalised, in input order. Runs under `no_grad`.
    fn embed_tensor(&self, pixels: &Tensor) -> embed_core::Result<Tensor>;
}

impl<E: TorchEmbedder + ?Sized> TorchEmbedder for Box<E> {
    fn device(&self) -> Device {
        (**self).device()
    }
    fn kind(&self) -> Kind {
        (**self).kind()
    }
    fn embed_tensor(&self, pixels: &Tensor) -> embed_core::Result<Tensor> {
        (**self).embed_tensor(pixels)
    }
}

/// Copies an `N × C × H × W` batch into a contiguous `f32` tensor on `device`.
pub fn array4_to_tensor(pixels: ArrayView4<'_, f32>, device: Device) -> Result<Tensor> {
    let shape: Vec<i64> = pixels.shape().iter().map(|&d| d as i64).collect();
    let standard = pixels.as_standard_layout();
    let data = standard
        .as_slice()
        .ok_or_else(|| Error::Input("pixel batch is not contiguous".into()))?;
    Ok(Tensor::f_from_slice(data)?
        .f_view(shape.as_slice())?
        .f_to_device(device)?)
}

/// Copies an `N × D` tensor (any device, any float kind) into an `f32` array.
pub fn tensor_to_array2(t: &Tensor) -> Result<Array2<f32>> {
    let (n, d) = t.size2()?;
    let host = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    let len = (n * d) as usize;
    let mut data = vec![0f32; len];
    host.f_copy_data(&mut data, len)?;
    Array2::from_shape_vec((n as usize, d as usize), data)
        .map_err(|e| Error::Input(format!("embedding of shape {n}×{d}: {e}")))
}

/// Checks a pixel tensor is `N × channels × H × W` floating point; returns `(N, H, W)`.
pub fn check_pixels(pixels: &Tensor, channels: i64) -> Result<(i64, i64, i64)> {
    let size = pixels.size();
    let [n, c, h, w] = size.as_slice() else {
        return Err(Error::Input(format!(
            "pixels must be N×{channels}×H×W, got shape {size:?}"
        )));
    };
    if *c != channels {
        return Err(Error::Input(format!(
            "pixels have {c} channels, the model expects {channels} (shape {size:?})"
        )));
    }
    if !pixels.is_floating_point() {
        return Err(Error::Input(format!(
            "pixels must be floating point, got {:?}",
            pixels.kind()
        )));
    }
    Ok((*n, *h, *w))
}

/// The [`Embedder::embed_batch`] of every [`TorchEmbedder`]: copy in, embed, copy out.
pub fn embed_array_with<E: TorchEmbedder + ?Sized>(
    embedder: &E,
    pixels: ArrayView4<'_, f32>,
) -> embed_core::Result<Array2<f32>> {
    let input = array4_to_tensor(pixels, embedder.device())?;
    let out = embedder.embed_tensor(&input)?;
    Ok(tensor_to_array2(&out)?)
}
