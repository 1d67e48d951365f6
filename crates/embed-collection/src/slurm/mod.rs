//! Running a build as a Slurm job array: which shard this task is ([`shard_from_env`]), which
//! rows of the image list a shard covers ([`ShardSpec::range`]), and the submission script
//! ([`slurm_script`]).

mod env;
mod script;

pub use env::{ShardEnvError, ShardSpec, shard_from_env, shard_from_process_env};
pub use script::{BuildCommand, ImageSource, SlurmOptions, shell_quote, slurm_script};
