//! The service's own endpoints: the collections, one image against several collections, query
//! by an indexed image, rows, health and metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clip_api::{check_count, decode_base64, url_segment};
use crate::error::{ApiError, ApiResult};
use crate::state::{App, Hit, Served};
use crate::util::{parse_json, read_body};

/// The web page.
const PAGE: &str = include_str!("../assets/index.html");

/// `GET /`: the web page.
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /health`.
pub(crate) async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    let collections: Vec<Value> = app
        .collections
        .iter()
        .map(|c| json!({ "name": c.name, "rows": c.collection().len(), "queue": c.worker.depth() }))
        .collect();
    Json(json!({ "status": "ok", "collections": collections }))
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let rows: Vec<(String, usize, usize, &crate::metrics::ModelMetrics)> = app
        .collections
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.collection().len(),
                c.worker.depth(),
                c.worker.metrics.as_ref(),
            )
        })
        .collect();
    let text = app.metrics.render(&rows);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api/collections`: what each collection is.
pub(crate) async fn collections(State(app): State<Arc<App>>) -> Json<Value> {
    let list: Vec<Value> = app
        .collections
        .iter()
        .map(|c| {
            let coll = c.collection();
            json!({
                "name": c.name,
                "rows": coll.len(),
                "dim": c.info.dim,
                "model_id": c.info.model_id,
                "metric": c.info.metric.to_string(),
                "index": coll.manifest().index,
                "images": c.image_root.is_some(),
                "writable": app.config.add_token.is_some() && c.image_root.is_some(),
            })
        })
        .collect();
    Json(json!({ "collections": list, "ground_truth": !app.config.ground_truth.is_empty() }))
}

/// An indexed image: a row of a served collection.
#[derive(Debug, Deserialize)]
struct RowRef {
    collection: String,
    row: i64,
}

/// A query of several collections at once.
#[derive(Debug, Deserialize)]
struct QueryRequest {
    /// Base64 bytes of an image file.
    #[serde(default)]
    image: Option<String>,
    /// Or an indexed image.
    #[serde(default)]
    by: Option<RowRef>,
    /// Which collections (default: all).
    #[serde(default)]
    collections: Option<Vec<String>>,
    /// Results per collection (default 10).
    #[serde(default)]
    k: Option<i64>,
    /// The query's id (e.g. the file stem `Q00012`) to look up in the ground truth.
    #[serde(default)]
    query_id: Option<String>,
}

/// The query of one request, as each collection receives it.
#[derive(Clone)]
enum Query {
    Bytes(Arc<Vec<u8>>),
    Row {
        from: Arc<Served>,
        row: usize,
        id: String,
    },
}

/// `POST /api/query`: the top-k of each collection for one image (posted, or a row of a
/// collection), side by side.
pub(crate) async fn query(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let bytes = read_body(body, &headers, app.config.max_body_bytes).await?;
    let req: QueryRequest = parse_json(&bytes)?;
    let k = check_count("k", req.k, app.config.max_results)?.unwrap_or(10);
    let targets: Vec<Arc<Served>> = match &req.collections {
        Some(names) if names.is_empty() => {
            return Err(ApiError::bad_request("`collections` is empty"));
        }
        Some(names) => names
            .iter()
            .map(|n| app.get(n).cloned())
            .collect::<ApiResult<_>>()?,
        None => app.collections.clone(),
    };
    let (query, mut query_id) = match (req.image, req.by) {
        (Some(b64), None) => (Query::Bytes(Arc::new(decode_base64(&b64)?)), None),
        (None, Some(by)) => {
            let from = app.get(&by.collection)?.clone();
            let c = from.collection();
            let row = usize::try_from(by.row)
                .ok()
                .filter(|&r| r < c.len())
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "row {} is not in collection {} ({} rows)",
                        by.row,
                        from.name,
                        c.len()
                    ))
                })?;
            let id = c.row(row).map(|r| r.id.clone()).unwrap_or_default();
            (
                Query::Row {
                    from,
                    row,
                    id: id.clone(),
                },
                Some(id),
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `image` (base64 bytes of an image file) and `by` \
                 ({\"collection\": name, \"row\": n})",
            ));
        }
    };
    if let Some(q) = req.query_id {
        query_id = Some(q);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, served) in targets.into_iter().enumerate() {
        let (app, query) = (app.clone(), query.clone());
        tasks.spawn(async move {
            let start = Instant::now();
            let r = one_collection(&app, &served, query, k).await;
            (i, served, r, start.elapsed())
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, served, r, took) =
            done.map_err(|e| ApiError::internal(format!("query task failed: {e}")))?;
        results.push((i, served, r, took));
    }
    results.sort_by_key(|r| r.0);
    // A problem of the image itself (or a full queue) fails the whole request.
    if let Some(e) = results.iter().find_map(|r| {
        r.2.as_ref()
            .err()
            .filter(|e| matches!(e.status.as_u16(), 400 | 413 | 503))
    }) {
        return Err(e.clone());
    }
    let expected: Option<&Vec<String>> = query_id
        .as_deref()
        .and_then(|q| app.config.ground_truth.get(q));
    let out: Vec<Value> = results
        .into_iter()
        .map(|(_, served, r, took)| match r {
            Ok(hits) => json!({
                "collection": served.name,
                "model_id": served.info.model_id,
                "took_ms": took.as_secs_f64() * 1e3,
                "hits": hits.iter().map(|h| hit_json(&served, h, expected)).collect::<Vec<_>>(),
            }),
            Err(e) => json!({
                "collection": served.name,
                "model_id": served.info.model_id,
                "error": e.message,
            }),
        })
        .collect();
    Ok(Json(json!({
        "query_id": query_id,
        "expected": expected,
        "results": out,
    })))
}

