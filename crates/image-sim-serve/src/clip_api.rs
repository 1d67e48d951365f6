//! clip-retrieval's back-end API (`clip_back.py`), so that its clients (`ClipClient`,
//! `clip-front`) work unchanged: `GET /indices-list`, `POST /knn-service`, `POST /metadata`.
//! Bodies are read as JSON whatever their `Content-Type` (clip-front sends `text/plain`).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::{App, Hit, Served};
use crate::util::{base_url, parse_json, read_body};

/// `GET /indices-list`: the names of the served collections.
pub(crate) async fn indices_list(State(app): State<Arc<App>>) -> Json<Vec<String>> {
    Json(app.collections.iter().map(|c| c.name.clone()).collect())
}

/// The fields of a `/knn-service` request. Flags clip-retrieval's clients send that do not
/// apply here (`deduplicate`, `use_safety_model`, `use_violence_detector`, `use_mclip`,
/// `aesthetic_score`, `aesthetic_weight`) are accepted and ignored.
#[derive(Debug, Deserialize)]
struct KnnRequest {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    embedding_input: Option<Vec<f64>>,
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    num_images: Option<i64>,
    #[serde(default)]
    num_result_ids: Option<i64>,
    #[serde(default)]
    indice_name: Option<String>,
}

/// `POST /knn-service`: the nearest rows of one collection to an image (base64 bytes of an
/// image file) or an embedding, best first.
pub(crate) async fn knn_service(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Vec<Value>>> {
    let bytes = read_body(body, &headers, app.config.max_body_bytes).await?;
    let req: KnnRequest = parse_json(&bytes)?;
    let served = match req.indice_name.as_deref() {
        Some(name) => app.get(name)?.clone(),
        None => app.collections[0].clone(),
    };
    if let Some(m) = req.modality.as_deref()
        && m != "image"
    {
        return Err(ApiError::bad_request(format!(
            "modality {m:?}: this server indexes images only (modality \"image\")"
        )));
    }
    if req.text.as_deref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::bad_request(
            "text queries are not supported: the served models embed images only (no text tower); \
             send an image (base64) or an embedding_input",
        ));
    }
    if req.image_url.as_deref().is_some_and(|u| !u.is_empty()) && req.image.is_none() {
        return Err(ApiError::bad_request(
            "image_url is not supported: fetching URLs is off, as it would let any client make the \
             server fetch arbitrary addresses; send the image's bytes as `image` (base64)",
        ));
    }
    let num_images = check_count("num_images", req.num_images, app.config.max_results)?
        .ok_or_else(|| ApiError::bad_request("num_images is missing"))?;
    let num_result_ids = check_count("num_result_ids", req.num_result_ids, app.config.max_results)?
        .unwrap_or(num_images)
        .max(num_images);
    let query = match (req.image, req.embedding_input) {
        (Some(b64), _) => {
            let bytes = decode_base64(&b64)?;
            app.embed_bytes(&served, bytes).await?.0
        }
        (None, Some(v)) => v.into_iter().map(|x| x as f32).collect(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "nothing to search with: give `image` (base64 bytes of an image file) or \
                 `embedding_input` (a vector)",
            ));
        }
    };
    let hits = served.search(query, num_result_ids).await?;
    let base = base_url(&headers);
    Ok(Json(
        hits.iter()
            .enumerate()
            .map(|(i, h)| {
                let mut m = if i < num_images {
                    metadata(&served, h, &base)
                } else {
                    Map::new()
                };
                m.insert("id".into(), json!(h.row));
                m.insert("similarity".into(), json!(h.score));
                Value::Object(m)
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
struct MetadataRequest {
    ids: Vec<i64>,
    #[serde(default)]
    indice_name: Option<String>,
}

/// `POST /metadata`: the metadata of rows, as `[{"id": row, "metadata": {...}}]`.
pub(crate) async fn metadata_service(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Vec<Value>>> {
    let bytes = read_body(body, &headers, app.config.max_body_bytes).await?;
    let req: MetadataRequest = parse_json(&bytes)?;
    if req.ids.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let served = match req.indice_name.as_deref() {
        Some(name) => app.get(name)?.clone(),
        None => app.collections[0].clone(),
    };
    if req.ids.len() > app.config.max_results {
        return Err(ApiError::bad_request(format!(
            "{} ids, at most {} per request",
            req.ids.len(),
            app.config.max_results
        )));
    }
    let c = served.collection();
    let base = base_url(&headers);
    let mut out = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let row = usize::try_from(id)
            .ok()
            .filter(|&r| r < c.len())
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "id {id} is not in collection {} (ids 0..{})",
                    served.name,
                    c.len()
                ))
            })?;
        let r = c
            .row(row)
            .ok_or_else(|| ApiError::internal("row vanished"))?;
        let hit = Hit::of_row(row, r, 0.0);
        out.push(json!({ "id": row, "metadata": metadata(&served, &hit, &base) }));
    }
    Ok(Json(out))
}

/// The metadata columns of a row as clip-retrieval returns them (`image_path`, `url`,
/// `caption`), plus the row's string id, size and thumbnail.
fn metadata(served: &Served, h: &Hit, base: &str) -> Map<String, Value> {
    let row_url = format!(
        "{base}/api/collections/{}/rows/{}",
        url_segment(&served.name),
        h.row
    );
    let mut m = Map::new();
    m.insert("image_path".into(), json!(h.image_path));
    m.insert("url".into(), json!(format!("{row_url}/image")));
    m.insert("thumbnail".into(), json!(format!("{row_url}/thumbnail")));
    m.insert("caption".into(), json!(h.id));
    m.insert("image_id".into(), json!(h.id));
    m.insert("width".into(), json!(h.width));
    m.insert("height".into(), json!(h.height));
    m
}

/// Percent-encodes a path segment.
pub(crate) fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A count in `1..=max`, or `None` when absent.
pub(crate) fn check_count(what: &str, v: Option<i64>, max: usize) -> ApiResult<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if n >= 1 && (n as u64) <= max as u64 => Ok(Some(n as usize)),
        Some(n) => Err(ApiError::bad_request(format!(
            "{what} = {n} is out of range 1..={max}"
        ))),
    }
}

/// Decodes standard base64 (with or without padding, surrounding whitespace allowed; a
/// `data:...;base64,` prefix is stripped).
pub(crate) fn decode_base64(s: &str) -> ApiResult<Vec<u8>> {
    let s = s.trim();
    let s = match s.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => s,
    };
    let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(cleaned.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("`image` is not valid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("`image` is empty"));
    }
    Ok(bytes)
}
