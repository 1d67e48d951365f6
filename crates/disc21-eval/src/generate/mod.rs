//! A generator of small DISC21-shaped data sets, for tests and walkthroughs.
//!
//! References are procedural pictures (textured backgrounds with coloured shapes); queries are
//! either edited copies of a reference (crop, rescale, rotation, flip, colour change, blur,
//! JPEG re-encoding, an overlaid caption or shapes, pasting into another picture: 1–3 of these
//! each) or pictures with no copy among the references. Files and ground truth follow the
//! official layout (`references/R*.jpg`, `dev_queries/Q*.jpg`, `public_ground_truth.csv`) or
//! SSCD's. The output depends only on the options: every image has its own random stream
//! derived from the seed, so images can be drawn in parallel.
//!
//! ```no_run
//! use disc21_eval::generate::{GenerateOptions, generate};
//!
//! let summary = generate(std::path::Path::new("data/mini"), &GenerateOptions::default())?;
//! println!("{} references, {} queries", summary.references, summary.queries);
//! # Ok::<(), disc21_eval::generate::GenerateError>(())
//! ```

mod draw;
pub(crate) mod font;
mod transform;

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use image_sim::synthetic::photo_like;
pub use transform::Transform;

use crate::metrics::{GroundTruth, MetricsError, write_ground_truth};

/// What can go wrong while generating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// Writing failed.
    #[error("{}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding an image failed.
    #[error("encoding {}", .path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The output already holds a data set and `force` is off.
    #[error("{} already exists; pass --force to overwrite it", .0.display())]
    Exists(PathBuf),
    /// The options are inconsistent.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// Writing the ground truth failed.
    #[error(transparent)]
    GroundTruth(#[from] MetricsError),
}

/// Result alias of this module.
pub type Result<T, E = GenerateError> = std::result::Result<T, E>;

/// How queries are made from references.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryKind {
    /// 1–3 random edits per copy (the default).
    #[default]
    Edited,
    /// Byte-identical copies of the reference file: any deterministic embedder must find them.
    Exact,
}

/// Which folder layout to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputLayout {
    /// `references/`, `dev_queries/`, `public_ground_truth.csv`.
    #[default]
    Official,
    /// `val_ref/`, `val_query/`, `val_groundtruth_matches.csv`.
    Sscd,
}

/// `edited` or `exact`.
impl std::str::FromStr for QueryKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "edited" => Ok(Self::Edited),
            "exact" => Ok(Self::Exact),
            other => Err(format!("`{other}`: expected edited or exact")),
        }
    }
}

/// `official` or `sscd`.
impl std::str::FromStr for OutputLayout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "official" => Ok(Self::Official),
            "sscd" => Ok(Self::Sscd),
            other => Err(format!("`{other}`: expected official or sscd")),
        }
    }
}

impl OutputLayout {
    fn paths(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Official => ("references", "dev_queries", "public_ground_truth.csv"),
            Self::Sscd => ("val_ref", "val_query", "val_groundtruth_matches.csv"),
        }
    }
}

/// Largest image side `generate` makes (a DISC21 image is at most a few thousand pixels).
pub const MAX_SIDE: u32 = 8192;

/// Options of [`generate`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GenerateOptions {
    /// Number of reference images.
    pub references: usize,
    /// Number of query images (copies and non-copies).
    pub queries: usize,
    /// Fraction of the queries that are copies of a reference (DISC21's dev set: about 0.2).
    pub copy_fraction: f64,
    /// Seed of everything random.
    pub seed: u64,
    /// How copies are made.
    pub query_kind: QueryKind,
    /// Folder layout.
    pub layout: OutputLayout,
    /// Smallest side of a generated picture, in pixels.
    pub min_side: u32,
    /// Largest side of a generated picture, in pixels (at most [`MAX_SIDE`]).
    pub max_side: u32,
    /// JPEG quality of the written files.
    pub jpeg_quality: u8,
    /// Replace an existing data set in the output folder.
    pub force: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            references: 200,
            queries: 100,
            copy_fraction: 0.5,
            seed: 0,
            query_kind: QueryKind::Edited,
            layout: OutputLayout::Official,
            min_side: 160,
            max_side: 384,
            jpeg_quality: 90,
            force: false,
        }
    }
}

/// One generated query, as recorded in `generation.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct QueryRecord {
    /// Query id.
    pub id: String,
    /// The reference it copies, if any.
    pub reference: Option<String>,
    /// The edits applied, in order.
    pub transforms: Vec<Transform>,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GenerateSummary {
    /// Number of references.
    pub references: usize,
    /// Number of queries.
    pub queries: usize,
    /// Number of queries that copy a reference.
    pub copies: usize,
    /// The references folder.
    pub references_dir: PathBuf,
    /// The queries folder.
    pub queries_dir: PathBuf,
    /// The ground-truth CSV.
    pub ground_truth: PathBuf,
    /// Every query and how it was made.
    pub records: Vec<QueryRecord>,
}

/// The name of the manifest [`generate`] writes next to the images.
pub const MANIFEST: &str = "generation.json";

/// A per-image random stream: the same `(seed, stream, index)` always gives the same image,
/// whatever order the images are drawn in.
fn rng_for(seed: u64, stream: u64, index: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&stream.to_le_bytes());
    key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

