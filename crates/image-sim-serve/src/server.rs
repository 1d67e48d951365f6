//! The router, the layer every request passes (timeout, JSON errors, CORS, metrics), and the
//! running server with its graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::accept::{self, ConnectionLimits};
use crate::config::{CollectionSpec, ServeConfig};
use crate::error::{ApiError, Error, Result};
use crate::state::App;
use crate::{clip_api, files, own_api};

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(own_api::page))
        .route("/indices-list", get(clip_api::indices_list))
        .route("/knn-service", post(clip_api::knn_service))
        .route("/metadata", post(clip_api::metadata_service))
        .route("/health", get(own_api::health))
        .route("/metrics", get(own_api::metrics))
        .route("/api/collections", get(own_api::collections))
        .route("/api/query", post(own_api::query))
        .route("/api/collections/{name}/rows/{row}", get(own_api::row))
        .route(
            "/api/collections/{name}/rows/{row}/image",
            get(files::image),
        )
        .route(
            "/api/collections/{name}/rows/{row}/thumbnail",
            get(files::thumbnail),
        )
        .route("/api/collections/{name}/images", post(files::add_image))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(middleware::from_fn_with_state(app.clone(), every_request))
        .with_state(app)
}

/// The metrics label of a path: the route pattern, so that the label set stays bounded.
fn route_label(path: &str) -> &'static str {
    const EXACT: [&str; 8] = [
        "/",
        "/indices-list",
        "/knn-service",
        "/metadata",
        "/health",
        "/metrics",
        "/api/collections",
        "/api/query",
    ];
    if let Some(p) = EXACT.iter().find(|p| **p == path) {
        return p;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "collections", _, "rows", _] => "/api/collections/{name}/rows/{row}",
        ["api", "collections", _, "rows", _, "image"] => "/api/collections/{name}/rows/{row}/image",
        ["api", "collections", _, "rows", _, "thumbnail"] => {
            "/api/collections/{name}/rows/{row}/thumbnail"
        }
        ["api", "collections", _, "images"] => "/api/collections/{name}/images",
        _ => "other",
    }
}

/// Every request: CORS (clip-front runs on another origin), the timeout, errors as JSON, and
/// the metrics.
async fn every_request(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_label(req.uri().path());
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, authorization"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        let timeout = app.config.request_timeout;
        match tokio::time::timeout(timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::busy(
                format!("the request took longer than {} s", timeout.as_secs_f64()),
                1,
            )
            .into_response(),
        }
    };
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        // Errors made by the framework (405, a bad path parameter): the same JSON shape.
        let reason = status.canonical_reason().unwrap_or("error").to_string();
        resp = ApiError::new(status, reason.to_lowercase()).into_response();
    }
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    app.metrics
        .record(route, status.as_u16(), start.elapsed().as_secs_f64());
    resp
}

/// A running service. Dropping it shuts it down gracefully, as [`Server::shutdown`] does.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Opens every collection, loads each model on its own thread, binds `config.addr` and
    /// starts serving in the background. Returns once the service answers.
    pub fn start(config: ServeConfig, collections: Vec<CollectionSpec>) -> Result<Self> {
        let listener = std::net::TcpListener::bind(config.addr).map_err(|source| Error::Io {
            context: format!("cannot listen on {}", config.addr),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            context: "cannot read the bound address".into(),
            source,
        })?;
        listener.set_nonblocking(true).map_err(|source| Error::Io {
            context: "cannot configure the socket".into(),
            source,
        })?;
        let handle_signals = config.handle_signals;
        let limits = ConnectionLimits {
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections,
            // Every request ends by its timeout; a little more for the answer to go out.
            drain_timeout: config.request_timeout + Duration::from_secs(5),
        };
        let threads = config.decode_threads.clamp(2, 64);
        let app = Arc::new(App::open(config, collections)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(256)
            .thread_name("serve")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                context: "cannot start the async runtime".into(),
                source,
            })?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("serve-main".into())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).map_err(|source| {
                            Error::Io {
                                context: "cannot use the socket".into(),
                                source,
                            }
                        })?;
                    let shutdown = shutdown_signal(stop_rx, handle_signals);
                    accept::serve(listener, router(app.clone()), limits, shutdown).await;
                    Ok::<_, Error>(app)
                });
                // In-flight requests are answered; now let the model threads finish.
                match result {
                    Ok(app) => {
                        for c in &app.collections {
                            c.worker.stop();
                        }
                        log::info!("stopped");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            })
            .map_err(|source| Error::Io {
                context: "cannot start the server thread".into(),
                source,
            })?;
        log::info!("listening on http://{addr}");
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address the service listens on (the port is known here when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, answers the requests in flight, stops the model threads.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_and_join()
    }

    /// Blocks until the service stops (on SIGTERM or SIGINT when `handle_signals` is set).
    pub fn wait(mut self) -> Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::Config("the server thread panicked".into()))?,
            None => Ok(()),
        }
    }

    fn stop_and_join(&mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| Error::Config("the server thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            log::error!("{e}");
        }
    }
}

async fn shutdown_signal(stop: oneshot::Receiver<()>, handle_signals: bool) {
    let stopped = async {
        // A dropped sender (the `Server` handle forgotten) is not a request to stop.
        if stop.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    if !handle_signals {
        stopped.await;
        return;
    }
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stopped => {}
        () = term => log::info!("SIGTERM: finishing the requests in flight"),
        _ = tokio::signal::ctrl_c() => log::info!("SIGINT: finishing the requests in flight"),
    }
}
