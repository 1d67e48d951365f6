//! DISC21 folders on disk: which layout a folder uses, which images and ground truth it holds,
//! and which subset a protocol evaluates.
//!
//! Two layouts are recognised:
//! - the official one: `references/R*.jpg`, `dev_queries/Q*.jpg` (or `queries/`), and
//!   `public_ground_truth.csv` (or `dev_ground_truth.csv`, `ground_truth.csv`);
//! - SSCD's: `val_ref/`, `val_query/`, `val_groundtruth_matches.csv`.
//!
//! Any of the three paths can be given explicitly ([`LayoutOverrides`]); the rest is detected.
//!
//! Two protocols select what is evaluated ([`Protocol`]):
//! - the study's: the references in a range (R000000–R149999 by default) and the queries whose
//!   ground-truth reference lies in that range;
//! - the official one: every reference and every ground-truth query, including those without a
//!   copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::metrics::{GroundTruth, MetricsError, read_ground_truth};

/// What can go wrong while reading a data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A folder could not be listed.
    #[error("{}", .path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No known layout matched the folder.
    #[error("{}: {message}", .root.display())]
    UnknownLayout {
        /// The data set folder.
        root: PathBuf,
        /// What was looked for.
        message: String,
    },
    /// The ground truth could not be read.
    #[error(transparent)]
    GroundTruth(#[from] MetricsError),
    /// The ground truth names a query whose image is missing.
    #[error("{count} ground-truth queries have no image in {} (first: {first})", .dir.display())]
    MissingQueries {
        /// The queries folder.
        dir: PathBuf,
        /// How many are missing.
        count: usize,
        /// The first missing id.
        first: String,
    },
    /// A reference selection could not be parsed or selects nothing.
    #[error(
        "invalid reference selection `{0}`: expected N, START-END (e.g. R000000-R149999) or all"
    )]
    Selection(String),
    /// Two image files map to the same id.
    #[error("two images with id {id}: {} and {}", .a.display(), .b.display())]
    DuplicateId {
        /// The id.
        id: String,
        /// One file.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
}

/// Result alias of this module.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// The layout a folder was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// `references/`, `dev_queries/` or `queries/`, `public_ground_truth.csv`.
    Official,
    /// `val_ref/`, `val_query/`, `val_groundtruth_matches.csv`.
    Sscd,
    /// All three paths were given explicitly.
    Explicit,
}

/// Paths that override detection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayoutOverrides {
    /// The references folder.
    pub references: Option<PathBuf>,
    /// The queries folder.
    pub queries: Option<PathBuf>,
    /// The ground-truth CSV.
    pub ground_truth: Option<PathBuf>,
}

/// Where a data set's parts are.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    /// Which layout matched.
    pub kind: LayoutKind,
    /// Folder of the reference images.
    pub references: PathBuf,
    /// Folder of the query images.
    pub queries: PathBuf,
    /// The ground-truth CSV.
    pub ground_truth: PathBuf,
}

const OFFICIAL_REFS: &[&str] = &["references"];
const OFFICIAL_QUERIES: &[&str] = &["dev_queries", "queries"];
const OFFICIAL_GT: &[&str] = &[
    "public_ground_truth.csv",
    "dev_ground_truth.csv",
    "ground_truth.csv",
];
const SSCD_REFS: &[&str] = &["val_ref"];
const SSCD_QUERIES: &[&str] = &["val_query"];
const SSCD_GT: &[&str] = &["val_groundtruth_matches.csv"];

fn first_existing(root: &Path, names: &[&str], dir: bool) -> Option<PathBuf> {
    names
        .iter()
        .map(|n| root.join(n))
        .find(|p| if dir { p.is_dir() } else { p.is_file() })
}

