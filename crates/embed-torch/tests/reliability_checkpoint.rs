//! Reliability of checkpoint loading on hand-made safetensors files:
//! framing errors, every truncation and header bit flip, offsets that overlap or leave the file,
//! shapes and dtypes that do not match, NaN/Inf in every float dtype, sharded-checkpoint
//! indexes that lie. Every case is a typed error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use embed_torch::{Checkpoint, Error, Precision, TorchOptions};
use tch::Device;

/// A scratch folder under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "embed-torch-reliability-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path_for(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cpu(precision: Precision) -> TorchOptions {
    TorchOptions {
        device: Device::Cpu,
        precision,
    }
}

/// A safetensors file from a raw JSON header and raw data.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A valid file with `w` = [2, 2] F32 and `b` = [2] F32.
fn valid() -> Vec<u8> {
    let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 0.5, -0.5]);
    file(
        r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
        &data,
    )
}

fn open(path: &Path) -> Result<Checkpoint, Error> {
    Checkpoint::open_files(&[path.to_path_buf()], cpu(Precision::F32))
}

/// Opens and, when that works, takes every tensor it lists with its stored shape and finishes.
fn open_and_take_all(path: &Path) -> Result<(), Error> {
    let mut ckpt = open(path)?;
    let keys: Vec<String> = ckpt.keys().map(str::to_string).collect();
    for key in keys {
        let shape = ckpt.shape(&key).unwrap();
        let _ = ckpt.tensor(&key, &shape)?;
    }
    ckpt.finish()
}

#[test]
fn the_valid_file_loads() {
    let s = Scratch::new("valid");
    let p = s.write("model.safetensors", &valid());
    let mut ckpt = open(&p).unwrap();
    let w = ckpt.tensor("w", &[2, 2]).unwrap();
    assert_eq!(
        Vec::<f32>::try_from(w.flatten(0, -1)).unwrap(),
        [1.0, 2.0, 3.0, 4.0]
    );
    let _ = ckpt.tensor("b", &[2]).unwrap();
    ckpt.finish().unwrap();
}

#[test]
fn framing_errors_are_typed() {
    let s = Scratch::new("framing");
    let good = valid();
    let data24 = f32_bytes(&[0.0; 6]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("3 bytes", vec![1, 0, 0]),
        ("7 bytes", good[..7].to_vec()),
        ("only the length", good[..8].to_vec()),
        ("header length past the end", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&(good.len() as u64).to_le_bytes());
            b
        }),
        ("header length u64::MAX", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("header length 2^60", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
            b
        }),
        ("invalid JSON", file(r#"{"w":{"dtype":"F32","#, &data24)),
        ("JSON not an object", file("[1, 2, 3]", &data24)),
        ("header not UTF-8", {
            let mut b = file(r#"{"w":{}}"#, &[]);
            b[10] = 0xff; // the key's only byte
            b
        }),
        (
            "overlapping offsets",
            file(
                r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}"#,
                &data24,
            ),
        ),
        (
            "gap between tensors",
            file(
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
                &data24,
            ),
        ),
        (
            "offsets past the data",
            file(
                r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}"#,
                &data24,
            ),
        ),
        (
            "end before start",
            file(
                r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[24,0]}}"#,
                &data24,
            ),
        ),
        (
            "shape x dtype larger than the byte range",
            file(
                r#"{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}"#,
                &data24,
            ),
        ),
        (
            "shape x dtype smaller than the byte range",
            file(
                r#"{"w":{"dtype":"F16","shape":[6],"data_offsets":[0,24]}}"#,
                &data24,
            ),
        ),
        (
            "shape overflowing usize",
            file(
                r#"{"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,24]}}"#,
                &data24,
            ),
        ),
        (
            "unknown dtype",
            file(
                r#"{"w":{"dtype":"F33","shape":[6],"data_offsets":[0,24]}}"#,
                &data24,
            ),
        ),
        ("trailing bytes", [good.clone(), vec![0u8; 4]].concat()),
        ("data truncated", good[..good.len() - 1].to_vec()),
    ];
    for (name, bytes) in cases {
        let p = s.write("case.safetensors", &bytes);
        match open(&p) {
            Err(Error::Safetensors { path, message }) => {
                assert_eq!(path, p, "{name}");
                eprintln!("{name}: {message}");
            }
            other => panic!("{name}: expected a safetensors error, got {other:?}"),
        }
    }
}

