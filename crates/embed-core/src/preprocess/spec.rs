//! The typed preprocessing specification, read from `preprocessor_config.json`.

use std::path::Path;
use std::rc::Rc;

use ndarray::{Array3, Array4, ArrayViewMut3};
use serde_json::Value;

use super::plan::Segment;
use super::resize::{Scratch, resize_window, with_scratch};
use crate::decode::RgbImage;
use crate::error::{Error, Result};

/// Mean of the OpenAI CLIP training images (per RGB channel).
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// Standard deviation of the OpenAI CLIP training images.
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];
/// ImageNet mean, used by DINOv2.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation, used by DINOv2.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// PIL resampling filters (the integer codes of `PIL.Image.Resampling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resample {
    /// `NEAREST` (0).
    Nearest,
    /// `BOX` (4).
    Box,
    /// `BILINEAR` (2), a triangle filter.
    Bilinear,
    /// `HAMMING` (5).
    Hamming,
    /// `BICUBIC` (3), cubic convolution with a = -0.5. The default of both models.
    Bicubic,
    /// `LANCZOS` (1), three lobes.
    Lanczos,
}

impl Resample {
    /// From PIL's integer code.
    pub fn from_pil_code(code: i64) -> Result<Self> {
        Ok(match code {
            0 => Self::Nearest,
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            other => return Err(Error::Config(format!("unknown PIL resample code {other}"))),
        })
    }
}

/// How the image is resized before cropping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizeSpec {
    /// Scale so the shorter side equals this, keeping the aspect ratio (the longer side is
    /// truncated, as `transformers`' `get_resize_output_image_size` does).
    ShortestEdge(u32),
    /// Scale to exactly this size.
    Exact {
        /// Output height.
        height: u32,
        /// Output width.
        width: u32,
    },
}

/// Size of the centre crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CropSize {
    /// Crop height.
    pub height: u32,
    /// Crop width.
    pub width: u32,
}

/// Everything preprocessing needs, with the defaults of `transformers`' PIL processors.
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessSpec {
    /// Resize step; `None` when `do_resize` is false.
    pub resize: Option<ResizeSpec>,
    /// Filter of the resize step.
    pub resample: Resample,
    /// Centre crop; `None` when `do_center_crop` is false.
    pub crop: Option<CropSize>,
    /// Multiplier applied to 8-bit values (in `f64`, then rounded to `f32`, as numpy does);
    /// `None` when `do_rescale` is false.
    pub rescale_factor: Option<f64>,
    /// Per-channel mean and standard deviation; `None` when `do_normalize` is false.
    pub normalize: Option<([f64; 3], [f64; 3])>,
}

impl PreprocessSpec {
    /// The `openai/clip-vit-*` processor: shortest edge 224, bicubic, crop 224, CLIP mean/std.
    pub fn clip() -> Self {
        Self {
            resize: Some(ResizeSpec::ShortestEdge(224)),
            resample: Resample::Bicubic,
            crop: Some(CropSize {
                height: 224,
                width: 224,
            }),
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some((OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)),
        }
    }

    /// The `facebook/dinov2-*` processor: shortest edge 256, bicubic, crop 224, ImageNet
    /// mean/std.
    pub fn dinov2() -> Self {
        Self {
            resize: Some(ResizeSpec::ShortestEdge(256)),
            normalize: Some((IMAGENET_MEAN, IMAGENET_STD)),
            ..Self::clip()
        }
    }