/// One collection's hits for a query: a posted image is embedded with the collection's model;
/// an indexed image uses the stored vector when the collection holds that image (same
/// collection, or same id, with an index that keeps vectors), else its file is embedded.
async fn one_collection(
    app: &App,
    served: &Arc<Served>,
    query: Query,
    k: usize,
) -> ApiResult<Vec<Hit>> {
    let vector = match query {
        Query::Bytes(bytes) => app.embed_bytes(served, bytes.as_ref().clone()).await?.0,
        Query::Row { from, row, id } => {
            let same = if Arc::ptr_eq(&from, served) {
                Some(row)
            } else {
                served.collection().row_of_id(&id)
            };
            match same.and_then(|r| served.stored_vector(r)) {
                Some(v) => v,
                None => {
                    let path = from.image_file(row)?;
                    let bytes =
                        read_file_limited(&path, app.config.decode_limits.max_file_bytes).await?;
                    app.embed_bytes(served, bytes).await?.0
                }
            }
        }
    };
    served.search(vector, k).await
}

/// Reads a collection's image file (refusing one over `limit` bytes).
pub(crate) async fn read_file_limited(path: &std::path::Path, limit: u64) -> ApiResult<Vec<u8>> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|_| ApiError::not_found("the image file is not available"))?;
    if meta.len() > limit {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "the image file is larger than the decoding limit",
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|_| ApiError::not_found("the image file is not available"))
}

fn hit_json(served: &Served, h: &Hit, expected: Option<&Vec<String>>) -> Value {
    let url = format!(
        "/api/collections/{}/rows/{}",
        url_segment(&served.name),
        h.row
    );
    json!({
        "row": h.row,
        "id": h.id,
        "score": h.score,
        "image_path": h.image_path,
        "width": h.width,
        "height": h.height,
        "image": format!("{url}/image"),
        "thumbnail": format!("{url}/thumbnail"),
        "truth": expected.is_some_and(|e| e.contains(&h.id)),
    })
}

/// Parses the `{name}/{row}` of a row URL.
pub(crate) fn row_of(app: &App, name: &str, row: &str) -> ApiResult<(Arc<Served>, usize)> {
    let served = app.get(name)?.clone();
    let len = served.collection().len();
    let row = row
        .parse::<usize>()
        .ok()
        .filter(|&r| r < len)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "row {row:?} is not in collection {} (rows 0..{len})",
                served.name
            ))
        })?;
    Ok((served, row))
}

/// `GET /api/collections/{name}/rows/{row}`: a row's metadata.
pub(crate) async fn row(
    State(app): State<Arc<App>>,
    Path((name, row)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (served, row) = row_of(&app, &name, &row)?;
    let c = served.collection();
    let r = c
        .row(row)
        .ok_or_else(|| ApiError::internal("row vanished"))?;
    let hit = Hit::of_row(row, r, 0.0);
    let mut v = hit_json(&served, &hit, None);
    if let Some(o) = v.as_object_mut() {
        o.remove("score");
        o.remove("truth");
        o.insert("collection".into(), json!(served.name));
    }
    Ok(Json(v))
}
