//! Preprocessing equal to Hugging Face's PIL-based image processors (`CLIPImageProcessor`,
//! `BitImageProcessor`): shortest-edge resize with PIL's antialiased filters, centre crop,
//! rescale, normalise, CHW `f32`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod resize;
mod spec;

pub use resize::resize_crop;
pub use spec::{CropSize, PreprocessSpec, Resample, ResizeSpec};
