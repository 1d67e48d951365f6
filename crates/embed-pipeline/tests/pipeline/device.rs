//! The libtorch path (feature `torch`), driven on the CPU build of libtorch: 8-bit batches
//! normalised by libtorch, resizing on the device, and the timing figures of both paths.

use embed_core::{DecodeOptions, Embedder, PreprocessSpec};
use embed_pipeline::test_model::GridMeanEmbedder;
use embed_pipeline::{
    ExtractOptions, Model, PipelineError, ResizeOn, Transfer, decode_only, extract, list_images,
    normalize_u8_nhwc, resize_crop_on_device,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

use crate::common::{make_images, model, opts, reference};

/// A photo-like test image: smooth gradients, an edge and a little noise.
fn photo(w: u32, h: u32, seed: u64) -> embed_core::RgbImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let edge = if x * 3 > w { 60 } else { 0 };
            for c in 0..3u32 {
                let v = (x * (40 + 30 * c)) / w + (y * 120) / h + edge + rng.gen_range(0..24);
                data.push(v.min(255) as u8);
            }
        }
    }
    embed_core::RgbImage::from_raw(w, h, data).unwrap()
}

/// A [`embed_torch::TorchEmbedder`] around the grid-mean embedder, to drive the 8-bit
/// device path on the CPU build of libtorch; each model call first sleeps `.1` (zero: none),
/// which makes timing figures predictable.
struct TorchGrid(GridMeanEmbedder, std::time::Duration);

impl TorchGrid {
    fn call(&self) {
        if !self.1.is_zero() {
            std::thread::sleep(self.1);
        }
    }
}

impl Embedder for TorchGrid {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn preprocess_spec(&self) -> &PreprocessSpec {
        self.0.preprocess_spec()
    }
    fn embed_batch(&self, pixels: ndarray::ArrayView4<'_, f32>) -> embed_core::Result<Array2<f32>> {
        self.call();
        self.0.embed_batch(pixels)
    }
}

impl embed_torch::TorchEmbedder for TorchGrid {
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn kind(&self) -> Kind {
        Kind::Float
    }
    fn embed_tensor(&self, pixels: &Tensor) -> embed_core::Result<Tensor> {
        self.call();
        assert_eq!(pixels.kind(), Kind::Float);
        let size: Vec<usize> = pixels.size().iter().map(|&d| d as usize).collect();
        let mut data = vec![0f32; size.iter().product()];
        let len = data.len();
        pixels.contiguous().copy_data(&mut data, len);
        let a =
            ndarray::Array4::from_shape_vec((size[0], size[1], size[2], size[3]), data).unwrap();
        let out = self.0.embed_batch(a.view())?;
        let (n, d) = out.dim();
        Ok(Tensor::from_slice(out.as_slice().unwrap()).view([n as i64, d as i64]))
    }
}

#[test]
fn device_normalisation_is_bit_identical_to_the_lookup_tables() {
    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        let values: Vec<u8> = (0..=255u8).collect();
        // 1 × 16 × 16 × 3: every value in every channel.
        let mut nhwc = Vec::new();
        for v in &values {
            nhwc.extend([*v, v.wrapping_add(85), v.wrapping_add(170)]);
        }
        let t = Tensor::from_slice(&nhwc).view([1i64, 16, 16, 3]);
        let out = normalize_u8_nhwc(&t, &spec).unwrap();
        assert_eq!(out.size(), vec![1, 3, 16, 16]);
        let mut got = vec![0f32; 3 * 256];
        out.copy_data(&mut got, 3 * 256);
        let luts = spec.value_tables();
        for c in 0..3 {
            for p in 0..256 {
                let v = nhwc[p * 3 + c] as usize;
                assert_eq!(
                    got[c * 256 + p].to_bits(),
                    luts[c][v].to_bits(),
                    "channel {c} value {v}"
                );
            }
        }
    }
}

