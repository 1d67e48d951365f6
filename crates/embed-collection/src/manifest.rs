//! `collection.json`: what the collection holds, where it came from, and the size and CRC-32 of
//! every other file, so that a folder damaged by hand is caught when it is opened.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vecindex::Metric;

use crate::error::{Error, Result, damaged};
use crate::npy::Dtype;
use crate::slurm::ShardSpec;

/// The `format` string of `collection.json`.
pub const FORMAT: &str = "image-sim-collection";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "collection.json";
/// The index's file name.
pub const INDEX_FILE: &str = "image.index";
/// The skipped images as CSV (`path,reason`).
pub const SKIPPED_FILE: &str = "skipped.csv";
/// Digits of the shard number in shard file names (`img_emb_00000.npy`): zero-padded so that
/// the lexicographic order readers such as embedding-reader and autofaiss sort by is the
/// numeric order, and fixed so that appends never rename existing shards.
pub const SHARD_DIGITS: usize = 5;

/// The vector index kept beside the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IndexSpec {
    /// Exact search; `image.index` is a FAISS `IndexFlatIP`/`IndexFlatL2` file
    /// (`faiss.read_index` opens it).
    Flat,
    /// Approximate search on an HNSW graph; `image.index` is in vecindex's own format.
    Hnsw {
        /// Neighbours per node and layer.
        m: usize,
        /// Candidate list size while building.
        ef_construction: usize,
        /// Default candidate list size while searching.
        ef_search: usize,
        /// Seed of the insertion order and levels.
        seed: u64,
    },
    /// Exact search over 8-bit codes; a FAISS `IndexScalarQuantizer` (`QT_8bit`) file.
    Sq8,
    /// Exact search over half floats; a FAISS `IndexScalarQuantizer` (`QT_fp16`) file.
    F16,
    /// HNSW over 8-bit codes; a FAISS `IndexHNSWSQ` file.
    #[serde(rename = "hnsw-sq8")]
    HnswSq8 {
        /// Neighbours per node and layer.
        m: usize,
        /// Candidate list size while building.
        ef_construction: usize,
        /// Default candidate list size while searching.
        ef_search: usize,
        /// Seed of the insertion order and levels.
        seed: u64,
    },
    /// Inverted lists with product quantisation; a FAISS `IndexIVFPQ` file.
    IvfPq {
        /// Inverted lists.
        nlist: usize,
        /// Sub-quantisers (bytes per vector).
        m: usize,
        /// Lists searched per query.
        nprobe: usize,
        /// k-means rounds of the coarse quantiser.
        niter: usize,
        /// Seed of the training samples.
        seed: u64,
    },
}

impl IndexSpec {
    /// HNSW with vecindex's default parameters.
    pub fn hnsw_default() -> Self {
        Self::from_plan(&vecindex::Plan::of(
            vecindex::IndexType::Hnsw,
            0,
            1,
            vecindex::HnswParams::default(),
        ))
    }

    /// The spec of what `plan` describes (its HNSW parameters for the HNSW kinds, its IVF-PQ
    /// parameters for IVF-PQ).
    pub fn from_plan(plan: &vecindex::Plan) -> Self {
        let h = plan.hnsw;
        let q = plan.ivfpq;
        match plan.kind {
            vecindex::IndexType::Flat => IndexSpec::Flat,
            vecindex::IndexType::Hnsw => IndexSpec::Hnsw {
                m: h.m,
                ef_construction: h.ef_construction,
                ef_search: h.ef_search,
                seed: h.seed,
            },
            vecindex::IndexType::Sq8 => IndexSpec::Sq8,
            vecindex::IndexType::F16 => IndexSpec::F16,
            vecindex::IndexType::HnswSq8 => IndexSpec::HnswSq8 {
                m: h.m,
                ef_construction: h.ef_construction,
                ef_search: h.ef_search,
                seed: h.seed,
            },
            vecindex::IndexType::IvfPq => IndexSpec::IvfPq {
                nlist: q.nlist,
                m: q.m,
                nprobe: q.nprobe,
                niter: q.niter,
                seed: q.seed,
            },
        }
    }

    /// The kind, as vecindex names it.
    pub fn kind(&self) -> vecindex::IndexType {
        match self {
            IndexSpec::Flat => vecindex::IndexType::Flat,
            IndexSpec::Hnsw { .. } => vecindex::IndexType::Hnsw,
            IndexSpec::Sq8 => vecindex::IndexType::Sq8,
            IndexSpec::F16 => vecindex::IndexType::F16,
            IndexSpec::HnswSq8 { .. } => vecindex::IndexType::HnswSq8,
            IndexSpec::IvfPq { .. } => vecindex::IndexType::IvfPq,
        }
    }

    /// What vecindex builds for this spec over `rows` vectors of `dim` (the IVF-PQ
    /// parameters are the spec's, not recomputed for the size).
    pub(crate) fn plan(&self, rows: usize, dim: usize) -> vecindex::Plan {
        let mut plan = vecindex::Plan::of(
            self.kind(),
            rows,
            dim,
            self.hnsw_params().unwrap_or_default(),
        );
        if let IndexSpec::IvfPq {
            nlist,
            m,
            nprobe,
            niter,
            seed,
        } = *self
        {
            plan.ivfpq = vecindex::ivf::IvfPqOptions {
                nlist,
                m,
                nprobe,
                niter,
                seed,
            };
        }
        plan
    }

