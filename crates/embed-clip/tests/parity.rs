//! CLIP against `transformers` on random-weight checkpoints generated at test time by
//! `tests/python/encoders_fixtures.py` (tiny configs exercising every switch, and the full-size
//! ViT-B/32 architecture).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use embed_clip::{ClipEmbedder, ClipVisionConfig, ClipVisionModel};
use embed_core::Embedder;
use embed_torch::fixtures::{check_parity, compare, generate, read_npy};
use embed_torch::{
    Checkpoint, Precision, TorchEmbedder, TorchOptions, array4_to_tensor, tensor_to_array2,
};
use ndarray::{ArrayD, Axis, Ix4, s};
use tch::{Device, Tensor};

fn to_array(t: &Tensor) -> ArrayD<f32> {
    let t = t
        .to_kind(tch::Kind::Float)
        .to_device(Device::Cpu)
        .contiguous();
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let mut data = vec![0f32; t.numel()];
    let n = data.len();
    t.copy_data(&mut data, n);
    ArrayD::from_shape_vec(shape, data).unwrap()
}

fn load_model(dir: &Path, options: TorchOptions) -> ClipVisionModel {
    let config = ClipVisionConfig::from_file(&dir.join("config.json")).unwrap();
    let mut ckpt = Checkpoint::open_dir(dir, options).unwrap();
    let model = ClipVisionModel::new(&config, &mut ckpt).unwrap();
    ckpt.finish().unwrap();
    model
}

fn case_inputs(dir: &Path) -> Vec<String> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn check_case(dir: &Path) {
    let model = load_model(dir, TorchOptions::default());
    for input in case_inputs(dir) {
        let pixels = read_npy(&dir.join(format!("{input}.pixel_values.npy"))).unwrap();
        let pixels = pixels.into_dimensionality::<Ix4>().unwrap();
        let out = model
            .forward(&array4_to_tensor(pixels.view(), Device::Cpu).unwrap())
            .unwrap();
        for (name, got) in [
            ("embeds", &out.image_embeds),
            ("last_hidden_state", &out.last_hidden_state),
            ("pooler_output", &out.pooler_output),
        ] {
            let want = read_npy(&dir.join(format!("{input}.{name}.npy"))).unwrap();
            let what = format!(
                "{}/{input}/{name}",
                dir.file_name().unwrap().to_string_lossy()
            );
            println!("{}", check_parity(&what, &to_array(got), &want).unwrap());
        }
    }
}

#[test]
fn tiny_configs_match_transformers() {
    let root = generate("clip", false).unwrap();
    let mut n = 0;
    for case in ["tiny_quick_p8", "tiny_gelu_p7_vision", "tiny_p16_clipmodel"] {
        check_case(&root.join(case));
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn embedder_matches_and_reports_dim() {
    let root = generate("clip", false).unwrap();
    let dir = root.join("tiny_gelu_p7_vision");
    let clip = ClipEmbedder::from_dir(&dir, "tiny", TorchOptions::default()).unwrap();
    assert_eq!(clip.dim(), 24);
    assert_eq!(clip.model_id(), "tiny");
    let pixels = read_npy(&dir.join("random3.pixel_values.npy"))
        .unwrap()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let rows = clip.embed_batch(pixels.view()).unwrap();
    let want = read_npy(&dir.join("random3.embeds.npy")).unwrap();
    println!(
        "{}",
        check_parity("embed_batch", &rows.into_dyn(), &want).unwrap()
    );
    // Wrong input size is an error, as in transformers.
    let bad = ndarray::Array4::<f32>::zeros((1, 3, 32, 32));
    let err = clip.embed_batch(bad.view()).unwrap_err().to_string();
    assert!(err.contains("doesn't match model"), "{err}");
}

#[test]
fn f16_checkpoint_loads_as_f32() {
    // The file stores f16; the model was asked for f32 and must hold f32 weights (tch's
    // VarStore::load would silently adopt f16).
    let root = generate("clip", false).unwrap();
    let model = load_model(&root.join("tiny_quick_p8_f16"), TorchOptions::default());
    assert_eq!(model.kind(), tch::Kind::Float);
    let pixels = read_npy(&root.join("tiny_quick_p8/random3.pixel_values.npy"))
        .unwrap()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let out = model
        .forward(&array4_to_tensor(pixels.view(), Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(out.image_embeds.kind(), tch::Kind::Float);
    let want = read_npy(&root.join("tiny_quick_p8/random3.embeds.npy")).unwrap();
    let (cos, _, _) = compare(&to_array(&out.image_embeds), &want).unwrap();
    assert!(cos > 0.999, "f16-rounded weights: cosine {cos}");
}

#[test]
fn half_precisions_track_f32() {
    let root = generate("clip", false).unwrap();
    let dir = root.join("tiny_quick_p8");
    let pixels = read_npy(&dir.join("random3.pixel_values.npy"))
        .unwrap()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let f32_rows = {
        let clip = ClipEmbedder::from_dir(&dir, "t", TorchOptions::default()).unwrap();
        clip.embed_batch(pixels.view()).unwrap()
    };
    for precision in [Precision::Bf16, Precision::F16] {
        let options = TorchOptions {
            device: Device::Cpu,
            precision,
        };
        let clip = ClipEmbedder::from_dir(&dir, "t", options).unwrap();
        assert_eq!(TorchEmbedder::kind(&clip), precision.kind());
        let rows = clip.embed_batch(pixels.view()).unwrap();
        for i in 0..rows.nrows() {
            let cos = embed_core::cosine_similarity(
                rows.row(i).as_slice().unwrap(),
                f32_rows.row(i).as_slice().unwrap(),
            )
            .unwrap();
            println!("{precision} vs f32, image {i}: cosine {cos:.6}");
            assert!(cos >= 0.999, "{precision}: cosine {cos}");
        }
    }
}

#[test]
fn full_size_vit_b32_matches_and_is_batch_invariant() {
    let root = generate("clip", true).unwrap();
    let dir = root.join("full_vit_b32");
    let config = ClipVisionConfig::from_file(&dir.join("config.json")).unwrap();
    assert_eq!(config, ClipVisionConfig::vit_base_patch32());
    check_case(&dir);
    // One image alone vs inside the batch of seven.
    let clip = ClipEmbedder::from_dir(&dir, "full", TorchOptions::default()).unwrap();
    let pixels = read_npy(&dir.join("batch7.pixel_values.npy"))
        .unwrap()
        .into_dimensionality::<Ix4>()
        .unwrap();
    let batch = clip.embed_batch(pixels.view()).unwrap();
    for i in [0usize, 4] {
        let alone = clip
            .embed_batch(pixels.slice(s![i..i + 1, .., .., ..]))
            .unwrap();
        let diff = (&alone.index_axis(Axis(0), 0) - &batch.index_axis(Axis(0), i))
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        let scale = batch
            .index_axis(Axis(0), i)
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        println!("image {i}: alone vs batch of 7: max |diff| {diff:.3e} (row max {scale:.3e})");
        assert!(diff <= 1e-5, "batch dependence {diff}");
    }
    // The device path gives the same rows.
    let t = array4_to_tensor(pixels.view(), Device::Cpu).unwrap();
    let via_tensor = tensor_to_array2(&clip.embed_tensor(&t).unwrap()).unwrap();
    assert_eq!(via_tensor, batch);
}
