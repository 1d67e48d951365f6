//! The model thread of one collection: it owns the [`Embedder`] (which is `Send` but not
//! `Sync`), takes preprocessed images from a bounded queue and embeds them in batches of up to
//! `max_batch`, waiting at most `batch_wait` after the first image for more to arrive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use embed_core::ndarray::{Array3, Axis};
use embed_core::{Embedder, PreprocessSpec};
use tokio::sync::oneshot;

use crate::metrics::ModelMetrics;

/// Builds a collection's embedder; called once, on the model thread (libtorch keeps
/// per-thread state, so the model is created where it runs).
pub type EmbedderFactory = Box<dyn FnOnce() -> Result<Box<dyn Embedder>, String> + Send + 'static>;

/// One image waiting for the model.
struct Job {
    pixels: Array3<f32>,
    reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// What the model thread tells about its model once it is loaded.
#[derive(Debug, Clone)]
pub(crate) struct ModelInfo {
    pub(crate) model_id: String,
    pub(crate) dim: usize,
    pub(crate) spec: PreprocessSpec,
}

/// Why an image was not embedded.
#[derive(Debug)]
pub(crate) enum EmbedError {
    /// The queue is full.
    Busy,
    /// The model thread is gone or the model failed.
    Failed(String),
}

/// The handle requests use to reach the model thread.
pub(crate) struct ModelWorker {
    tx: Mutex<Option<SyncSender<Job>>>,
    depth: Arc<AtomicUsize>,
    pub(crate) info: ModelInfo,
    pub(crate) metrics: Arc<ModelMetrics>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ModelWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWorker")
            .field("info", &self.info)
            .finish()
    }
}

impl ModelWorker {
    /// Starts the model thread, builds the model on it, and returns once it is loaded.
    pub(crate) fn start(
        name: &str,
        factory: EmbedderFactory,
        queue: usize,
        max_batch: usize,
        batch_wait: Duration,
    ) -> Result<Self, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(queue.max(1));
        let (info_tx, info_rx) = std::sync::mpsc::channel::<Result<ModelInfo, String>>();
        let depth = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(ModelMetrics::new());
        let (d, m) = (depth.clone(), metrics.clone());
        let thread = std::thread::Builder::new()
            .name(format!("model-{name}"))
            .spawn(move || {
                let model = match factory() {
                    Ok(model) => model,
                    Err(e) => {
                        let _ = info_tx.send(Err(e));
                        return;
                    }
                };
                let info = ModelInfo {
                    model_id: model.model_id().to_string(),
                    dim: model.dim(),
                    spec: model.preprocess_spec().clone(),
                };
                let _ = info_tx.send(Ok(info));
                run(model.as_ref(), &rx, &d, &m, max_batch.max(1), batch_wait);
            })
            .map_err(|e| format!("cannot start the model thread: {e}"))?;
        let info = info_rx
            .recv()
            .map_err(|_| "the model thread stopped while loading the model".to_string())??;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            depth,
            info,
            metrics,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Images waiting in the queue.
    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Queues a preprocessed image and waits for its L2-normalised embedding.
    pub(crate) async fn embed(&self, pixels: Array3<f32>) -> Result<Vec<f32>, EmbedError> {
        let (reply, rx) = oneshot::channel();
        {
            let guard = self
                .tx
                .lock()
                .map_err(|_| EmbedError::Failed("model queue poisoned".into()))?;
            let tx = guard
                .as_ref()
                .ok_or_else(|| EmbedError::Failed("the service is shutting down".into()))?;
            // Counted before sending so the thread never decrements below zero.
            self.depth.fetch_add(1, Ordering::Relaxed);
            match tx.try_send(Job { pixels, reply }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.depth.fetch_sub(1, Ordering::Relaxed);
                    self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(EmbedError::Busy);
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.depth.fetch_sub(1, Ordering::Relaxed);
                    return Err(EmbedError::Failed("the model thread stopped".into()));
                }
            }
        }
        match rx.await {
            Ok(r) => r.map_err(EmbedError::Failed),
            Err(_) => Err(EmbedError::Failed("the model thread stopped".into())),
        }
    }

    /// Closes the queue and waits for the thread to finish the images it holds.
    pub(crate) fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn run(
    model: &dyn Embedder,
    rx: &Receiver<Job>,
    depth: &AtomicUsize,
    metrics: &ModelMetrics,
    max_batch: usize,
    batch_wait: Duration,
) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        depth.fetch_sub(1, Ordering::Relaxed);
        let shape = first.pixels.shape().to_vec();
        let mut batch = vec![first];
        let deadline = Instant::now() + batch_wait;
        while batch.len() < max_batch {
            let next = match rx.try_recv() {
                Ok(j) => Ok(j),
                Err(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    rx.recv_timeout(left)
                }
            };
            match next {
                Ok(j) => {
                    depth.fetch_sub(1, Ordering::Relaxed);
                    if j.pixels.shape() == shape.as_slice() {
                        batch.push(j);
                    } else {
                        // Another output size (a spec without a fixed crop): next batch.
                        depth.fetch_add(1, Ordering::Relaxed);
                        held = Some(j);
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        metrics.batch_size.observe(batch.len() as f64);
        let result = embed_batch(model, &batch);
        metrics
            .embedded
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        match result {
            Ok(rows) => {
                for (job, row) in batch.into_iter().zip(rows) {
                    let _ = job.reply.send(Ok(row));
                }
            }
            Err(e) => {
                log::error!("model {}: {e}", model.model_id());
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn embed_batch(model: &dyn Embedder, batch: &[Job]) -> Result<Vec<Vec<f32>>, String> {
    let views: Vec<_> = batch.iter().map(|j| j.pixels.view()).collect();
    let stacked = embed_core::ndarray::stack(Axis(0), &views).map_err(|e| e.to_string())?;
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        model.embed_batch(stacked.view())
    }))
    .map_err(|_| "the model panicked".to_string())?
    .map_err(|e| format!("the model failed: {e}"))?;
    if out.dim() != (batch.len(), model.dim()) {
        return Err(format!(
            "the model returned {:?} for {} images of dimension {}",
            out.dim(),
            batch.len(),
            model.dim()
        ));
    }
    Ok(out
        .rows()
        .into_iter()
        .map(|r| {
            let norm = r
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt();
            let inv = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
            r.iter().map(|&x| x * inv).collect()
        })
        .collect())
}
