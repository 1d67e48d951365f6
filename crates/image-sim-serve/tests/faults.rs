//! Bad requests get a 4xx JSON error and the service keeps answering; a full queue answers 503
//! with Retry-After; timeouts (requests, and connections that are slow to send their headers);
//! the cap on open connections; adding images only with the token; graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::http::{Conn, get, post_json, request};
use common::{Fixture, b64, config, spec};
use image_sim_serve::Server;
use serde_json::json;

/// A PNG whose header claims `w × h` (CRC fixed): a decompression bomb.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    image::RgbImage::new(16, 16)
        .write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
        .unwrap();
    buf[16..20].copy_from_slice(&w.to_be_bytes());
    buf[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&buf[12..29]);
    buf[29..33].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn every_bad_request_is_a_4xx_json_error_and_the_service_keeps_answering() {
    let f = Fixture::new();
    let mut cfg = config();
    cfg.max_body_bytes = 256 * 1024;
    let s = f.start(cfg);
    let addr = s.local_addr();
    let good_image = std::fs::read(&f.paths[2]).unwrap();
    let knn = |extra: serde_json::Value| {
        let mut body = json!({"modality": "image", "num_images": 3, "indice_name": "clip"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "garbage base64",
            "/knn-service",
            knn(json!({"image": "%%%not base64!!"}))
                .to_string()
                .into_bytes(),
            400,
            "base64",
        ),
        (
            "not an image",
            "/knn-service",
            knn(json!({"image": b64(b"just some text, not pixels")}))
                .to_string()
                .into_bytes(),
            400,
            "image",
        ),
        (
            "truncated image",
            "/knn-service",
            knn(json!({"image": b64(&good_image[..good_image.len() / 3])}))
                .to_string()
                .into_bytes(),
            400,
            "image",
        ),
        (
            "pixel bomb",
            "/knn-service",
            knn(json!({"image": b64(&png_claiming(60_000, 60_000))}))
                .to_string()
                .into_bytes(),
            413,
            "too large",
        ),
        (
            "wrong vector length",
            "/knn-service",
            knn(json!({"embedding_input": [0.5, 0.5, 0.5]}))
                .to_string()
                .into_bytes(),
            400,
            "dimension 12",
        ),
        (
            "zero vector",
            "/knn-service",
            knn(json!({"embedding_input": vec![0.0; 12]}))
                .to_string()
                .into_bytes(),
            400,
            "zero",
        ),
        (
            "vector of strings",
            "/knn-service",
            knn(json!({"embedding_input": ["a"]}))
                .to_string()
                .into_bytes(),
            400,
            "malformed",
        ),
        (
            "unknown collection",
            "/knn-service",
            knn(json!({"indice_name": "nope", "embedding_input": vec![1.0; 12]}))
                .to_string()
                .into_bytes(),
            404,
            "nope",
        ),
        (
            "num_images 0",
            "/knn-service",
            knn(json!({"num_images": 0, "embedding_input": vec![1.0; 12]}))
                .to_string()
                .into_bytes(),
            400,
            "num_images",
        ),
        (
            "num_images huge",
            "/knn-service",
            knn(json!({"num_images": 1_000_000, "embedding_input": vec![1.0; 12]}))
                .to_string()
                .into_bytes(),
            400,
            "num_images",
        ),
        (
            "num_images missing",
            "/knn-service",
            json!({"embedding_input": vec![1.0; 12], "indice_name": "clip"})
                .to_string()
                .into_bytes(),
            400,
            "num_images",
        ),
        (
            "num_result_ids negative",
            "/knn-service",
            knn(json!({"num_result_ids": -5, "embedding_input": vec![1.0; 12]}))
                .to_string()
                .into_bytes(),
            400,
            "num_result_ids",
        ),
        (
            "nothing to search",
            "/knn-service",
            knn(json!({})).to_string().into_bytes(),
            400,
            "nothing to search",
        ),
        (
            "malformed JSON",
            "/knn-service",
            b"{\"num_images\": 3,".to_vec(),
            400,
            "malformed",
        ),
        (
            "not an object",
            "/knn-service",
            b"[1, 2, 3]".to_vec(),
            400,
            "malformed",
        ),
        ("empty body", "/knn-service", Vec::new(), 400, "empty"),
        (
            "body over the limit",
            "/knn-service",
            vec![b' '; 300 * 1024],
            413,
            "limit",
        ),
        (
            "metadata unknown id",
            "/metadata",
            json!({"ids": [99], "indice_name": "clip"})
                .to_string()
                .into_bytes(),
            404,
            "99",
        ),
        (
            "metadata ids not numbers",
            "/metadata",
            json!({"ids": "1,2", "indice_name": "clip"})
                .to_string()
                .into_bytes(),
            400,
            "malformed",
        ),
        (
            "query with both",
            "/api/query",
            json!({"image": "AAAA", "by": {"collection": "clip", "row": 1}})
                .to_string()
                .into_bytes(),
            400,
            "exactly one",
        ),
        (
            "query unknown row",
            "/api/query",
            json!({"by": {"collection": "clip", "row": 500}})
                .to_string()
                .into_bytes(),
            404,
            "500",
        ),
        (
            "query k 0",
            "/api/query",
            json!({"by": {"collection": "clip", "row": 1}, "k": 0})
                .to_string()
                .into_bytes(),
            400,
            "k",
        ),
        (
            "query unknown collection",
            "/api/query",
            json!({"by": {"collection": "clip", "row": 1}, "collections": ["x"]})
                .to_string()
                .into_bytes(),
            404,
            "x",
        ),
        (
            "query bomb",
            "/api/query",
            json!({"image": b64(&png_claiming(100_000, 100_000))})
                .to_string()
                .into_bytes(),
            413,
            "too large",
        ),
        (
            "read-only add",
            "/api/collections/clip/images",
            good_image.clone(),
            403,
            "read-only",
        ),
    ];
    for (what, path, body, status, needle) in &cases {
        let r = request(addr, "POST", path, &[], body);
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: {msg}"
        );
    }
    // Wrong method and unknown route: JSON too.
    let r = get(addr, "/knn-service");
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    // The same keep-alive connection survives a bad request.
    let mut conn = Conn::open(addr).unwrap();
    let r = conn.send("POST", "/knn-service", &[], b"{oops").unwrap();
    assert_eq!(r.status, 400);
    let r = conn
        .send(
            "POST",
            "/knn-service",
            &[],
            knn(json!({"image": b64(&good_image)}))
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["id"], json!(2));
    // A raw protocol error does not take the service down.
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut raw, b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    drop(raw);
    let r = post_json(
        addr,
        "/knn-service",
        &knn(json!({"image": b64(&good_image)})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["id"], json!(2));
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_recovers() {
    let f = Fixture::new();
    let mut cfg = config();
    cfg.queue_capacity = 1;
    cfg.max_batch = 1;
    let s = Server::start(
        cfg,
        vec![spec(&f.clip, Some(&f.root), 2, Duration::from_millis(150))],
    )
    .unwrap();
    let addr = s.local_addr();
    let image = std::fs::read(&f.paths[1]).unwrap();
    let body = json!({"image": b64(&image), "num_images": 2, "indice_name": "clip"}).to_string();
    let replies: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| request(addr, "POST", "/knn-service", &[], body.as_bytes())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let busy: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(ok >= 1, "some requests are served");
    assert!(
        !busy.is_empty(),
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(ok + busy.len(), 8);
    for r in &busy {
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("queue is full")
        );
    }
    let r = request(addr, "POST", "/knn-service", &[], body.as_bytes());
    assert_eq!(r.status, 200);
    let m = get(addr, "/metrics").text();
    assert!(
        m.contains(&format!(
            "image_sim_embed_rejected_total{{collection=\"clip\"}} {}",
            busy.len()
        )),
        "{m}"
    );
}

#[test]
fn a_request_past_the_timeout_gets_503() {
    let f = Fixture::new();
    let mut cfg = config();
    cfg.request_timeout = Duration::from_millis(100);
    let s = Server::start(
        cfg,
        vec![spec(&f.clip, Some(&f.root), 2, Duration::from_millis(600))],
    )
    .unwrap();
    let image = std::fs::read(&f.paths[1]).unwrap();
    let body = json!({"image": b64(&image), "num_images": 2, "indice_name": "clip"});
    let r = post_json(s.local_addr(), "/knn-service", &body);
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("longer than"));
    // Searching with a vector needs no model: it still answers in time.
    let r = post_json(
        s.local_addr(),
        "/knn-service",
        &json!({"embedding_input": vec![1.0; 12], "num_images": 2, "indice_name": "clip"}),
    );
    assert_eq!(r.status, 200);
}

/// Reads until the server closes `stream`; the time it took, or `None` when it was still open
/// after `limit`.
fn closed_by_server_within(stream: &mut std::net::TcpStream, limit: Duration) -> Option<Duration> {
    use std::io::Read;
    let t = std::time::Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = Vec::new();
    match stream.read_to_end(&mut buf) {
        Ok(_) => Some(t.elapsed()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        // A reset is a close too.
        Err(_) => Some(t.elapsed()),
    }
}

#[test]
fn clients_slow_to_send_their_headers_are_disconnected_and_connections_are_capped() {
    use std::io::Write;
    let f = Fixture::new();
    let mut cfg = config();
    cfg.header_read_timeout = Duration::from_millis(300);
    cfg.max_connections = 2;
    let s = f.start(cfg);
    let addr = s.local_addr();

    // Silent after half a request line: closed at the deadline.
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    silent.write_all(b"GET /health HT").unwrap();
    let took = closed_by_server_within(&mut silent, Duration::from_secs(5));
    assert!(took.is_some(), "a silent client is disconnected");
    // Trickling a byte every 100 ms: still closed, the deadline is for the whole header.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    let t = std::time::Instant::now();
    let mut closed = false;
    for b in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        closed || closed_by_server_within(&mut slow, Duration::from_millis(10)).is_some(),
        "a trickling client is disconnected ({:?} after it started)",
        t.elapsed()
    );

    // Two idle connections take both slots: a third client waits for one to be closed at
    // its deadline, then is answered.
    let mut holders: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let t = std::time::Instant::now();
    let r = get(addr, "/health");
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "answered only once a slot was free ({:?})",
        t.elapsed()
    );
    for h in &mut holders {
        assert!(closed_by_server_within(h, Duration::from_secs(5)).is_some());
    }
    // And with the slots free, at once.
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn shutdown_finishes_requests_in_flight() {
    let f = Fixture::new();
    let s = Server::start(
        config(),
        vec![spec(&f.clip, Some(&f.root), 2, Duration::from_millis(700))],
    )
    .unwrap();
    let addr = s.local_addr();
    let image = std::fs::read(&f.paths[6]).unwrap();
    let body = json!({"image": b64(&image), "num_images": 2, "indice_name": "clip"}).to_string();
    let in_flight =
        std::thread::spawn(move || request(addr, "POST", "/knn-service", &[], body.as_bytes()));
    std::thread::sleep(Duration::from_millis(250));
    let t = std::time::Instant::now();
    s.shutdown().unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "waited for the request"
    );
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["id"], json!(6));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn adding_images_needs_the_token_and_persists_them() {
    let f = Fixture::new();
    let mut cfg = config();
    cfg.add_token = Some("s3cret".into());
    let s = f.start(cfg);
    let addr = s.local_addr();
    let mut new = Vec::new();
    common::picture(40, 70, 50)
        .write_to(&mut std::io::Cursor::new(&mut new), image::ImageFormat::Png)
        .unwrap();
    let path = "/api/collections/clip/images?id=NEW001";
    let r = request(addr, "POST", path, &[], &new);
    assert_eq!(r.status, 401);
    let r = request(
        addr,
        "POST",
        path,
        &[("Authorization", "Bearer wrong")],
        &new,
    );
    assert_eq!(r.status, 401);
    let r = request(
        addr,
        "POST",
        "/api/collections/clip/images?id=../x",
        &[("Authorization", "Bearer s3cret")],
        &new,
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        path,
        &[("Authorization", "Bearer s3cret")],
        b"not an image",
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        path,
        &[("Authorization", "Bearer s3cret")],
        &new,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["row"], json!(12));
    let r = request(
        addr,
        "POST",
        path,
        &[("Authorization", "Bearer s3cret")],
        &new,
    );
    assert_eq!(r.status, 409, "same id twice");
    // Searchable at once, its file served, and on disk.
    let r = post_json(
        addr,
        "/knn-service",
        &json!({"image": b64(&new), "num_images": 1, "indice_name": "clip"}),
    );
    assert_eq!(r.json()[0]["id"], json!(12));
    assert_eq!(r.json()[0]["caption"], json!("NEW001"));
    assert_eq!(get(addr, "/api/collections/clip/rows/12/image").body, new);
    drop(s);
    let c = embed_collection::Collection::open(&f.clip).unwrap();
    assert_eq!(c.len(), 13);
    assert_eq!(c.row(12).unwrap().image_path, "added/NEW001.png");
    assert_eq!(std::fs::read(f.root.join("added/NEW001.png")).unwrap(), new);
}

#[test]
fn a_model_that_does_not_fit_the_collection_is_refused_at_start() {
    let f = Fixture::new();
    let err = Server::start(config(), vec![spec(&f.clip, None, 3, Duration::ZERO)]).unwrap_err();
    assert!(err.to_string().contains("dimension"), "{err}");
    let err = Server::start(
        config(),
        vec![
            spec(&f.clip, None, 2, Duration::ZERO),
            spec(&f.clip, None, 2, Duration::ZERO),
        ],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("two collections named clip"),
        "{err}"
    );
}

#[test]
fn without_an_image_root_images_are_not_served() {
    let f = Fixture::new();
    let s = Server::start(config(), vec![spec(&f.clip, None, 2, Duration::ZERO)]).unwrap();
    let r = get(s.local_addr(), "/api/collections/clip/rows/1/thumbnail");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("image root"));
}