#[test]
fn every_truncation_and_header_bit_flip_is_handled() {
    let s = Scratch::new("damage");
    let good = valid();
    let p = s.path_for("case.safetensors");
    for len in 0..good.len() {
        std::fs::write(&p, &good[..len]).unwrap();
        assert!(
            matches!(open(&p), Err(Error::Safetensors { .. })),
            "truncation to {len} bytes"
        );
    }
    // Flipped bits in the length and the JSON header: an error, or a file that still parses
    // and then loads or fails cleanly tensor by tensor (a flipped digit can make another valid
    // file). Data bits are not flipped: those are just other weights.
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let (mut ok, mut refused) = (0, 0);
    for pos in 0..header_end {
        for bit in 0..8 {
            let mut b = good.clone();
            b[pos] ^= 1 << bit;
            std::fs::write(&p, &b).unwrap();
            match open_and_take_all(&p) {
                Ok(()) => ok += 1,
                Err(
                    Error::Safetensors { .. }
                    | Error::ShapeMismatch { .. }
                    | Error::Dtype { .. }
                    | Error::NonFinite { .. },
                ) => refused += 1,
                Err(e) => panic!("byte {pos} bit {bit}: unexpected error kind {e:?}"),
            }
        }
    }
    eprintln!(
        "{} header bit flips: {ok} still valid, {refused} refused",
        header_end * 8
    );
    assert!(refused > 0);
}

#[test]
fn non_finite_weights_are_refused_in_every_float_dtype() {
    let s = Scratch::new("nonfinite");
    let f16_inf = [0x00u8, 0x7c]; // +Inf
    let f16_nan = [0x00u8, 0x7e];
    let bf16_ninf = [0x80u8, 0xff]; // -Inf
    let f64_nan = f64::NAN.to_le_bytes();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("F32 +Inf", "F32", f32_bytes(&[0.0, f32::INFINITY])),
        ("F32 -Inf", "F32", f32_bytes(&[f32::NEG_INFINITY, 0.0])),
        ("F32 NaN", "F32", f32_bytes(&[0.0, f32::NAN])),
        ("F16 +Inf", "F16", [[0u8, 0].as_slice(), &f16_inf].concat()),
        ("F16 NaN", "F16", [f16_nan.as_slice(), &[0, 0]].concat()),
        (
            "BF16 -Inf",
            "BF16",
            [[0u8, 0].as_slice(), &bf16_ninf].concat(),
        ),
        (
            "F64 NaN",
            "F64",
            [f64_nan.as_slice(), &0f64.to_le_bytes()].concat(),
        ),
    ];
    for (name, dtype, data) in cases {
        let header = format!(
            r#"{{"w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,{}]}}}}"#,
            data.len()
        );
        let p = s.write("model.safetensors", &file(&header, &data));
        for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
            let mut ckpt =
                Checkpoint::open_files(std::slice::from_ref(&p), cpu(precision)).unwrap();
            match ckpt.tensor("w", &[2]) {
                Err(Error::NonFinite { key, .. }) => assert_eq!(key, "w"),
                other => panic!("{name} as {precision:?}: {other:?}"),
            }
        }
    }
    // A finite F64 beyond the F32 range is caught after conversion.
    let data = [1e300f64.to_le_bytes(), 1.0f64.to_le_bytes()].concat();
    let header = r#"{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#;
    let p = s.write("model.safetensors", &file(header, &data));
    let mut ckpt = open(&p).unwrap();
    let e = ckpt.tensor("w", &[2]).unwrap_err();
    assert!(
        matches!(&e, Error::NonFinite { detail, .. } if detail.contains("conversion")),
        "{e:?}"
    );
}

