//! The collection's images: originals and cached thumbnails (only files the collection lists,
//! addressed by row: no path from a request reaches the file system), and adding images.

use std::io::Write;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use embed_collection::{CollectionWriter, ImageRow};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::error::{ApiError, ApiResult};
use crate::own_api::{read_file_limited, row_of};
use crate::state::{App, open_collection};
use crate::util::read_body;

/// `GET /api/collections/{name}/rows/{row}/image`: the image file of a row.
pub(crate) async fn image(
    State(app): State<Arc<App>>,
    Path((name, row)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (served, row) = row_of(&app, &name, &row)?;
    let path = served.image_file(row)?;
    let bytes = read_file_limited(&path, app.config.decode_limits.max_file_bytes).await?;
    let kind = sniff(&bytes);
    Ok((
        [
            (header::CONTENT_TYPE, kind.0),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/collections/{name}/rows/{row}/thumbnail`: a JPEG of at most
/// `thumbnail_side` pixels a side, made once and cached.
pub(crate) async fn thumbnail(
    State(app): State<Arc<App>>,
    Path((name, row)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (served, row) = row_of(&app, &name, &row)?;
    let jpeg = match served.cached_thumbnail(row) {
        Some(j) => j,
        None => {
            let path = served.image_file(row)?;
            let bytes = read_file_limited(&path, app.config.decode_limits.max_file_bytes).await?;
            let image = app.decode_for_display(bytes).await.map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the collection's image cannot be shown: {}", e.message),
                )
            })?;
            let side = app.config.thumbnail_side.max(16);
            let jpeg = tokio::task::spawn_blocking(move || make_thumbnail(image, side))
                .await
                .map_err(|e| ApiError::internal(format!("thumbnail failed: {e}")))??;
            let jpeg = Arc::new(jpeg);
            served.cache_thumbnail(row, jpeg.clone());
            jpeg
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        jpeg.as_ref().clone(),
    )
        .into_response())
}

fn make_thumbnail(image: embed_core::RgbImage, side: u32) -> ApiResult<Vec<u8>> {
    let (w, h) = (image.width(), image.height());
    let rgb = image::RgbImage::from_raw(w, h, image.into_raw())
        .ok_or_else(|| ApiError::internal("decoded image of the wrong size"))?;
    let scale = f64::from(side) / f64::from(w.max(h));
    let small = if scale < 1.0 {
        let tw = ((f64::from(w) * scale).round() as u32).max(1);
        let th = ((f64::from(h) * scale).round() as u32).max(1);
        image::imageops::thumbnail(&rgb, tw, th)
    } else {
        rgb
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&small)
        .map_err(|e| ApiError::internal(format!("cannot encode the thumbnail: {e}")))?;
    Ok(out)
}

/// The content type and file extension of image bytes, from their first bytes.
fn sniff(bytes: &[u8]) -> (&'static str, &'static str) {
    use embed_core::decode::ImageFormat;
    // The decoder's own detection: what it would decode is what is served as an image.
    match ImageFormat::sniff(bytes) {
        Some(ImageFormat::Jpeg) => ("image/jpeg", "jpg"),
        Some(ImageFormat::Png) => ("image/png", "png"),
        Some(ImageFormat::Gif) => ("image/gif", "gif"),
        Some(ImageFormat::WebP) => ("image/webp", "webp"),
        Some(ImageFormat::Bmp) => ("image/bmp", "bmp"),
        Some(ImageFormat::Tiff) => ("image/tiff", "tif"),
        None => ("application/octet-stream", "bin"),
    }
}

/// The query string of an added image.
#[derive(Debug, Deserialize)]
pub(crate) struct AddQuery {
    /// The image's id (default: `added-` and the start of its SHA-256).
    #[serde(default)]
    id: Option<String>,
}

/// `POST /api/collections/{name}/images?id=ID` with the image file as the body and
/// `Authorization: Bearer TOKEN`: embeds the image, stores it under the image root
/// (`added/ID.EXT`) and appends it to the collection, committed atomically.
pub(crate) async fn add_image(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<AddQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let Some(token) = app.config.add_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the service is read-only: adding images needs a token given at start-up",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "adding images needs `Authorization: Bearer TOKEN` with the service's token",
        ));
    }
    let served = app.get(&name)?.clone();
    let Some(root) = served.image_root.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("collection {name} has no image root to store added images in"),
        ));
    };
    let bytes = read_body(body, &headers, app.config.max_body_bytes).await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: post the image file",
        ));
    }
    let id = match q.id {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= 128
                && !id.starts_with('.')
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(ApiError::bad_request(
                    "id: 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'",
                ));
            }
            id
        }
        None => {
            let hex: String = sha2::Sha256::digest(&bytes)[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("added-{hex}")
        }
    };
    let ext = sniff(&bytes).1;
    let (vector, (width, height)) = app.embed_bytes(&served, bytes.clone()).await?;
    let _one_at_a_time = served.add_lock.lock().await;
    if served.collection().row_of_id(&id).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("collection {name} already holds an image with id {id}"),
        ));
    }
    let config = app.config.clone();
    let s = served.clone();
    let row = tokio::task::spawn_blocking(move || -> ApiResult<usize> {
        let rel = format!("added/{id}.{ext}");
        let file = root.join(&rel);
        write_atomically(&file, &bytes)
            .map_err(|e| ApiError::internal(format!("cannot store the image: {e}")))?;
        let commit = || -> embed_collection::Result<embed_collection::Collection> {
            let mut w = CollectionWriter::append(&s.dir, s.info.clone())?;
            let row = ImageRow {
                image_path: rel.clone(),
                id: id.clone(),
                width,
                height,
            };
            w.push_batch(&[row], &vector)?;
            w.finish()?;
            open_collection(&s.dir, &config, s.ef_search, s.rerank)
        };
        match commit() {
            Ok(c) => {
                let row = c.len() - 1;
                s.replace(c);
                Ok(row)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                Err(match e {
                    embed_collection::Error::Busy(_) => ApiError::busy(
                        format!("collection {} is being written by another process", s.name),
                        2,
                    ),
                    other => ApiError::internal(format!("cannot add the image: {other}")),
                })
            }
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("adding failed: {e}")))??;
    log::info!("{name}: added row {row}");
    Ok(Json(
        json!({ "collection": name, "row": row, "rows": row + 1 }),
    ))
}

/// Writes a file through a temporary name, synced, then renamed into place.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.part",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("image")
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
