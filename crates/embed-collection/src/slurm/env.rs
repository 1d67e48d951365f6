//! Shard selection from Slurm's environment.

use std::collections::HashMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// One shard of a list split into `count` contiguous parts: shard `index` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardSpec {
    /// 0-based shard number, `< count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl ShardSpec {
    /// The rows of a list of `len` items this shard covers: contiguous blocks whose sizes
    /// differ by at most one, in list order, so that the shards concatenated in index order
    /// are the list itself (and a merge is a concatenation).
    pub fn range(&self, len: usize) -> Range<usize> {
        let at = |i: usize| (len as u128 * i as u128 / self.count.max(1) as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why the shard could not be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardEnvError {
    /// Neither a job array nor a multi-task step.
    #[error(
        "not running under Slurm: neither SLURM_ARRAY_TASK_ID nor SLURM_PROCID is set \
         (run inside `sbatch --array` or `srun`, or give the shard explicitly)"
    )]
    NotInSlurm,
    /// A variable the case needs is missing.
    #[error("{0} is not set although {1} is")]
    Missing(&'static str, &'static str),
    /// A variable is not a non-negative integer.
    #[error("{name}={value:?} is not a non-negative integer")]
    NotANumber {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The array is not a contiguous range with step 1 (`--array=A-B`).
    #[error(
        "job array task {id} (min {min}, count {count}{step}) is not in a contiguous range \
         with step 1: submit with --array=A-B"
    )]
    NotContiguous {
        /// SLURM_ARRAY_TASK_ID.
        id: usize,
        /// SLURM_ARRAY_TASK_MIN.
        min: usize,
        /// SLURM_ARRAY_TASK_COUNT.
        count: usize,
        /// `, step N` or `, max N` when that is what breaks it.
        step: String,
    },
    /// SLURM_PROCID is not below SLURM_NTASKS.
    #[error("SLURM_PROCID={procid} is not below SLURM_NTASKS={ntasks}")]
    BadTask {
        /// SLURM_PROCID.
        procid: usize,
        /// SLURM_NTASKS.
        ntasks: usize,
    },
}

fn number(
    env: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<usize>, ShardEnvError> {
    match env.get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ShardEnvError::NotANumber {
                name,
                value: v.clone(),
            }),
    }
}