    pub(crate) fn hnsw_params(&self) -> Option<vecindex::HnswParams> {
        match *self {
            IndexSpec::Hnsw {
                m,
                ef_construction,
                ef_search,
                seed,
            }
            | IndexSpec::HnswSq8 {
                m,
                ef_construction,
                ef_search,
                seed,
            } => Some(vecindex::HnswParams {
                m,
                ef_construction,
                ef_search,
                seed,
            }),
            IndexSpec::Flat | IndexSpec::Sq8 | IndexSpec::F16 | IndexSpec::IvfPq { .. } => None,
        }
    }
}

/// Where the rows of a collection came from: the image list (by digest) and, for a shard
/// written by one task of N, which shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Digest of the full image list (see [`crate::list_digest`]).
    pub list_digest: String,
    /// Number of images in the full list.
    pub list_len: u64,
    /// Which part of the list this collection covers; `None` for the whole list.
    pub shard: Option<ShardSpec>,
}

/// The identity of a collection, given by the caller when creating one: appends and merges
/// refuse collections whose identity differs.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// The model id (e.g. `openai/clip-vit-base-patch32`).
    pub model_id: String,
    /// Digest of the weights file (e.g. `sha256:...`).
    pub weights_digest: String,
    /// The preprocessing, as the caller describes it (a string or a structure).
    pub preprocessing: serde_json::Value,
    /// Vector dimension.
    pub dim: usize,
    /// How vectors are compared.
    pub metric: Metric,
    /// How the shards store the vectors.
    pub dtype: Dtype,
    /// The index kept beside the shards.
    pub index: IndexSpec,
    /// Where the rows come from (the image list, and the shard for a sharded build).
    pub source: Option<Source>,
    /// The program that writes the collection, e.g. `image-sim 0.1.0`.
    pub tool: String,
}

impl CollectionInfo {
    /// Checks that `other` describes vectors this collection can hold next to its own: same
    /// model, weights, preprocessing, dimension, metric, dtype and index. Names the first field
    /// that differs.
    pub fn check_compatible(&self, other: &CollectionInfo) -> Result<()> {
        let differs = |what: &str, a: String, b: String| {
            Error::Mismatch(format!("{what} differs: the collection has {a}, given {b}"))
        };
        if self.model_id != other.model_id {
            return Err(differs(
                "model id",
                self.model_id.clone(),
                other.model_id.clone(),
            ));
        }
        if self.weights_digest != other.weights_digest {
            return Err(differs(
                "weights digest",
                self.weights_digest.clone(),
                other.weights_digest.clone(),
            ));
        }
        if self.preprocessing != other.preprocessing {
            return Err(differs(
                "preprocessing",
                self.preprocessing.to_string(),
                other.preprocessing.to_string(),
            ));
        }
        if self.dim != other.dim {
            return Err(differs(
                "dimension",
                self.dim.to_string(),
                other.dim.to_string(),
            ));
        }
        if self.metric != other.metric {
            return Err(differs(
                "metric",
                self.metric.to_string(),
                other.metric.to_string(),
            ));
        }
        if self.dtype != other.dtype {
            return Err(differs(
                "dtype",
                self.dtype.to_string(),
                other.dtype.to_string(),
            ));
        }
        if self.index != other.index {
            return Err(differs(
                "index",
                format!("{:?}", self.index),
                format!("{:?}", other.index),
            ));
        }
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > vecindex::MAX_DIM {
            return Err(Error::Invalid(format!(
                "dimension {} outside 1..={}",
                self.dim,
                vecindex::MAX_DIM
            )));
        }
        if let Some(p) = self.index.hnsw_params() {
            p.validate()?;
        }
        if let IndexSpec::IvfPq { nlist, m, .. } = self.index
            && (nlist == 0 || m == 0 || !self.dim.is_multiple_of(m))
        {
            return Err(Error::Invalid(format!(
                "IVF-PQ with {nlist} lists and {m} sub-quantisers for dimension {}",
                self.dim
            )));
        }
        if let Some(ShardSpec { index, count }) = self.source.as_ref().and_then(|s| s.shard)
            && index >= count
        {
            return Err(Error::Invalid(format!("shard {index} of {count}")));
        }
        Ok(())
    }
}

/// One embedding shard and its metadata shard (same row count, rows in the same order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The `.npy` file, relative to the collection folder.
    pub embeddings: String,
    /// The `.parquet` file, relative to the collection folder.
    pub metadata: String,
    /// Number of rows.
    pub rows: u64,
}

/// An image the builder could not embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The path as given.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The size and checksum of one file of the collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the collection folder, `/`-separated.
    pub path: String,
    /// Length in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the whole file, 8 lowercase hex digits.
    pub crc32: String,
}