    /// Reads a `preprocessor_config.json`. Keys it does not mention keep the values of
    /// `defaults` (pass [`PreprocessSpec::clip`] or [`PreprocessSpec::dinov2`], the class
    /// defaults of the matching processor).
    pub fn from_file(path: &Path, defaults: Self) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text, defaults)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses the JSON text of a `preprocessor_config.json`. See [`PreprocessSpec::from_file`].
    pub fn from_json_str(text: &str, defaults: Self) -> Result<Self> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::Config("top level is not an object".into()))?;
        let flag = |key: &str, default: bool| -> Result<bool> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(Error::Config(format!(
                    "`{key}` must be a boolean, got {other}"
                ))),
            }
        };
        let mut spec = defaults.clone();

        if let Some(size) = obj.get("size").filter(|v| !v.is_null()) {
            spec.resize = Some(parse_resize(size)?);
        }
        if !flag("do_resize", defaults.resize.is_some())? {
            spec.resize = None;
        } else if spec.resize.is_none() {
            return Err(Error::Config(
                "`do_resize` is true but no `size` is given".into(),
            ));
        }
        if let Some(r) = obj.get("resample").filter(|v| !v.is_null()) {
            let code = r
                .as_i64()
                .ok_or_else(|| Error::Config(format!("`resample` must be an integer, got {r}")))?;
            spec.resample = Resample::from_pil_code(code)?;
        }
        if let Some(crop) = obj.get("crop_size").filter(|v| !v.is_null()) {
            spec.crop = Some(parse_crop(crop)?);
        }
        if !flag("do_center_crop", defaults.crop.is_some())? {
            spec.crop = None;
        } else if spec.crop.is_none() {
            return Err(Error::Config(
                "`do_center_crop` is true but no `crop_size` is given".into(),
            ));
        }
        let factor = match obj.get("rescale_factor").filter(|v| !v.is_null()) {
            Some(f) => Some(f.as_f64().ok_or_else(|| {
                Error::Config(format!("`rescale_factor` must be a number, got {f}"))
            })?),
            None => defaults.rescale_factor.or(Some(1.0 / 255.0)),
        };
        spec.rescale_factor = if flag("do_rescale", defaults.rescale_factor.is_some())? {
            factor
        } else {
            None
        };
        let (dmean, dstd) = defaults
            .normalize
            .unwrap_or((OPENAI_CLIP_MEAN, OPENAI_CLIP_STD));
        let mean = match obj.get("image_mean").filter(|v| !v.is_null()) {
            Some(m) => parse_triplet("image_mean", m)?,
            None => dmean,
        };
        let std = match obj.get("image_std").filter(|v| !v.is_null()) {
            Some(s) => parse_triplet("image_std", s)?,
            None => dstd,
        };
        if std.iter().any(|&s| s == 0.0 || !s.is_finite()) || mean.iter().any(|m| !m.is_finite()) {
            return Err(Error::Config(format!(
                "unusable normalisation mean {mean:?} std {std:?}"
            )));
        }
        spec.normalize = if flag("do_normalize", defaults.normalize.is_some())? {
            Some((mean, std))
        } else {
            None
        };
        if !flag("do_convert_rgb", true)? {
            // Our decoder always yields RGB; a checkpoint that asks for another layout would
            // receive inputs its processor never produces.
            return Err(Error::Config(
                "`do_convert_rgb: false` is not supported".into(),
            ));
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Checks sizes are usable (non-zero, bounded).
    pub fn validate(&self) -> Result<()> {
        const MAX: u32 = 1 << 14;
        let ok = |v: u32| v > 0 && v <= MAX;
        match self.resize {
            Some(ResizeSpec::ShortestEdge(s)) if !ok(s) => {
                return Err(Error::Config(format!(
                    "shortest_edge {s} outside 1..={MAX}"
                )));
            }
            Some(ResizeSpec::Exact { height, width }) if !ok(height) || !ok(width) => {
                return Err(Error::Config(format!(
                    "size {height}×{width} outside 1..={MAX}"
                )));
            }
            _ => {}
        }
        if let Some(c) = self.crop
            && (!ok(c.height) || !ok(c.width))
        {
            return Err(Error::Config(format!(
                "crop {}×{} outside 1..={MAX}",
                c.height, c.width
            )));
        }
        Ok(())
    }

    /// `(height, width)` of the output of [`PreprocessSpec::preprocess`] for any input, when it
    /// does not depend on the input (a crop or an exact resize is configured).
    pub fn fixed_output_size(&self) -> Option<(usize, usize)> {
        match (self.crop, self.resize) {
            (Some(c), _) => Some((c.height as usize, c.width as usize)),
            (None, Some(ResizeSpec::Exact { height, width })) => {
                Some((height as usize, width as usize))
            }
            _ => None,
        }
    }

    /// `(height, width)` of the resized image (before cropping) for an input of this size, by
    /// the rules of `transformers.image_transforms.get_resize_output_image_size`.
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        self.geometry().resized_size(width, height)
    }

    /// The resize and crop part of this spec: what preprocessing reads of an image.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            resize: self.resize,
            resample: self.resample,
            crop: self.crop,
        }
    }

    /// The shorter side a JPEG may be DCT-downscaled to before this spec resizes it
    /// ([`crate::DecodeOptions::jpeg_dct_downscale_min_side`], the opt-in fast mode): twice the
    /// resize target (448 for CLIP's shortest edge 224, 512 for DINOv2's 256; for an exact
    /// resize, twice its larger side), so the resize still downscales at least 2× and keeps its
    /// antialiasing. `None` without a resize: the crop would then see a smaller image.
    pub fn fast_jpeg_min_side(&self) -> Option<u32> {
        match self.resize? {
            ResizeSpec::ShortestEdge(size) => Some(size.saturating_mul(2)),
            ResizeSpec::Exact { height, width } => Some(height.max(width).saturating_mul(2)),
        }
    }

    /// `(height, width)` of the output for an input of this size.
    pub fn output_size(&self, width: u32, height: u32) -> (usize, usize) {
        self.geometry().output_size(width, height)
    }

    /// `(height, width)` of the output for `image`, from the size of the picture it shows
    /// ([`RgbImage::full_size`]: a reduced-size JPEG decode gives the full decode's output).
    pub fn output_size_of(&self, image: &RgbImage) -> (usize, usize) {
        let (width, height) = image.full_size();
        self.output_size(width, height)
    }

    /// A zeroed `n × 3 × H × W` batch for this spec. When the output size depends on the input
    /// (no crop and no exact resize) the batch is `n × 3 × 0 × 0`, and filling a slot with
    /// [`PreprocessSpec::preprocess_into`] then fails with a shape error.
    pub fn empty_batch(&self, n: usize) -> Array4<f32> {
        let (h, w) = self.fixed_output_size().unwrap_or((0, 0));
        Array4::zeros((n, 3, h, w))
    }

    /// Preprocesses one image into a new `3 × H × W` array.
    pub fn preprocess(&self, image: &RgbImage) -> Result<Array3<f32>> {
        let (h, w) = self.output_size_of(image);
        let mut out = Array3::zeros((3, h, w));
        self.preprocess_into(image, out.view_mut())?;
        Ok(out)
    }

    /// Preprocesses one image into `out` (`3 × H × W`, e.g. one slot of a batch).
    pub fn preprocess_into(&self, image: &RgbImage, mut out: ArrayViewMut3<'_, f32>) -> Result<()> {
        let (h, w) = self.output_size_of(image);
        if out.shape() != [3, h, w] {
            return Err(Error::Shape(format!(
                "output slot {:?} for a {}×{} image (expected [3, {h}, {w}])",
                out.shape(),
                image.width(),
                image.height()
            )));
        }
        let slice = out
            .as_slice_mut()
            .ok_or_else(|| Error::Shape("output slot is not contiguous".into()))?;
        with_scratch(|s| {
            let placed = resize_window(self, image, s)?;
            let tables = self.cached_tables(s);
            let mut rest = &mut slice[..];
            placed.emit(&s.window, |c, seg| {
                let n = match seg {
                    Segment::Pad(n) => n,
                    Segment::Pixels(px) => px.len(),
                };
                let n = n.min(rest.len());
                let (dst, tail) = std::mem::take(&mut rest).split_at_mut(n);
                rest = tail;
                match seg {
                    Segment::Pad(_) => dst.fill(tables.values[c][0]),
                    Segment::Pixels(px) => tables.lookup(c, px, dst),
                }
            });
            Ok(())
        })
    }

    /// [`PreprocessSpec::value_tables`] (with their SIMD form), kept in the thread's scratch
    /// while the spec's values stay the same.
    fn cached_tables(&self, s: &mut Scratch) -> Rc<Tables> {
        let key = (self.rescale_factor, self.normalize);
        match &s.tables {
            Some((k, t)) if *k == key => Rc::clone(t),
            _ => {
                let t = Rc::new(Tables::new(self.value_tables()));
                s.tables = Some((key, Rc::clone(&t)));
                t
            }
        }
    }

    /// For each channel, the `f32` each 8-bit value becomes: `float32(float64(v) * factor)`,
    /// then `(x - float32(mean)) / float32(std)` in `f32`, the same operations in the same
    /// order as `transformers`' numpy code, so results are bit-identical.
    pub fn value_tables(&self) -> [[f32; 256]; 3] {
        let mut tables = [[0f32; 256]; 3];
        for (c, table) in tables.iter_mut().enumerate() {
            for (v, slot) in table.iter_mut().enumerate() {
                let mut x = match self.rescale_factor {
                    Some(f) => (v as f64 * f) as f32,
                    None => v as f32,
                };
                if let Some((mean, std)) = self.normalize {
                    x = (x - mean[c] as f32) / std[c] as f32;
                }
                *slot = x;
            }
        }
        tables
    }
}