#[test]
fn device_path_equals_host_path() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 13, 4);
    let paths = list_images(dir.path()).unwrap();
    let m = TorchGrid(model(), std::time::Duration::ZERO);
    // A CPU model gets the CPU's default batch (CUDA's, 256, needs a GPU to check).
    assert_eq!(Model::Torch(&m).default_batch_size(), 32);
    assert_eq!(Model::Host(&m).default_batch_size(), 32);
    let host = extract(Model::Host(&m), &paths, &opts(2, 4)).unwrap();
    for batch in [1, 4, 5] {
        let dev = extract(
            Model::Torch(&m),
            &paths,
            &ExtractOptions {
                transfer: Transfer::Device,
                ..opts(3, batch)
            },
        )
        .unwrap();
        assert_eq!(dev.embeddings, host.embeddings, "batch {batch}");
        assert_eq!(dev.ids, host.ids);
        assert_eq!(dev.skipped, host.skipped);
    }
}

#[test]
fn jpeg_window_decoding_gives_the_whole_pictures_embeddings() {
    // JPEGs larger than the crop reads: the pipeline decodes windows of them (host f32 ring
    // and 8-bit device ring alike), the reference decodes each whole; the embeddings are equal.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    for i in 0..10 {
        let (w, h) = (rng.gen_range(250..700u32), rng.gen_range(250..700u32));
        let img = photo(w, h, i);
        let rgb = image::RgbImage::from_raw(w, h, img.as_raw().to_vec()).unwrap();
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&rgb)
            .unwrap();
        std::fs::write(dir.path().join(format!("p{i:02}.jpg")), bytes).unwrap();
    }
    let paths = list_images(dir.path()).unwrap();
    let m = TorchGrid(model(), std::time::Duration::ZERO);
    let spec = m.preprocess_spec().clone();
    let windows = DecodeOptions {
        window_for: Some(spec.geometry()),
        ..DecodeOptions::default()
    };
    let windowed = paths
        .iter()
        .filter(|p| embed_core::decode_file(p, &windows).unwrap().is_window())
        .count();
    assert!(windowed >= 8, "{windowed} of 10 decoded as windows");
    let (want, good, bad) = reference(&m, &paths);
    assert_eq!((good.len(), bad.len()), (10, 0));
    let host = extract(Model::Host(&m), &paths, &opts(2, 3)).unwrap();
    assert_eq!(host.embeddings, want);
    let dev = extract(
        Model::Torch(&m),
        &paths,
        &ExtractOptions {
            transfer: Transfer::Device,
            ..opts(2, 4)
        },
    )
    .unwrap();
    assert_eq!(dev.embeddings, want);
}

#[test]
fn device_resize_is_within_two_levels_of_pil() {
    let sizes = [
        (500, 400),
        (333, 777),
        (224, 300),
        (1000, 230),
        (90, 60),
        (256, 256),
    ];
    for spec in [PreprocessSpec::clip(), PreprocessSpec::dinov2()] {
        let (mut equal, mut total, mut worst) = (0usize, 0usize, 0i32);
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let img = photo(w, h, i as u64);
            let exact = embed_core::preprocess::resize_crop(&spec, &img).unwrap();
            let t = Tensor::from_slice(img.as_raw())
                .view([h as i64, w as i64, 3])
                .permute([2i64, 0, 1])
                .unsqueeze(0);
            let out = resize_crop_on_device(&t, &spec).unwrap();
            let (oh, ow) = spec.output_size(w, h);
            assert_eq!(out.size(), vec![1, 3, oh as i64, ow as i64], "{w}×{h}");
            let mut got = vec![0f32; 3 * oh * ow];
            out.contiguous().copy_data(&mut got, 3 * oh * ow);
            for c in 0..3 {
                for p in 0..oh * ow {
                    let (d, e) = (got[c * oh * ow + p], exact[p * 3 + c]);
                    assert_eq!(d, d.round(), "integer values");
                    let diff = (d as i32 - i32::from(e)).abs();
                    worst = worst.max(diff);
                    equal += usize::from(diff == 0);
                    total += 1;
                }
            }
        }
        let share = equal as f64 / total as f64;
        println!("device resize: {share:.4} of values equal to PIL's, worst {worst} levels");
        // Measured: 84 % equal, at most one level off for CLIP and two for DINOv2 (PIL rounds
        // to 8 bits between its two passes; libtorch does not).
        assert!(worst <= 2, "worst difference {worst} levels");
        assert!(share >= 0.8, "only {share:.4} of values equal");
    }
}

