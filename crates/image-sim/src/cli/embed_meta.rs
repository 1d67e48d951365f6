//! The metadata `embed` writes beside its embeddings (`OUT.meta.json`), which `merge` reads.

use embed_pipeline::Shard;

/// The metadata file written next to the embeddings (`OUT.meta.json`), read by `merge`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct EmbedMeta {
    /// The model's identifier.
    pub model_id: String,
    /// Embedding width.
    pub dim: usize,
    /// Rows written.
    pub rows: usize,
    /// Images skipped.
    pub skipped: usize,
    /// Images in the whole (unsharded) list.
    pub list_len: usize,
    /// The shard this file holds.
    pub shard: Shard,
    /// Digest of the whole list and model (equal across the shards of one extraction).
    pub extraction: String,
    /// Whether rows are L2-normalised.
    pub normalized: bool,
}
