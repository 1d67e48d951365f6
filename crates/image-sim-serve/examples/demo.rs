//! A demo service with no model weights: writes 12 small pictures, a query that copies one of
//! them, a DISC21-style ground truth, and two collections of them (`clip`: flat index, `dino`:
//! HNSW) embedded with the host test model, then serves them until SIGTERM or Ctrl-C. The
//! browser test runs it.
//!
//! ```sh
//! cargo run -p image-sim-serve --example demo -- --dir /tmp/demo --port 1234
//! ```
//! Prints `READY http://ADDR` on standard output once it answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use embed_collection::IndexSpec;
use image_sim_serve::{ServeConfig, Server, read_ground_truth};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = PathBuf::from("target/browser/demo");
    let mut port = 0u16;
    let mut token = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--dir", Some(v)) => dir = v.into(),
            ("--port", Some(v)) => port = v.parse()?,
            ("--token", Some(v)) => token = Some(v.clone()),
            _ => return Err("usage: demo [--dir DIR] [--port PORT] [--token T]".into()),
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let root = dir.join("images");
    let paths = common::images(&root, 12);
    let clip = dir.join("clip");
    let dino = dir.join("dino");
    common::collection(&clip, &root, &paths, 2, IndexSpec::Flat);
    common::collection(&dino, &root, &paths, 3, IndexSpec::hnsw_default());
    let gt = dir.join("ground_truth.csv");
    std::fs::write(&gt, "query_id,reference_id\nQ00000,R000003\n")?;
    let config = ServeConfig {
        addr: ([127, 0, 0, 1], port).into(),
        ground_truth: read_ground_truth(&gt)?,
        add_token: token,
        ..ServeConfig::default()
    };
    let specs = vec![
        common::spec(&clip, Some(&root), 2, Duration::ZERO),
        common::spec(&dino, Some(&root), 3, Duration::ZERO),
    ];
    let server = Server::start(config, specs)?;
    println!("READY http://{}", server.local_addr());
    server.wait()?;
    Ok(())
}