#[test]
fn device_resize_pipeline_matches_host_within_tolerance_and_falls_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 11, 6);
    let paths = list_images(dir.path()).unwrap();
    let m = TorchGrid(model(), std::time::Duration::ZERO);
    // A CPU model gets the CPU's default batch (CUDA's, 256, needs a GPU to check).
    assert_eq!(Model::Torch(&m).default_batch_size(), 32);
    assert_eq!(Model::Host(&m).default_batch_size(), 32);
    let host = extract(Model::Host(&m), &paths, &opts(2, 4)).unwrap();
    let device = |max_pixels: usize, batch: usize| {
        extract(
            Model::Torch(&m),
            &paths,
            &ExtractOptions {
                transfer: Transfer::Device,
                resize_on: ResizeOn::Device,
                device_resize_max_pixels: max_pixels,
                ..opts(3, batch)
            },
        )
        .unwrap()
    };
    for batch in [1, 4] {
        let dev = device(0, batch);
        assert_eq!(dev.ids, host.ids);
        assert_eq!(dev.skipped, host.skipped);
        // Grid means of normalised pixels: a level (1/255/std ≈ 0.015) at most per pixel.
        let worst = (&dev.embeddings - &host.embeddings)
            .iter()
            .fold(0f32, |a, &d| a.max(d.abs()));
        assert!(worst < 0.03, "batch {batch}: worst difference {worst}");
        assert_ne!(dev.embeddings, host.embeddings, "the device resize ran");
    }
    // Every image over the pixel limit: all resized on the host, bit-exact.
    let fallback = device(1, 4);
    assert_eq!(fallback.embeddings, host.embeddings);
}

/// The timing figures add up, on both paths: set-up ≤ first batch ≤ wall; every model call is
/// counted in the model time; time in model calls and time waiting for batches never overlap.
#[test]
fn extraction_stats_add_up() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 13, 9);
    let paths = list_images(dir.path()).unwrap();
    // Batches of 5: each of the 4 holds at least one good image (the 4 bad files sort first).
    let delay = std::time::Duration::from_millis(30);
    let m = TorchGrid(model(), delay);
    for (name, model, transfer) in [
        ("host", Model::Host(&m), Transfer::Host),
        ("device", Model::Torch(&m), Transfer::Device),
    ] {
        let out = extract(
            model,
            &paths,
            &ExtractOptions {
                transfer,
                ..opts(2, 5)
            },
        )
        .unwrap();
        let s = out.stats;
        assert_eq!(s.processed, paths.len(), "{name}");
        assert!(
            s.setup <= s.first_batch && s.first_batch < s.last_batch && s.last_batch <= s.wall,
            "{name}: {s:?}"
        );
        // Model-bound: batches reach the model thread one model call apart.
        assert!(s.last_batch - s.first_batch >= delay * 3, "{name}: {s:?}");
        assert!(s.model_time >= delay * 4, "{name}: {s:?}");
        assert!(s.model_time + s.wait_time <= s.wall, "{name}: {s:?}");
    }
}

/// `decode_only` runs the workers of both paths without calling the model, and keeps the
/// failure limits.
#[test]
fn decode_only_skips_the_model() {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path(), 13, 10);
    let paths = list_images(dir.path()).unwrap();
    // A model this slow would take 4 × 10 s: the test only finishes if it is never called.
    let m = TorchGrid(model(), std::time::Duration::from_secs(10));
    for (name, model, transfer, resize_on) in [
        ("host", Model::Host(&m), Transfer::Host, ResizeOn::Host),
        ("device", Model::Torch(&m), Transfer::Device, ResizeOn::Host),
        (
            "device resize",
            Model::Torch(&m),
            Transfer::Device,
            ResizeOn::Device,
        ),
    ] {
        let options = ExtractOptions {
            transfer,
            resize_on,
            ..opts(2, 5)
        };
        let s = decode_only(model, &paths, &options).unwrap();
        assert_eq!(s.processed, paths.len(), "{name}");
        assert!(s.model_time.is_zero(), "{name}: {s:?}");
        assert!(s.wall < std::time::Duration::from_secs(5), "{name}: {s:?}");
        let strict = ExtractOptions {
            strict: true,
            ..options
        };
        let err = decode_only(model, &paths, &strict).unwrap_err();
        assert!(matches!(err, PipelineError::Strict { .. }), "{name}: {err}");
    }
}
