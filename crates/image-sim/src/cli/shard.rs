//! `--shard I/N|auto`: which block of the image list a run takes. `auto` reads the shard of a
//! Slurm task from its environment (see [`embed_collection::slurm::shard_from_env`]).

use std::str::FromStr;

use embed_pipeline::Shard;

use super::UsageError;

/// The value of `--shard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    /// `I/N`: shard I (from 0) of N.
    Fixed(Shard),
    /// `auto`: the shard of this Slurm job array task (`SLURM_ARRAY_TASK_ID` −
    /// `SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`), else of this `srun` task
    /// (`SLURM_PROCID` of `SLURM_NTASKS`).
    Auto,
}

impl FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            Ok(ShardArg::Auto)
        } else {
            s.parse().map(ShardArg::Fixed)
        }
    }
}

impl std::fmt::Display for ShardArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardArg::Fixed(s) => s.fmt(f),
            ShardArg::Auto => f.write_str("auto"),
        }
    }
}

impl ShardArg {
    /// The shard: `auto` resolved from this process's environment. Outside Slurm (or with a
    /// Slurm environment that names no usable shard) a [`UsageError`] that says why.
    pub fn resolve(self) -> anyhow::Result<Shard> {
        match self {
            ShardArg::Fixed(s) => Ok(s),
            ShardArg::Auto => resolve_auto(embed_collection::slurm::shard_from_process_env()),
        }
    }
}

fn resolve_auto(
    found: Result<embed_collection::ShardSpec, embed_collection::slurm::ShardEnvError>,
) -> anyhow::Result<Shard> {
    match found {
        Ok(s) => Ok(Shard {
            index: s.index,
            count: s.count,
        }),
        Err(e) => Err(UsageError(format!("--shard auto: {e}")).into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn parses_fixed_and_auto() {
        assert_eq!("auto".parse::<ShardArg>(), Ok(ShardArg::Auto));
        assert_eq!(
            "1/4".parse::<ShardArg>(),
            Ok(ShardArg::Fixed(Shard { index: 1, count: 4 }))
        );
        assert!("4/4".parse::<ShardArg>().is_err());
        assert!("automatic".parse::<ShardArg>().is_err());
    }

    #[test]
    fn auto_outside_slurm_is_a_usage_error_and_an_array_task_its_shard() {
        let none = HashMap::new();
        let err = resolve_auto(embed_collection::slurm::shard_from_env(&none)).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().contains("not running under Slurm"), "{err}");
        let env: HashMap<String, String> = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let shard = resolve_auto(embed_collection::slurm::shard_from_env(&env)).unwrap();
        assert_eq!(shard, Shard { index: 2, count: 3 });
    }
}
