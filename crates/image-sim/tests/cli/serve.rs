//! `image-sim serve`: a collection embedded with the tiny CLIP checkpoint, served by the command
//! (through `image-sim-torch`), queried over loopback, stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use embed_collection::{CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec};

use crate::{BIN, cli, make_images, ok, tiny_clip};

fn post(addr: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let json = reply.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(json).unwrap())
}

#[test]
fn serve_answers_knn_queries_with_the_collections_model_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_clip(&dir.path().join("tiny-clip"));
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    make_images(&images, 6);
    let npy = dir.path().join("e.npy");
    let w = weights.to_str().unwrap();
    ok(&cli(&[
        "embed",
        "--model",
        "clip",
        "--weights",
        w,
        "--device",
        "cpu",
        "--images",
        images.to_str().unwrap(),
        "--out",
        npy.to_str().unwrap(),
    ]));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("e.meta.json")).unwrap())
            .unwrap();
    let v = embed_core::npy::read_f32_file(&npy).unwrap();
    let ids: Vec<String> = std::fs::read_to_string(dir.path().join("e.ids.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let coll = dir.path().join("tiny");
    let info = CollectionInfo {
        model_id: meta["model_id"].as_str().unwrap().to_string(),
        weights_digest: "sha256:00".into(),
        preprocessing: serde_json::json!("clip"),
        dim: v.shape()[1],
        metric: vecindex::Metric::InnerProduct,
        dtype: Dtype::F32,
        index: IndexSpec::Flat,
        source: None,
        tool: "test".into(),
    };
    let rows: Vec<ImageRow> = ids
        .iter()
        .map(|id| ImageRow {
            image_path: format!("{id}.png"),
            id: id.clone(),
            width: 1,
            height: 1,
        })
        .collect();
    let mut writer = CollectionWriter::create(&coll, info).unwrap();
    writer.push_batch(&rows, v.as_slice().unwrap()).unwrap();
    writer.finish().unwrap();

    let mut child = Command::new(BIN)
        .args([
            "serve",
            coll.to_str().unwrap(),
            "--port",
            "0",
            "--model",
            "clip",
            "--weights",
            w,
            "--device",
            "cpu",
            "--images",
            images.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("http://") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "serve exited: {:?}",
            child.wait()
        );
    }
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    use base64::Engine;
    let third = std::fs::read(images.join(format!("{}.png", ids[3]))).unwrap();
    let body = serde_json::json!({
        "image": base64::engine::general_purpose::STANDARD.encode(third),
        "modality": "image", "num_images": 3, "indice_name": "tiny",
    });
    let (status, hits) = post(&addr, "/knn-service", &body.to_string());
    assert_eq!(status, 200, "{hits}");
    assert_eq!(hits[0]["id"], serde_json::json!(3));
    assert!(
        (hits[0]["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-4,
        "{hits}"
    );
    let (status, e) = post(
        &addr,
        "/knn-service",
        r#"{"text": "a cat", "num_images": 3}"#,
    );
    assert_eq!(status, 400, "{e}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