pub(crate) fn encode_jpeg(img: &image::RgbImage, quality: u8) -> image::ImageResult<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(img)?;
    Ok(bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn random_size(rng: &mut impl Rng, o: &GenerateOptions) -> (u32, u32) {
    (
        rng.gen_range(o.min_side..=o.max_side),
        rng.gen_range(o.min_side..=o.max_side),
    )
}

/// Writes a data set into `out` (created if needed). Refuses to touch an existing data set
/// unless [`GenerateOptions::force`] is set; then only the generator's own folders and files
/// are replaced.
pub fn generate(out: &Path, options: &GenerateOptions) -> Result<GenerateSummary> {
    let o = options;
    if o.references == 0
        || o.min_side < 32
        || o.min_side > o.max_side
        || o.max_side > MAX_SIDE
        || !(0.0..=1.0).contains(&o.copy_fraction)
    {
        return Err(GenerateError::InvalidOptions(format!(
            "need references ≥ 1, 32 ≤ min_side ≤ max_side ≤ {MAX_SIDE} and copy_fraction in [0, 1] (got {}, {}..{}, {})",
            o.references, o.min_side, o.max_side, o.copy_fraction
        )));
    }
    let n_copies = ((o.queries as f64 * o.copy_fraction).round() as usize).min(o.queries);
    if n_copies > o.references {
        return Err(GenerateError::InvalidOptions(format!(
            "{n_copies} copies need at least as many references (each copies a different one), got {}",
            o.references
        )));
    }
    let (ref_name, query_name, gt_name) = o.layout.paths();
    let refs_dir = out.join(ref_name);
    let queries_dir = out.join(query_name);
    let gt_path = out.join(gt_name);
    let manifest = out.join(MANIFEST);
    let ours = [&refs_dir, &queries_dir, &gt_path, &manifest];
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Io { path, source }
    };
    if let Some(existing) = ours.iter().find(|p| p.exists()) {
        if !o.force {
            return Err(GenerateError::Exists((*existing).clone()));
        }
        for p in ours {
            if p.is_dir() {
                std::fs::remove_dir_all(p).map_err(io(p))?;
            } else if p.exists() {
                std::fs::remove_file(p).map_err(io(p))?;
            }
        }
    }
    std::fs::create_dir_all(&refs_dir).map_err(io(&refs_dir))?;
    std::fs::create_dir_all(&queries_dir).map_err(io(&queries_dir))?;

    // The plan: which query copies which reference, decided up front from the seed.
    let mut plan_rng = rng_for(o.seed, 0, 0);
    let mut copied: Vec<usize> = (0..o.references).collect();
    copied.shuffle(&mut plan_rng);
    copied.truncate(n_copies);
    let mut sources: Vec<Option<usize>> = copied
        .into_iter()
        .map(Some)
        .chain(std::iter::repeat_n(None, o.queries - n_copies))
        .collect();
    sources.shuffle(&mut plan_rng);

    let ref_id = |i: usize| format!("R{i:06}");
    let query_id = |i: usize| format!("Q{i:05}");

    // References (kept in memory for the copies: small sets only).
    let references: Vec<(image::RgbImage, Vec<u8>)> = (0..o.references)
        .into_par_iter()
        .map(|i| -> Result<_> {
            let mut rng = rng_for(o.seed, 1, i);
            let (w, h) = random_size(&mut rng, o);
            let img = draw::picture(&mut rng, w, h);
            let path = refs_dir.join(format!("{}.jpg", ref_id(i)));
            let bytes =
                encode_jpeg(&img, o.jpeg_quality).map_err(|source| GenerateError::Encode {
                    path: path.clone(),
                    source,
                })?;
            write_file(&path, &bytes)?;
            Ok((img, bytes))
        })
        .collect::<Result<_>>()?;

    let records: Vec<QueryRecord> = sources
        .par_iter()
        .enumerate()
        .map(|(i, source)| -> Result<QueryRecord> {
            let mut rng = rng_for(o.seed, 2, i);
            let path = queries_dir.join(format!("{}.jpg", query_id(i)));
            let mut transforms = Vec::new();
            let bytes = match (source, o.query_kind) {
                (Some(r), QueryKind::Exact) => references[*r].1.clone(),
                (Some(r), QueryKind::Edited) => {
                    transforms = transform::pick(&mut rng);
                    let mut img = references[*r].0.clone();
                    for &t in &transforms {
                        img = transform::apply(t, img, &mut rng);
                    }
                    encode_jpeg(&img, rng.gen_range(70..=95)).map_err(|source| {
                        GenerateError::Encode {
                            path: path.clone(),
                            source,
                        }
                    })?
                }
                (None, _) => {
                    let (w, h) = random_size(&mut rng, o);
                    let img = draw::picture(&mut rng, w, h);
                    encode_jpeg(&img, o.jpeg_quality).map_err(|source| GenerateError::Encode {
                        path: path.clone(),
                        source,
                    })?
                }
            };
            write_file(&path, &bytes)?;
            Ok(QueryRecord {
                id: query_id(i),
                reference: source.map(ref_id),
                transforms,
            })
        })
        .collect::<Result<_>>()?;

    let gt = GroundTruth::from_rows(records.iter().map(|r| (r.id.clone(), r.reference.clone())))?;
    write_ground_truth(&gt_path, &gt)?;
    let summary = GenerateSummary {
        references: o.references,
        queries: o.queries,
        copies: n_copies,
        references_dir: refs_dir,
        queries_dir,
        ground_truth: gt_path,
        records,
    };
    let json = serde_json::json!({ "options": o, "summary": &summary });
    let text = serde_json::to_vec_pretty(&json).map_err(|e| GenerateError::Io {
        path: manifest.clone(),
        source: std::io::Error::other(e),
    })?;
    write_file(&manifest, &text)?;
    Ok(summary)
}
