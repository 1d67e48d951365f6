//! Hub download against a local HTTP server that serves a checkpoint folder under the hub's URL
//! scheme (`/{repo}/resolve/{revision}/{file}`): files land in the standard cache layout, a
//! second lookup finds them without the network, offline mode refuses to download.
#![cfg(feature = "download")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use embed_torch::download::{CHECKPOINT_FILES, DownloadError, DownloadOptions, download_model};
use embed_torch::resolve_model_in;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A one-thread hub: answers `GET /{repo}/resolve/{rev}/{file}` from `files` with the hub's
/// `X-Repo-Commit` header (and an `ETag` when `etag` is set), 404 otherwise. Counts requests.
struct Hub {
    url: String,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn serve(repo: &str, files: HashMap<String, Vec<u8>>, send_commit: bool) -> Hub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (count, log, repo) = (requests.clone(), seen.clone(), repo.to_string());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            // Drain the headers.
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let prefix = format!("/{repo}/resolve/");
            let body = path
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(rev, file)| {
                    (rev == "main" || rev == COMMIT)
                        .then(|| files.get(file))
                        .flatten()
                });
            let response = match body {
                Some(bytes) => {
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                        bytes.len()
                    );
                    if send_commit {
                        head.push_str(&format!("X-Repo-Commit: {COMMIT}\r\n"));
                    }
                    let mut r = format!("{head}\r\n").into_bytes();
                    r.extend_from_slice(bytes);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    Hub {
        url,
        requests,
        seen,
    }
}

fn checkpoint() -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    files.insert(
        "config.json".to_string(),
        br#"{"model_type": "dinov2"}"#.to_vec(),
    );
    files.insert(
        "preprocessor_config.json".to_string(),
        br#"{"crop_size": {"height": 224, "width": 224}}"#.to_vec(),
    );
    // Not a real safetensors file: the download does not parse it; 300 kB exercises streaming.
    files.insert(
        "model.safetensors".to_string(),
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect(),
    );
    files
}

fn options(hub: &Hub, cache: &std::path::Path) -> DownloadOptions {
    DownloadOptions {
        endpoint: hub.url.clone(),
        revision: "main".into(),
        cache_dir: cache.to_path_buf(),
        offline: false,
        files: CHECKPOINT_FILES.iter().map(|f| f.to_string()).collect(),
        progress: false,
        token: None,
    }
}

#[test]
fn downloads_into_the_cache_layout_and_finds_it_again_offline() {
    let files = checkpoint();
    let hub = serve("test-org/tiny-model", files.clone(), true);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub, cache.path());

    let dir = download_model("test-org/tiny-model", &opts).unwrap();
    let repo = cache.path().join("models--test-org--tiny-model");
    assert_eq!(dir, repo.join("snapshots").join(COMMIT));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
    }
    // Contents live in blobs/, named by SHA-256 here (the server sends no ETag).
    let blobs: Vec<_> = std::fs::read_dir(repo.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(blobs.len(), 3, "{blobs:?}");
    assert!(blobs.iter().all(|b| b.len() == 64), "{blobs:?}");
    // Files after the first are pinned to the commit the first resolved to.
    let seen = hub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(seen[0].contains("/resolve/main/"), "{seen:?}");
    assert!(seen[1..].iter().all(|p| p.contains(COMMIT)), "{seen:?}");

    // The existing lookup finds the snapshot.
    let found = resolve_model_in("test-org/tiny-model", &[cache.path().to_path_buf()]).unwrap();
    assert_eq!(found.dir, dir);
    assert_eq!(found.model_id, "test-org/tiny-model");

    // A second download call, online or offline, touches no network.
    let before = hub.requests.load(Ordering::SeqCst);
    assert_eq!(download_model("test-org/tiny-model", &opts).unwrap(), dir);
    let offline = DownloadOptions {
        offline: true,
        ..opts.clone()
    };
    assert_eq!(
        download_model("test-org/tiny-model", &offline).unwrap(),
        dir
    );
    assert_eq!(hub.requests.load(Ordering::SeqCst), before);
}

#[test]
fn offline_mode_refuses_to_download_with_a_clear_message() {
    let hub = serve("test-org/tiny-model", checkpoint(), true);
    let cache = tempfile::tempdir().unwrap();
    let opts = DownloadOptions {
        offline: true,
        ..options(&hub, cache.path())
    };
    let err = download_model("test-org/tiny-model", &opts).unwrap_err();
    assert!(matches!(err, DownloadError::Offline { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
    assert!(message.contains("test-org/tiny-model"), "{message}");
    assert_eq!(hub.requests.load(Ordering::SeqCst), 0);
    assert!(
        !cache
            .path()
            .join("models--test-org--tiny-model/refs")
            .exists()
    );
}

#[test]
fn missing_files_and_servers_without_commit_headers() {
    // A plain file server (no X-Repo-Commit): the snapshot is named after the revision.
    let hub = serve("org/plain", checkpoint(), false);
    let cache = tempfile::tempdir().unwrap();
    let dir = download_model("org/plain", &options(&hub, cache.path())).unwrap();
    assert!(dir.ends_with("snapshots/main"), "{}", dir.display());
    assert!(dir.join("model.safetensors").is_file());

    // A model the hub does not have: an HTTP error naming the URL and the likely cause, and no
    // half-written snapshot.
    let err = download_model("org/missing", &options(&hub, cache.path())).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DownloadError::Http { .. }), "{err:?}");
    assert!(message.contains("404"), "{message}");
    assert!(
        message.contains("/org/missing/resolve/main/config.json"),
        "{message}"
    );
    assert!(!cache.path().join("models--org--missing/snapshots").exists());
    assert!(download_model("../evil", &options(&hub, cache.path())).is_err());
}

#[test]
fn resolve_model_downloads_a_missing_id_unless_offline() {
    // The only test of this binary that touches the environment (the others pass explicit
    // options), so setting variables here races with nothing.
    let hub = serve("test-org/hooked", checkpoint(), true);
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: no other thread of this test binary reads or writes these variables.
    unsafe {
        std::env::set_var("HF_HUB_CACHE", cache.path());
        std::env::set_var("HF_ENDPOINT", &hub.url);
        std::env::set_var("HF_HUB_OFFLINE", "1");
    }
    assert!(DownloadOptions::from_env().offline);
    let err = embed_torch::resolve_model("test-org/hooked").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
    assert_eq!(hub.requests.load(Ordering::SeqCst), 0);

    unsafe { std::env::set_var("HF_HUB_OFFLINE", "0") };
    assert!(!DownloadOptions::from_env().offline);
    let found = embed_torch::resolve_model("test-org/hooked").unwrap();
    assert!(
        found.dir.starts_with(cache.path()),
        "{}",
        found.dir.display()
    );
    assert_eq!(found.model_id, "test-org/hooked");
    assert_eq!(hub.requests.load(Ordering::SeqCst), 3);
    // Found in the cache from now on, offline too.
    unsafe { std::env::set_var("HF_HUB_OFFLINE", "1") };
    assert_eq!(
        embed_torch::resolve_model("test-org/hooked").unwrap(),
        found
    );
    assert_eq!(hub.requests.load(Ordering::SeqCst), 3);
    unsafe {
        std::env::remove_var("HF_HUB_OFFLINE");
        std::env::remove_var("HF_ENDPOINT");
        std::env::remove_var("HF_HUB_CACHE");
    }
}