#[test]
fn shape_dtype_missing_and_unexpected_are_typed() {
    let s = Scratch::new("keys");
    let p = s.write("model.safetensors", &valid());
    let mut ckpt = open(&p).unwrap();
    // Broadcastable shapes are refused: [2, 2] is not [1, 2, 2], [2] is not [1, 2] or [2, 1].
    for shape in [&[1, 2, 2][..], &[4], &[2, 1, 2], &[2, 2, 1]] {
        assert!(
            matches!(ckpt.tensor("w", shape), Err(Error::ShapeMismatch { .. })),
            "{shape:?}"
        );
    }
    for shape in [&[1, 2][..], &[2, 1], &[1]] {
        assert!(matches!(
            ckpt.tensor("b", shape),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    assert!(matches!(
        ckpt.tensor("nope", &[2]),
        Err(Error::MissingTensor { .. })
    ));
    assert!(matches!(
        ckpt.skip("nope", None),
        Err(Error::MissingTensor { .. })
    ));
    let _ = ckpt.tensor("w", &[2, 2]).unwrap();
    match ckpt.finish() {
        Err(Error::UnexpectedTensors { keys }) => assert_eq!(keys, ["b"]),
        other => panic!("{other:?}"),
    }
    for dtype in ["I64", "I32", "U8", "BOOL", "I8"] {
        let size = match dtype {
            "I64" => 8,
            "I32" => 4,
            _ => 1,
        };
        let header = format!(
            r#"{{"w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,{}]}}}}"#,
            2 * size
        );
        let p = s.write("model.safetensors", &file(&header, &vec![0u8; 2 * size]));
        let mut ckpt = open(&p).unwrap();
        match ckpt.tensor("w", &[2]) {
            Err(Error::Dtype { key, dtype: found }) => {
                assert_eq!(key, "w");
                assert!(found.contains(dtype), "{found} vs {dtype}");
            }
            other => panic!("{dtype}: {other:?}"),
        }
    }
}

#[test]
fn sharded_indexes_that_lie_are_refused() {
    let s = Scratch::new("shards");
    let dir = &s.0;
    // No checkpoint at all; then only a pytorch_model.bin: NotFound with a conversion hint.
    match Checkpoint::open_dir(dir, cpu(Precision::F32)) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    s.write("pytorch_model.bin", b"not used");
    let e = Checkpoint::open_dir(dir, cpu(Precision::F32)).unwrap_err();
    assert!(e.to_string().contains("safetensors"), "{e}");

    let index = |json: &str| s.write("model.safetensors.index.json", json.as_bytes());
    let shard = file(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &f32_bytes(&[1.0, 2.0]),
    );
    s.write("a.safetensors", &shard);
    s.write("b.safetensors", &shard);
    for (name, json) in [
        ("invalid JSON", "{\"weight_map\": "),
        ("no weight_map", r#"{"metadata": {}}"#),
        ("weight_map not an object", r#"{"weight_map": []}"#),
        ("file name not a string", r#"{"weight_map": {"w": 3}}"#),
        (
            "path traversal",
            r#"{"weight_map": {"w": "../a.safetensors"}}"#,
        ),
        ("parent dir", r#"{"weight_map": {"w": ".."}}"#),
    ] {
        index(json);
        match Checkpoint::open_dir(dir, cpu(Precision::F32)) {
            Err(Error::Config { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    index(r#"{"weight_map": {"w": "missing.safetensors"}}"#);
    assert!(matches!(
        Checkpoint::open_dir(dir, cpu(Precision::F32)),
        Err(Error::Io { .. })
    ));
    // The same key in two shards.
    index(r#"{"weight_map": {"w": "a.safetensors", "v": "b.safetensors"}}"#);
    match Checkpoint::open_dir(dir, cpu(Precision::F32)) {
        Err(Error::Safetensors { message, .. }) => assert!(message.contains("`w`"), "{message}"),
        other => panic!("{other:?}"),
    }
    // A valid index loads.
    index(r#"{"weight_map": {"w": "a.safetensors"}}"#);
    let mut ckpt = Checkpoint::open_dir(dir, cpu(Precision::F32)).unwrap();
    let _ = ckpt.tensor("w", &[2]).unwrap();
    ckpt.finish().unwrap();
}
