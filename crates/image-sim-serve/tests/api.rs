//! clip-retrieval's API and the service's own endpoints over loopback, with the host test model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http::{get, post_json, request};
use common::{Fixture, b64, config};
use serde_json::{Value, json};

fn rows(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn indices_list_names_the_collection_folders() {
    let f = Fixture::new();
    let s = f.start(config());
    let r = get(s.local_addr(), "/indices-list");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!(["clip", "dino"]));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn knn_service_finds_the_posted_image_first_with_clip_retrievals_fields() {
    let f = Fixture::new();
    let s = f.start(config());
    for (name, expect_row) in [("clip", 5u64), ("dino", 5)] {
        let image = std::fs::read(&f.paths[5]).unwrap();
        // As clip-front sends it: no JSON content type, nulls and its flags.
        let body = json!({
            "text": null, "image": b64(&image), "image_url": null, "embedding_input": null,
            "modality": "image", "num_images": 4, "indice_name": name, "num_result_ids": 6,
            "use_mclip": false, "deduplicate": true, "use_safety_model": false,
            "use_violence_detector": false, "aesthetic_score": "", "aesthetic_weight": "0.5",
        });
        let r = request(
            s.local_addr(),
            "POST",
            "/knn-service",
            &[("Content-Type", "text/plain;charset=UTF-8")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 6, "num_result_ids results");
        assert_eq!(list[0]["id"], json!(expect_row));
        assert!((list[0]["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-4);
        let sims: Vec<f64> = list
            .iter()
            .map(|r| r["similarity"].as_f64().unwrap())
            .collect();
        assert!(
            sims.windows(2).all(|w| w[0] >= w[1]),
            "best first: {sims:?}"
        );
        assert_eq!(list[0]["image_path"], json!("refs/R000005.png"));
        assert_eq!(list[0]["caption"], json!("R000005"));
        let url = list[0]["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!(
                "http://{}/api/collections/{name}/rows/5/image",
                s.local_addr()
            )),
            "{url}"
        );
        // Metadata only for the first num_images, as clip_back does.
        assert!(list[3].get("image_path").is_some());
        assert!(list[4].get("image_path").is_none());
        assert!(list[4].get("similarity").is_some());
    }
}

#[test]
fn knn_service_takes_an_embedding_and_metadata_maps_ids() {
    let f = Fixture::new();
    let s = f.start(config());
    let addr = s.local_addr();
    let c = embed_collection::Collection::open(&f.clip).unwrap();
    let embed_collection::LoadedIndex::Flat(flat) = c.index() else {
        panic!("flat expected")
    };
    let v = flat.vector(7).unwrap();
    let r = post_json(
        addr,
        "/knn-service",
        &json!({"embedding_input": v, "modality": "image", "num_images": 3, "indice_name": "clip"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(rows(&r.json())[0], 7);
    let r = post_json(
        addr,
        "/metadata",
        &json!({"ids": [7, 2], "indice_name": "clip"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert_eq!(m[0]["id"], json!(7));
    assert_eq!(m[0]["metadata"]["image_path"], json!("refs/R000007.png"));
    assert_eq!(m[1]["metadata"]["caption"], json!("R000002"));
    let r = post_json(
        addr,
        "/metadata",
        &json!({"ids": [], "indice_name": "clip"}),
    );
    assert_eq!(r.json(), json!([]));
}

/// A compressed (8-bit) copy of `clip` served with `rerank` answers with the flat
/// collection's rows and exact similarities; served without it, the similarities are the
/// codes' approximations.
#[test]
fn a_reranked_compressed_collection_answers_with_exact_similarities() {
    let f = Fixture::new();
    let sq8 = f.tmp.path().join("clip_sq8");
    common::collection(&sq8, &f.root, &f.paths, 2, embed_collection::IndexSpec::Sq8);
    let mut reranked = common::spec(&sq8, Some(&f.root), 2, std::time::Duration::ZERO);
    reranked.rerank = Some(4);
    let mut plain = common::spec(&sq8, Some(&f.root), 2, std::time::Duration::ZERO);
    plain.name = "clip_sq8_plain".into();
    let mut specs = f.specs();
    specs.extend([reranked, plain]);
    let s = image_sim_serve::Server::start(config(), specs).unwrap();
    let c = embed_collection::Collection::open(&f.clip).unwrap();
    let embed_collection::LoadedIndex::Flat(flat) = c.index() else {
        panic!("flat expected")
    };
    let v: Vec<f32> = flat
        .vector(5)
        .unwrap()
        .iter()
        .map(|x| x * 0.8 + 0.01)
        .collect();
    let answer = |name: &str| -> Vec<(u64, f64)> {
        let r = post_json(
            s.local_addr(),
            "/knn-service",
            &json!({"embedding_input": v, "modality": "image", "num_images": 6, "indice_name": name}),
        );
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["id"].as_u64().unwrap(), h["similarity"].as_f64().unwrap()))
            .collect()
    };
    let (exact, got, approx) = (answer("clip"), answer("clip_sq8"), answer("clip_sq8_plain"));
    assert_eq!(got.len(), exact.len());
    for ((row, sim), (want_row, want)) in got.iter().zip(&exact) {
        assert_eq!(row, want_row);
        assert!((sim - want).abs() < 1e-6, "{sim} vs {want}");
    }
    assert!(
        approx
            .iter()
            .zip(&exact)
            .any(|(a, e)| (a.1 - e.1).abs() > 1e-6),
        "8-bit scores equal to the exact ones: the re-ranking above proves nothing"
    );
}

#[test]
fn text_and_image_url_queries_are_refused_with_the_reason() {
    let f = Fixture::new();
    let s = f.start(config());
    let addr = s.local_addr();
    let r = post_json(
        addr,
        "/knn-service",
        &json!({"text": "a cat", "modality": "image", "num_images": 3, "indice_name": "clip"}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().unwrap().contains("text tower"),
        "{}",
        r.text()
    );
    let r = post_json(
        addr,
        "/knn-service",
        &json!({"image_url": "http://169.254.169.254/", "modality": "image", "num_images": 3, "indice_name": "clip"}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("arbitrary addresses"),
        "{}",
        r.text()
    );
    let r = post_json(
        addr,
        "/knn-service",
        &json!({"embedding_input": [1.0], "modality": "text", "num_images": 3, "indice_name": "clip"}),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn multi_collection_query_by_image_and_by_row_with_ground_truth() {
    let f = Fixture::new();
    let mut cfg = config();
    cfg.ground_truth
        .insert("Q00000".into(), vec!["R000003".into()]);
    let s = f.start(cfg);
    let addr = s.local_addr();
    let q = std::fs::read(f.root.join("queries/Q00000.jpg")).unwrap();
    let r = post_json(
        addr,
        "/api/query",
        &json!({"image": b64(&q), "k": 3, "query_id": "Q00000"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["expected"], json!(["R000003"]));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for res in results {
        let hits = res["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0]["id"], json!("R000003"), "{res}");
        assert_eq!(hits[0]["truth"], json!(true));
        assert_eq!(hits[1]["truth"], json!(false));
    }
    assert_eq!(results[0]["collection"], json!("clip"));
    assert_eq!(results[1]["collection"], json!("dino"));
    // By row: row 9 of dino (HNSW: its file is embedded); clip holds the same id (stored vector).
    let r = post_json(
        addr,
        "/api/query",
        &json!({"by": {"collection": "dino", "row": 9}, "k": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    for res in v["results"].as_array().unwrap() {
        assert_eq!(res["hits"][0]["row"], json!(9), "{res}");
        assert!((res["hits"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    }
    // One collection only.
    let r = post_json(
        addr,
        "/api/query",
        &json!({"by": {"collection": "clip", "row": 1}, "collections": ["clip"]}),
    );
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["results"][0]["hits"].as_array().unwrap().len(), 10);
}

#[test]
fn images_and_thumbnails_come_from_the_collections_rows_only() {
    let f = Fixture::new();
    let s = f.start(config());
    let addr = s.local_addr();
    let r = get(addr, "/api/collections/clip/rows/4/image");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.body, std::fs::read(&f.paths[4]).unwrap());
    for _ in 0..2 {
        let r = get(addr, "/api/collections/dino/rows/4/thumbnail");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        let t = image::load_from_memory(&r.body).unwrap();
        assert_eq!(
            (t.width(), t.height()),
            (96, 56),
            "small images keep their size"
        );
    }
    let r = get(addr, "/api/collections/clip/rows/4");
    assert_eq!(r.json()["id"], json!("R000004"));
    for bad in [
        "/api/collections/clip/rows/12/image",
        "/api/collections/clip/rows/-1/image",
        "/api/collections/clip/rows/..%2F..%2Fetc%2Fpasswd/image",
        "/api/collections/..%2Fclip/rows/1/image",
        "/api/collections/clip/rows/1/../../../../etc/passwd",
        "/api/collections/nope/rows/1/thumbnail",
        "/etc/passwd",
    ] {
        let r = get(addr, bad);
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{bad}");
    }
}

#[test]
fn collections_health_and_metrics() {
    let f = Fixture::new();
    let s = f.start(config());
    let addr = s.local_addr();
    let r = get(addr, "/api/collections");
    let v = r.json();
    assert_eq!(v["collections"][0]["rows"], json!(12));
    assert_eq!(v["collections"][0]["model_id"], json!("test/grid-mean-2"));
    assert_eq!(v["collections"][1]["dim"], json!(27));
    assert_eq!(v["collections"][1]["index"]["kind"], json!("hnsw"));
    let r = get(addr, "/health");
    assert_eq!(r.json()["status"], json!("ok"));
    let image = std::fs::read(&f.paths[0]).unwrap();
    let r = post_json(
        addr,
        "/knn-service",
        &json!({"image": b64(&image), "num_images": 2, "indice_name": "dino"}),
    );
    assert_eq!(r.status, 200);
    let _ = get(addr, "/nothing-here");
    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let t = m.text();
    for needle in [
        "image_sim_requests_total{route=\"/knn-service\",status=\"200\"} 1",
        "image_sim_requests_total{route=\"other\",status=\"404\"} 1",
        "image_sim_request_duration_seconds_count{route=\"/knn-service\"} 1",
        "image_sim_embed_queue_depth{collection=\"dino\"} 0",
        "image_sim_embed_batch_size_count{collection=\"dino\"} 1",
        "image_sim_embedded_images_total{collection=\"dino\"} 1",
        "image_sim_collection_rows{collection=\"clip\"} 12",
    ] {
        assert!(t.contains(needle), "{needle} missing from\n{t}");
    }
}

#[test]
fn the_page_and_cors_preflight() {
    let f = Fixture::new();
    let s = f.start(config());
    let r = get(s.local_addr(), "/");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("/api/query"));
    let r = request(
        s.local_addr(),
        "OPTIONS",
        "/knn-service",
        &[
            ("Origin", "http://elsewhere"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}