/// The resize and centre crop of a [`PreprocessSpec`] ([`PreprocessSpec::geometry`]): which
/// input pixels preprocessing reads and where they land. Small and `Copy`, for
/// [`crate::DecodeOptions::window_for`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Resize step; `None` when `do_resize` is false.
    pub resize: Option<ResizeSpec>,
    /// Filter of the resize step.
    pub resample: Resample,
    /// Centre crop; `None` when `do_center_crop` is false.
    pub crop: Option<CropSize>,
}

impl Geometry {
    /// `(height, width)` of the resized image (before cropping) for an input of this size, by
    /// the rules of `transformers.image_transforms.get_resize_output_image_size`.
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        match self.resize {
            None => (height, width),
            Some(ResizeSpec::Exact { height, width }) => (height, width),
            Some(ResizeSpec::ShortestEdge(size)) => {
                let (short, long) = if width <= height {
                    (width, height)
                } else {
                    (height, width)
                };
                // Python: int(size * long / short), an exact integer product then a correctly
                // rounded true division, truncated.
                let new_long =
                    ((u64::from(size) * u64::from(long)) as f64 / f64::from(short)) as u64;
                let new_long = new_long.min(u64::from(u32::MAX)) as u32;
                if width <= height {
                    (new_long, size)
                } else {
                    (size, new_long)
                }
            }
        }
    }

    /// `(height, width)` of the output for an input of this size.
    pub fn output_size(&self, width: u32, height: u32) -> (usize, usize) {
        match self.crop {
            Some(c) => (c.height as usize, c.width as usize),
            None => {
                let (h, w) = self.resized_size(width, height);
                (h as usize, w as usize)
            }
        }
    }

    /// The part of a `width × height` image that preprocessing reads: every input pixel any
    /// kept output pixel's filter touches (PIL's taps, zero-weight ones included). `None` when
    /// that is the whole image, or cannot be said (nearest-neighbour resampling, or a size
    /// that preprocessing rejects).
    pub fn source_region(&self, width: u32, height: u32) -> Option<Region> {
        let region = super::plan::source_region(self, width, height)?;
        (region.width < width || region.height < height).then_some(region)
    }
}

