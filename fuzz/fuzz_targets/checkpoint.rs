//! Checkpoint loading: any bytes as `model.safetensors` give a typed error, or a checkpoint
//! whose every tensor can be taken (or refused with a typed error) at its stored shape.
#![no_main]

use embed_torch::{Checkpoint, Precision, TorchOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fuzz-ckpt-{}.safetensors", std::process::id()));
    std::fs::write(&path, data).expect("write the input");
    let options = TorchOptions {
        device: tch::Device::Cpu,
        precision: Precision::F32,
    };
    let Ok(mut ckpt) = Checkpoint::open_files(&[path], options) else {
        return;
    };
    let keys: Vec<String> = ckpt.keys().map(str::to_string).collect();
    for key in keys {
        let shape = ckpt.shape(&key).expect("listed key");
        // Cap the work per input: huge (but valid) tensors are not what is being fuzzed.
        if shape.iter().product::<i64>() > 1 << 20 {
            ckpt.skip(&key, None).expect("listed key");
            continue;
        }
        let _ = ckpt.tensor(&key, &shape);
    }
    let _ = ckpt.finish();
});
