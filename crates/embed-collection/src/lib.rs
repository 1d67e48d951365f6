//! Embedding collections: one self-describing folder per set of image embeddings, in the
//! layout clip-retrieval writes and autofaiss, embedding-reader, pandas, Spark and DuckDB read.
//!
//! ```text
//! DIR/img_emb/img_emb_00000.npy             vectors, L2-normalised, float32 or float16
//! DIR/metadata/metadata_00000.parquet       image_path, id, width, height; same rows, same order
//! DIR/image.index                           FAISS file (flat, SQ8/fp16, HNSW-SQ8, IVF-PQ) or vecindex HNSW
//! DIR/skipped.csv                           path,reason of images that were not embedded
//! DIR/collection.json                       model, weights digest, preprocessing, dim, metric,
//!                                           index, counts, source, skipped, CRC-32 of each file
//! ```
//! A vector's id is its row across the shards in name order (zero-padded, so lexicographic
//! order is numeric order), as clip-retrieval counts it.
//!
//! Writing goes through [`CollectionWriter`] ([`create`](CollectionWriter::create),
//! [`replace`](CollectionWriter::replace), [`append`](CollectionWriter::append)) and
//! [`merge_shards`]; each version is committed atomically (see [`commit`] for the protocol):
//! a kill at any moment leaves the previous version or the new one. [`Collection::open`]
//! checks every file against `collection.json` and answers searches with the rows' metadata.
//!
//! ```
//! use embed_collection::{Collection, CollectionInfo, CollectionWriter, Dtype, ImageRow, IndexSpec};
//! let dir = tempfile::tempdir()?;
//! let info = CollectionInfo {
//!     model_id: "test/model".into(),
//!     weights_digest: "sha256:00".into(),
//!     preprocessing: "resize 224".into(),
//!     dim: 2,
//!     metric: vecindex::Metric::InnerProduct,
//!     dtype: Dtype::F32,
//!     index: IndexSpec::Flat,
//!     source: None,
//!     tool: "example".into(),
//! };
//! let mut w = CollectionWriter::create(dir.path(), info)?;
//! let row = |p: &str, id: &str| ImageRow { image_path: p.into(), id: id.into(), width: 4, height: 3 };
//! w.push_batch(&[row("a/x.jpg", "x"), row("b/y.jpg", "y")], &[3.0, 4.0, 0.0, 1.0])?;
//! w.skip("c/broken.jpg", "not an image");
//! w.finish()?;
//! let c = Collection::open(dir.path())?;
//! let hits = c.search(&[1.0, 0.0], 1)?;
//! assert_eq!((hits[0].image.id.as_str(), hits[0].score), ("x", 0.6));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`slurm`] holds what a sharded build on a Slurm cluster needs: the shard of a task from its
//! environment and the submission script.

mod collection;
pub mod commit;
#[cfg(test)]
mod crash_tests;
mod error;
mod faiss_flat;
mod manifest;
mod merge;
mod metadata;
mod npy;
pub mod slurm;
mod writer;

pub use collection::{Collection, LoadedIndex, OpenOptions, SearchHit, Verify};
pub use error::{Error, Result};
pub use manifest::{
    CollectionInfo, FORMAT, FORMAT_VERSION, FileEntry, INDEX_FILE, IndexSpec, MANIFEST_FILE,
    Manifest, SHARD_DIGITS, SKIPPED_FILE, ShardEntry, Skipped, Source,
};
pub use merge::{merge_shards, shard_dirs};
pub use metadata::ImageRow;
pub use npy::Dtype;
pub use slurm::ShardSpec;
pub use writer::{CollectionWriter, WriteOptions};

/// The digest of an image list, recorded by each shard of a sharded build so that a merge
/// refuses shards of different lists: `sha256:` and the hex SHA-256 of the paths, each
/// followed by a newline, in list order.
pub fn list_digest<S: AsRef<str>>(paths: &[S]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in paths {
        h.update(p.as_ref().as_bytes());
        h.update(b"\n");
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