/// A rectangle of an image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

fn parse_u32(key: &str, v: &Value) -> Result<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| Error::Config(format!("`{key}` must be a positive integer, got {v}")))
}

fn parse_resize(size: &Value) -> Result<ResizeSpec> {
    match size {
        // A bare integer means a shortest edge for these processors (`default_to_square=False`).
        Value::Number(_) => Ok(ResizeSpec::ShortestEdge(parse_u32("size", size)?)),
        Value::Object(o) => {
            if let Some(s) = o.get("shortest_edge").filter(|v| !v.is_null()) {
                if o.get("longest_edge").is_some_and(|v| !v.is_null()) {
                    return Err(Error::Config("`size.longest_edge` is not supported".into()));
                }
                return Ok(ResizeSpec::ShortestEdge(parse_u32(
                    "size.shortest_edge",
                    s,
                )?));
            }
            match (o.get("height"), o.get("width")) {
                (Some(h), Some(w)) => Ok(ResizeSpec::Exact {
                    height: parse_u32("size.height", h)?,
                    width: parse_u32("size.width", w)?,
                }),
                _ => Err(Error::Config(format!("unsupported `size` {size}"))),
            }
        }
        other => Err(Error::Config(format!("unsupported `size` {other}"))),
    }
}

fn parse_crop(crop: &Value) -> Result<CropSize> {
    match crop {
        Value::Number(_) => {
            let s = parse_u32("crop_size", crop)?;
            Ok(CropSize {
                height: s,
                width: s,
            })
        }
        Value::Object(o) => match (o.get("height"), o.get("width")) {
            (Some(h), Some(w)) => Ok(CropSize {
                height: parse_u32("crop_size.height", h)?,
                width: parse_u32("crop_size.width", w)?,
            }),
            _ => Err(Error::Config(format!("unsupported `crop_size` {crop}"))),
        },
        other => Err(Error::Config(format!("unsupported `crop_size` {other}"))),
    }
}

fn parse_triplet(key: &str, v: &Value) -> Result<[f64; 3]> {
    let nums: Vec<f64> = match v {
        Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN); 3],
        Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect(),
        _ => Vec::new(),
    };
    match nums.as_slice() {
        [a, b, c] if nums.iter().all(|x| x.is_finite()) => Ok([*a, *b, *c]),
        _ => Err(Error::Config(format!(
            "`{key}` must be three numbers, got {v}"
        ))),
    }
}

/// The value tables of a spec, with the byte-plane form the AVX-512 lookup reads where the
/// CPU has it.
pub(super) struct Tables {
    /// Per channel, the `f32` of each 8-bit value.
    pub(super) values: [[f32; 256]; 3],
    #[cfg(target_arch = "x86_64")]
    planes: Option<[super::avx512::BytePlanes; 3]>,
}

impl Tables {
    fn new(values: [[f32; 256]; 3]) -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            planes: (super::avx512::have_lookup() && super::simd_cap() >= super::SimdLevel::Avx512)
                .then(|| values.each_ref().map(super::avx512::byte_planes)),
            values,
        }
    }

    /// `dst[i] = values[c][px[i]]`.
    fn lookup(&self, c: usize, px: &[u8], dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(planes) = &self.planes {
            // SAFETY: `planes` exists only where `have_lookup` found the CPU features.
            unsafe { super::avx512::lookup_f32(px, &planes[c], dst) };
            return;
        }
        let lut = &self.values[c];
        for (d, &v) in dst.iter_mut().zip(px) {
            *d = lut[usize::from(v)];
        }
    }
}
