//! DINOv2 against `transformers` on random-weight checkpoints generated at test time by
//! `tests/python/encoders_fixtures.py` (tiny configs exercising every switch, including
//! position-embedding interpolation to non-square grids, SwiGLU and registers; and the
//! full-size base architecture with its 518-pixel grid at 224).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use embed_core::Embedder;
use embed_dinov2::{Dinov2Config, Dinov2Embedder, Dinov2Model, Pooling};
use embed_torch::fixtures::{check_parity, generate, read_npy};
use embed_torch::{
    Checkpoint, Precision, TorchEmbedder, TorchOptions, array4_to_tensor, tensor_to_array2,
};
use ndarray::{Array4, ArrayD, Axis, Ix4, s};
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

fn pixels(dir: &Path, input: &str) -> Array4<f32> {
    read_npy(&dir.join(format!("{input}.pixel_values.npy")))
        .unwrap()
        .into_dimensionality::<Ix4>()
        .unwrap()
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

fn check_case(dir: &Path) -> usize {
    let config = Dinov2Config::from_file(&dir.join("config.json")).unwrap();
    let mut ckpt = Checkpoint::open_dir(dir, TorchOptions::default()).unwrap();
    let model = Dinov2Model::new(&config, &mut ckpt).unwrap();
    ckpt.finish().unwrap();
    let registers = config.num_register_tokens;
    let mut checked = 0;
    for input in case_inputs(dir) {
        let x = array4_to_tensor(pixels(dir, &input).view(), Device::Cpu).unwrap();
        let out = model.forward(&x).unwrap();
        let case = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut outputs = vec![
            (
                "last_hidden_state".to_string(),
                out.last_hidden_state.shallow_clone(),
            ),
            (
                "pooler_output".to_string(),
                out.pooler_output.shallow_clone(),
            ),
        ];
        for pooling in Pooling::ALL {
            let name = pooling.as_str().replace('-', "_");
            outputs.push((
                name,
                pooling.apply(&out.last_hidden_state, registers).unwrap(),
            ));
        }
        for (name, got) in outputs {
            let want = read_npy(&dir.join(format!("{input}.{name}.npy"))).unwrap();
            println!(
                "{}",
                check_parity(&format!("{case}/{input}/{name}"), &to_array(&got), &want).unwrap()
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn tiny_configs_match_transformers() {
    let root = generate("dinov2", false).unwrap();
    let mut checked = 0;
    for case in ["tiny_gelu_ls", "tiny_swiglu", "tiny_registers"] {
        checked += check_case(&root.join(case));
    }
    // 3 + 2 + 3 inputs, 6 outputs each.
    assert_eq!(checked, 8 * 6);
}

#[test]
fn embedder_pooling_dims_and_ids() {
    let root = generate("dinov2", false).unwrap();
    let dir = root.join("tiny_registers");
    for pooling in Pooling::ALL {
        let dino =
            Dinov2Embedder::from_dir(&dir, "org/tiny", pooling, TorchOptions::default()).unwrap();
        assert_eq!(dino.dim(), pooling.dim(32));
        let expected_id = if pooling == Pooling::Mean {
            "org/tiny".to_string()
        } else {
            format!("org/tiny#pooling={pooling}")
        };
        assert_eq!(dino.model_id(), expected_id);
        let x = pixels(&dir, "up48x40");
        let rows = dino.embed_batch(x.view()).unwrap();
        let want = read_npy(&dir.join(format!(
            "up48x40.{}.npy",
            pooling.as_str().replace('-', "_")
        )))
        .unwrap();
        println!(
            "{}",
            check_parity(&format!("embed_batch {pooling}"), &rows.into_dyn(), &want).unwrap()
        );
    }
    assert_eq!("patch_mean".parse::<Pooling>().unwrap(), Pooling::PatchMean);
    assert!("max".parse::<Pooling>().is_err());
}

#[test]
fn half_precisions_track_f32() {
    let root = generate("dinov2", false).unwrap();
    for case in ["tiny_gelu_ls", "tiny_swiglu"] {
        let dir = root.join(case);
        let input = &case_inputs(&dir)[1];
        let x = pixels(&dir, input);
        let reference = Dinov2Embedder::from_dir(&dir, "t", Pooling::Mean, TorchOptions::default())
            .unwrap()
            .embed_batch(x.view())
            .unwrap();
        for precision in [Precision::Bf16, Precision::F16] {
            let options = TorchOptions {
                device: Device::Cpu,
                precision,
            };
            let dino = Dinov2Embedder::from_dir(&dir, "t", Pooling::Mean, options).unwrap();
            let rows = dino.embed_batch(x.view()).unwrap();
            for i in 0..rows.nrows() {
                let cos = embed_core::cosine_similarity(
                    rows.row(i).as_slice().unwrap(),
                    reference.row(i).as_slice().unwrap(),
                )
                .unwrap();
                println!("{case}/{input} {precision} vs f32, image {i}: cosine {cos:.6}");
                assert!(cos >= 0.999, "{precision}: cosine {cos}");
            }
        }
    }
}

#[test]
fn full_size_base_matches_and_is_batch_invariant() {
    let root = generate("dinov2", true).unwrap();
    let dir = root.join("full_base");
    let config = Dinov2Config::from_file(&dir.join("config.json")).unwrap();
    assert_eq!(config, Dinov2Config::base());
    assert_eq!(check_case(&dir), 6);
    let dino =
        Dinov2Embedder::from_dir(&dir, "full", Pooling::Mean, TorchOptions::default()).unwrap();
    let x = pixels(&dir, "batch7");
    let batch = dino.embed_batch(x.view()).unwrap();
    for i in [0usize, 5] {
        let alone = dino.embed_batch(x.slice(s![i..i + 1, .., .., ..])).unwrap();
        let diff = (&alone.index_axis(Axis(0), 0) - &batch.index_axis(Axis(0), i))
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        println!("image {i}: alone vs batch of 7: max |diff| {diff:.3e}");
        assert!(diff <= 1e-5, "batch dependence {diff}");
    }
    let t = array4_to_tensor(x.view(), Device::Cpu).unwrap();
    assert_eq!(
        tensor_to_array2(&dino.embed_tensor(&t).unwrap()).unwrap(),
        batch
    );
}
