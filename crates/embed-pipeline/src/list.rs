//! Image lists: a folder in file-name order, a list file, and deterministic shards.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{PipelineError, Result};

/// The files of a folder (not recursive), hidden entries (names starting with `.`) left out,
/// sorted by file name. Every other entry is listed, images or not: one that is not a readable
/// image is reported as skipped by the extraction instead of silently ignored.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| PipelineError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        out.push(entry.path());
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(out)
}

/// Reads a list file: one path per line, blank lines and lines starting with `#` ignored,
/// order kept. Relative paths are taken as they are (relative to the working directory).
pub fn read_list(file: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(file).map_err(|source| PipelineError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect())
}

/// The id of an image: its file stem (`R000123.jpg` → `R000123`).
pub fn file_stem_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Errors when two files of `paths` would get the same id ([`file_stem_id`]: `x.jpg` and
/// `x.png`, or one file listed twice), naming both.
pub fn check_unique_ids<P: AsRef<Path>>(paths: &[P]) -> Result<()> {
    let mut seen: std::collections::HashMap<String, &Path> =
        std::collections::HashMap::with_capacity(paths.len());
    for p in paths {
        let p = p.as_ref();
        if let Some(first) = seen.insert(file_stem_id(p), p) {
            return Err(PipelineError::DuplicateId {
                first: first.to_path_buf(),
                second: p.to_path_buf(),
                id: file_stem_id(p),
            });
        }
    }
    Ok(())
}

/// Shard `index` of `count` (`--shard I/N`, `0 ≤ I < N`): a contiguous block of the list, so
/// the shards' outputs concatenated in shard order equal the unsharded output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole list.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The range of a list of `n` items this shard takes: `[I·n/N, (I+1)·n/N)`.
    pub fn range(&self, n: usize) -> std::ops::Range<usize> {
        let at = |i: usize| ((i as u128 * n as u128) / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: bad shard index"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: bad shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("`{s}`: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_list() {
        for n in [0usize, 1, 2, 7, 100, 1001] {
            for count in 1..9 {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(n);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn shard_parsing() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
