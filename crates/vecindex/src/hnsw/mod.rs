//! Approximate search on an HNSW graph this crate builds, searches and stores itself.
//!
//! - `index`: `HnswIndex`, the public type, and `HnswParams`;
//! - `sq_index`: `HnswSqIndex`, the graph over scalar-quantised codes, and `faiss` its FAISS
//!   `IndexHNSWSQ` files;
//! - `store`: what the graph's vectors are stored as (f32 rows or codes), which search and
//!   insertion are generic over;
//! - `graph`: the graph in flat arrays and the HNSW search on it;
//! - `distance`: what the graph measures, and the heap keys searches order by;
//! - `build`: parallel insertion (hnswlib's and FAISS's algorithm), and `finish`, what
//!   follows it (orphans linked back, lists sorted);
//! - `dump`: the `hnsw_rs` 0.3 dump an HNSW file embeds, read and written;
//! - `hnsw_rs_compare` (feature `hnsw-rs-compare`): `hnsw_rs`'s insertion and search, to
//!   compare against.

pub(crate) mod build;
pub(crate) mod distance;
pub(crate) mod dump;
mod faiss;
pub(crate) mod finish;
pub(crate) mod graph;
#[cfg(feature = "hnsw-rs-compare")]
pub(crate) mod hnsw_rs_compare;
pub(crate) mod index;
mod sq_index;
pub(crate) mod store;

#[cfg(feature = "hnsw-rs-compare")]
pub use hnsw_rs_compare::HnswRsSearcher;
pub use index::{HnswIndex, HnswParams, MAX_EF, MAX_M};
pub use sq_index::HnswSqIndex;
