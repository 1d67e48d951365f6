//! The `disc21-eval` command line's library side: the benchmark's own commands (`generate`,
//! `metrics`, `run`) next to the general ones it shares with `image-sim` (`image_sim::cli`).

pub mod app;
pub mod generate;
pub mod metrics;
pub mod run;