impl Layout {
    /// Detects the layout of `root`; explicit paths in `overrides` win over detection. Fails,
    /// saying what it looked for, when a part cannot be found.
    pub fn detect(root: &Path, overrides: &LayoutOverrides) -> Result<Self> {
        let candidates = [
            (
                LayoutKind::Official,
                OFFICIAL_REFS,
                OFFICIAL_QUERIES,
                OFFICIAL_GT,
            ),
            (LayoutKind::Sscd, SSCD_REFS, SSCD_QUERIES, SSCD_GT),
        ];
        let mut found = None;
        for (kind, refs, queries, gt) in candidates {
            let refs = overrides
                .references
                .clone()
                .or_else(|| first_existing(root, refs, true));
            let queries = overrides
                .queries
                .clone()
                .or_else(|| first_existing(root, queries, true));
            let gt = overrides
                .ground_truth
                .clone()
                .or_else(|| first_existing(root, gt, false));
            if let (Some(references), Some(queries), Some(ground_truth)) = (refs, queries, gt) {
                let all_explicit = overrides.references.is_some()
                    && overrides.queries.is_some()
                    && overrides.ground_truth.is_some();
                let kind = if all_explicit {
                    LayoutKind::Explicit
                } else {
                    kind
                };
                found = Some(Self {
                    kind,
                    references,
                    queries,
                    ground_truth,
                });
                break;
            }
        }
        let layout = found.ok_or_else(|| DatasetError::UnknownLayout {
            root: root.to_path_buf(),
            message: "not a DISC21 folder: expected references/ + dev_queries/ (or queries/) + \
                      public_ground_truth.csv (or dev_ground_truth.csv), or SSCD's val_ref/ + \
                      val_query/ + val_groundtruth_matches.csv; or pass the paths explicitly"
                .into(),
        })?;
        for dir in [&layout.references, &layout.queries] {
            if !dir.is_dir() {
                return Err(DatasetError::UnknownLayout {
                    root: root.to_path_buf(),
                    message: format!("{} is not a folder", dir.display()),
                });
            }
        }
        Ok(layout)
    }
}

/// One image of the data set.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageEntry {
    /// The id: the file name without extension (`R000123`, `Q00042`).
    pub id: String,
    /// The file.
    pub path: PathBuf,
}

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// Lists the images of a folder (not recursive), sorted by id. Hidden files and files with
/// other extensions are skipped.
pub fn list_images(dir: &Path) -> Result<Vec<ImageEntry>> {
    let io = |source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
            continue;
        };
        let (stem, ext) = (
            stem.to_string_lossy(),
            ext.to_string_lossy().to_ascii_lowercase(),
        );
        if stem.starts_with('.') || !IMAGE_EXTENSIONS.contains(&ext.as_str()) || !path.is_file() {
            continue;
        }
        out.push(ImageEntry {
            id: stem.into_owned(),
            path,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    for pair in out.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(DatasetError::DuplicateId {
                id: pair[0].id.clone(),
                a: pair[0].path.clone(),
                b: pair[1].path.clone(),
            });
        }
    }
    Ok(out)
}

/// The number in an id like `R000123` (digits after a letter prefix).
pub fn id_number(id: &str) -> Option<u64> {
    let digits = id.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Which references take part.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSelection {
    /// Every reference of the folder.
    All,
    /// The first `N` references in id order.
    First(usize),
    /// References whose id number lies in `start..=end` (`R000000-R149999` → 0..=149999).
    Range {
        /// First id number.
        start: u64,
        /// Last id number (inclusive).
        end: u64,
    },
}

impl ReferenceSelection {
    /// The study's default: R000000–R149999.
    pub fn study_default() -> Self {
        Self::Range {
            start: 0,
            end: 149_999,
        }
    }

    /// Applies the selection to references sorted by id.
    pub fn apply<'a>(&self, refs: &'a [ImageEntry]) -> &'a [ImageEntry] {
        match *self {
            Self::All => refs,
            Self::First(n) => &refs[..n.min(refs.len())],
            Self::Range { start, end } => {
                let inside =
                    |e: &ImageEntry| id_number(&e.id).is_some_and(|n| n >= start && n <= end);
                let lo = refs.iter().position(inside).unwrap_or(refs.len());
                let len = refs[lo..].iter().take_while(|e| inside(e)).count();
                &refs[lo..lo + len]
            }
        }
    }
}

impl std::fmt::Display for ReferenceSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => write!(f, "all"),
            Self::First(n) => write!(f, "first {n}"),
            Self::Range { start, end } => write!(f, "R{start:06}-R{end:06}"),
        }
    }
}

impl FromStr for ReferenceSelection {
    type Err = DatasetError;

    /// `all`, `N` (the first N) or `START-END` with optional `R` prefixes, inclusive.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || DatasetError::Selection(s.to_string());
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        if let Some((a, b)) = t.split_once(['-', ':']) {
            let (start, end) = (
                id_number(a.trim()).ok_or_else(bad)?,
                id_number(b.trim()).ok_or_else(bad)?,
            );
            if start > end {
                return Err(bad());
            }
            return Ok(Self::Range { start, end });
        }
        match t.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Self::First(n)),
            _ => Err(bad()),
        }
    }
}