/// The shard of this task, from a snapshot of the environment:
/// - in a job array (`SLURM_ARRAY_TASK_ID` set): index = `SLURM_ARRAY_TASK_ID −
///   SLURM_ARRAY_TASK_MIN` (arrays may start at 1), count = `SLURM_ARRAY_TASK_COUNT`; the array
///   must be a contiguous range with step 1;
/// - else in a multi-task step (`SLURM_PROCID` set): index = `SLURM_PROCID`, count =
///   `SLURM_NTASKS`;
/// - else [`ShardEnvError::NotInSlurm`].
pub fn shard_from_env(env: &HashMap<String, String>) -> Result<ShardSpec, ShardEnvError> {
    const ID: &str = "SLURM_ARRAY_TASK_ID";
    if let Some(id) = number(env, ID)? {
        let min = number(env, "SLURM_ARRAY_TASK_MIN")?
            .ok_or(ShardEnvError::Missing("SLURM_ARRAY_TASK_MIN", ID))?;
        let count = number(env, "SLURM_ARRAY_TASK_COUNT")?
            .ok_or(ShardEnvError::Missing("SLURM_ARRAY_TASK_COUNT", ID))?;
        let step = number(env, "SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
        let max = number(env, "SLURM_ARRAY_TASK_MAX")?;
        let broken = |what: String| ShardEnvError::NotContiguous {
            id,
            min,
            count,
            step: what,
        };
        if step != 1 {
            return Err(broken(format!(", step {step}")));
        }
        if let Some(max) = max
            && max.checked_sub(min).map(|d| d + 1) != Some(count)
        {
            return Err(broken(format!(", max {max}")));
        }
        return match id.checked_sub(min) {
            Some(index) if index < count => Ok(ShardSpec { index, count }),
            _ => Err(broken(String::new())),
        };
    }
    if let Some(procid) = number(env, "SLURM_PROCID")? {
        let ntasks = number(env, "SLURM_NTASKS")?
            .ok_or(ShardEnvError::Missing("SLURM_NTASKS", "SLURM_PROCID"))?;
        if procid >= ntasks {
            return Err(ShardEnvError::BadTask { procid, ntasks });
        }
        return Ok(ShardSpec {
            index: procid,
            count: ntasks,
        });
    }
    Err(ShardEnvError::NotInSlurm)
}

/// [`shard_from_env`] on this process's environment.
pub fn shard_from_process_env() -> Result<ShardSpec, ShardEnvError> {
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("SLURM_"))
        .collect();
    shard_from_env(&env)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn spec(index: usize, count: usize) -> ShardSpec {
        ShardSpec { index, count }
    }

    /// A job array starting at 0: the task id is the shard.
    #[test]
    fn array_from_zero() {
        let e = env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
        ]);
        assert_eq!(shard_from_env(&e), Ok(spec(2, 4)));
    }

    /// A job array starting at 1: the shard is id − min, the last task is the last shard.
    #[test]
    fn array_from_one() {
        let e = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(shard_from_env(&e), Ok(spec(3, 4)));
    }

    /// Arrays with a step, holes or a task outside the range are refused, not mis-sharded.
    #[test]
    fn arrays_that_are_not_a_contiguous_range_are_refused() {
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_STEP", "4"),
        ]);
        let holes = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        let outside = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        for e in [stepped, holes, outside] {
            let err = shard_from_env(&e).unwrap_err();
            assert!(matches!(err, ShardEnvError::NotContiguous { .. }), "{err}");
            assert!(err.to_string().contains("--array=A-B"));
        }
    }

    /// Without an array, the srun task rank and count are the shard.
    #[test]
    fn srun_tasks() {
        let e = env(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "8")]);
        assert_eq!(shard_from_env(&e), Ok(spec(5, 8)));
        let bad = env(&[("SLURM_PROCID", "8"), ("SLURM_NTASKS", "8")]);
        assert!(matches!(
            shard_from_env(&bad),
            Err(ShardEnvError::BadTask { .. })
        ));
        let missing = env(&[("SLURM_PROCID", "0")]);
        assert_eq!(
            shard_from_env(&missing),
            Err(ShardEnvError::Missing("SLURM_NTASKS", "SLURM_PROCID"))
        );
    }

    /// Outside Slurm, and with unreadable values, the error says what is wrong.
    #[test]
    fn outside_slurm_and_bad_values() {
        let none = shard_from_env(&env(&[("HOME", "/root")])).unwrap_err();
        assert_eq!(none, ShardEnvError::NotInSlurm);
        assert!(none.to_string().contains("not running under Slurm"));
        let bad = env(&[
            ("SLURM_ARRAY_TASK_ID", "x1"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert!(
            shard_from_env(&bad)
                .unwrap_err()
                .to_string()
                .contains("SLURM_ARRAY_TASK_ID=\"x1\"")
        );
        let no_min = env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert_eq!(
            shard_from_env(&no_min),
            Err(ShardEnvError::Missing(
                "SLURM_ARRAY_TASK_MIN",
                "SLURM_ARRAY_TASK_ID"
            ))
        );
    }

    /// The ranges of all shards tile the list in order, with sizes differing by at most one.
    #[test]
    fn ranges_tile_the_list() {
        for len in [0, 1, 7, 100, 1001] {
            for count in 1..12 {
                let ranges: Vec<_> = (0..count).map(|i| spec(i, count).range(len)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[count - 1].end, len);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{len} {count}: {sizes:?}");
            }
        }
    }
}