impl FileEntry {
    pub(crate) fn new(path: impl Into<String>, bytes: u64, crc: u32) -> Self {
        Self {
            path: path.into(),
            bytes,
            crc32: format!("{crc:08x}"),
        }
    }
}

/// The content of `collection.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// The program that wrote it.
    pub tool: String,
    /// Seconds since the Unix epoch when the version was committed.
    pub committed_unix: u64,
    /// The model id.
    pub model_id: String,
    /// Digest of the weights.
    pub weights_digest: String,
    /// The preprocessing, as the writer described it.
    pub preprocessing: serde_json::Value,
    /// Vector dimension.
    pub dim: usize,
    /// `ip` or `l2`.
    pub metric: String,
    /// `float32` or `float16`.
    pub dtype: Dtype,
    /// The index kind and its parameters.
    pub index: IndexSpec,
    /// Total number of vectors (= rows of the metadata).
    pub rows: u64,
    /// The shards in row order.
    pub shards: Vec<ShardEntry>,
    /// Where the rows came from.
    pub source: Option<Source>,
    /// Images that were not embedded, and why.
    pub skipped: Vec<Skipped>,
    /// Every file of the collection but this one.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The identity part, as a [`CollectionInfo`].
    pub fn info(&self) -> Result<CollectionInfo> {
        Ok(CollectionInfo {
            model_id: self.model_id.clone(),
            weights_digest: self.weights_digest.clone(),
            preprocessing: self.preprocessing.clone(),
            dim: self.dim,
            metric: self.metric.parse()?,
            dtype: self.dtype,
            index: self.index,
            source: self.source.clone(),
            tool: self.tool.clone(),
        })
    }

    /// Parses and checks the manifest's own consistency (format, counts, file list).
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| damaged(path, format!("not a valid manifest: {e}")))?;
        if m.format != FORMAT {
            return Err(damaged(
                path,
                format!("format {:?}, not {FORMAT:?}", m.format),
            ));
        }
        if m.format_version != FORMAT_VERSION {
            return Err(damaged(
                path,
                format!(
                    "format version {} (this build reads {FORMAT_VERSION})",
                    m.format_version
                ),
            ));
        }
        m.metric
            .parse::<Metric>()
            .map_err(|e| damaged(path, e.to_string()))?;
        let sum: u64 = m.shards.iter().map(|s| s.rows).sum();
        if sum != m.rows {
            return Err(damaged(
                path,
                format!("shards hold {sum} rows, manifest says {}", m.rows),
            ));
        }
        for f in &m.files {
            if !safe_relative(&f.path) {
                return Err(damaged(
                    path,
                    format!("file path {:?} leaves the folder", f.path),
                ));
            }
        }
        let listed = |p: &str| m.files.iter().any(|f| f.path == p);
        for s in &m.shards {
            for p in [&s.embeddings, &s.metadata] {
                if !listed(p) {
                    return Err(damaged(path, format!("shard file {p} has no checksum")));
                }
            }
        }
        for p in [INDEX_FILE, SKIPPED_FILE] {
            if !listed(p) {
                return Err(damaged(path, format!("{p} has no checksum")));
            }
        }
        Ok(m)
    }

    pub(crate) fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// A relative `/`-separated path that stays inside the folder.
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The shard file names for shard number `k`.
pub(crate) fn shard_names(k: usize) -> (String, String) {
    (
        format!("img_emb/img_emb_{k:0SHARD_DIGITS$}.npy"),
        format!("metadata/metadata_{k:0SHARD_DIGITS$}.parquet"),
    )
}

/// `skipped.csv`: a `path,reason` header, then one quoted row per skipped image.
pub(crate) fn skipped_csv(skipped: &[Skipped]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::from("path,reason\n");
    for s in skipped {
        out.push_str(&quote(&s.path));
        out.push(',');
        out.push_str(&quote(&s.reason));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Shard names sort lexicographically in numeric order, as embedding readers list them.
    #[test]
    fn shard_names_sort_numerically() {
        let mut names: Vec<String> = (0..1200).map(|k| shard_names(k).0).collect();
        let numeric = names.clone();
        names.sort();
        assert_eq!(names, numeric);
        assert_eq!(shard_names(7).0, "img_emb/img_emb_00007.npy");
        assert_eq!(shard_names(7).1, "metadata/metadata_00007.parquet");
    }

    /// Fields with commas, quotes or line breaks are quoted as CSV readers expect.
    #[test]
    fn skipped_csv_quotes_fields() {
        let csv = skipped_csv(&[
            Skipped {
                path: "a,b.jpg".into(),
                reason: "bad \"header\"".into(),
            },
            Skipped {
                path: "c.png".into(),
                reason: "truncated".into(),
            },
        ]);
        assert_eq!(
            csv,
            "path,reason\n\"a,b.jpg\",\"bad \"\"header\"\"\"\nc.png,truncated\n"
        );
    }

    /// Paths that would leave the folder are not relative paths of a collection.
    #[test]
    fn only_inner_relative_paths_are_safe() {
        assert!(safe_relative("img_emb/img_emb_00000.npy"));
        for p in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
            assert!(!safe_relative(p), "{p}");
        }
    }
}