/// What a run evaluates.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum Protocol {
    /// The CLIP vs DINOv2 study: the selected references, and the queries whose ground-truth
    /// reference is among them. Reported: accuracy and top-3 accuracy (k = 5).
    Study {
        /// Which references.
        references: ReferenceSelection,
    },
    /// The ISC2021 protocol: all references, all ground-truth queries including those without
    /// a copy. Reported: µAP, recall@P90, recall@1 and @10.
    Official,
}

impl Default for Protocol {
    fn default() -> Self {
        Self::Study {
            references: ReferenceSelection::study_default(),
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Study { references } => write!(f, "study (references {references})"),
            Self::Official => write!(f, "official (all references, all ground-truth queries)"),
        }
    }
}

/// The images and ground truth one run evaluates.
#[derive(Clone, Debug)]
pub struct EvalSet {
    /// Where they came from.
    pub layout: Layout,
    /// The protocol that selected them.
    pub protocol: Protocol,
    /// References, sorted by id.
    pub references: Vec<ImageEntry>,
    /// Queries, in ground-truth order.
    pub queries: Vec<ImageEntry>,
    /// Ground truth of exactly these queries, restricted to these references.
    pub ground_truth: GroundTruth,
}

impl EvalSet {
    /// Reads a data set and applies a protocol. Every selected query must have an image.
    pub fn load(layout: Layout, protocol: Protocol) -> Result<Self> {
        let gt_all = read_ground_truth(&layout.ground_truth)?;
        let all_refs = list_images(&layout.references)?;
        let references: Vec<ImageEntry> = match &protocol {
            Protocol::Study { references } => references.apply(&all_refs).to_vec(),
            Protocol::Official => all_refs,
        };
        let ground_truth = match &protocol {
            Protocol::Study { .. } => {
                let ids: std::collections::HashSet<&str> =
                    references.iter().map(|e| e.id.as_str()).collect();
                let kept =
                    gt_all.filter_queries(|_, refs| refs.iter().any(|r| ids.contains(r.as_str())));
                // Keep only the pairs inside the selection (DISC21 has one reference per query).
                GroundTruth::from_rows(kept.rows().filter_map(|(q, r)| {
                    let r = r?;
                    ids.contains(r).then_some((q, Some(r)))
                }))?
            }
            Protocol::Official => gt_all,
        };
        let query_files: HashMap<String, PathBuf> = list_images(&layout.queries)?
            .into_iter()
            .map(|e| (e.id, e.path))
            .collect();
        let mut queries = Vec::with_capacity(ground_truth.len());
        let mut missing = Vec::new();
        for q in ground_truth.queries() {
            match query_files.get(q) {
                Some(path) => queries.push(ImageEntry {
                    id: q.to_string(),
                    path: path.clone(),
                }),
                None => missing.push(q.to_string()),
            }
        }
        if let Some(first) = missing.first() {
            return Err(DatasetError::MissingQueries {
                dir: layout.queries.clone(),
                count: missing.len(),
                first: first.clone(),
            });
        }
        Ok(Self {
            layout,
            protocol,
            references,
            queries,
            ground_truth,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn selections_parse() {
        assert_eq!(
            "all".parse::<ReferenceSelection>().unwrap(),
            ReferenceSelection::All
        );
        assert_eq!(
            "150".parse::<ReferenceSelection>().unwrap(),
            ReferenceSelection::First(150)
        );
        assert_eq!(
            "R000000-R149999".parse::<ReferenceSelection>().unwrap(),
            ReferenceSelection::study_default()
        );
        assert_eq!(
            "10:20".parse::<ReferenceSelection>().unwrap(),
            ReferenceSelection::Range { start: 10, end: 20 }
        );
        for bad in ["", "0", "x", "R5-R2", "R1-"] {
            assert!(bad.parse::<ReferenceSelection>().is_err(), "{bad}");
        }
    }

    #[test]
    fn range_applies_by_number() {
        let refs: Vec<ImageEntry> = [3u64, 5, 7, 9]
            .iter()
            .map(|n| ImageEntry {
                id: format!("R{n:06}"),
                path: PathBuf::new(),
            })
            .collect();
        let sel = ReferenceSelection::Range { start: 4, end: 8 };
        let ids: Vec<&str> = sel.apply(&refs).iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["R000005", "R000007"]);
        assert_eq!(ReferenceSelection::First(9).apply(&refs).len(), 4);
    }
}
