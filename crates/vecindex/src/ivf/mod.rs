//! Inverted-file indexes over compressed vectors: [`IvfPqIndex`], FAISS's `IndexIVFPQ`
//! (k-means coarse quantiser, 8-bit product-quantised residuals, `nprobe` lists searched),
//! with FAISS `IwPQ` files read and written.

mod faiss;
mod index;
mod kmeans;
mod pq;
mod small;

pub use index::{IvfPqIndex, IvfPqOptions};

/// The fewest vectors IVF-PQ trains on (each sub-quantiser's 256 centroids; also at least
/// `nlist`).
pub const MIN_TRAINING_ROWS: usize = pq::KSUB;
pub use pq::ProductQuantizer;
