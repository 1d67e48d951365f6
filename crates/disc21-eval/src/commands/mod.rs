//! One module per subcommand: each has clap `Args` and a `run` returning the exit code.

pub mod bench;
pub mod embed;
pub mod generate;
pub mod index;
pub mod merge;
pub mod metrics;
pub mod preprocess;
pub mod run;
pub mod search;
