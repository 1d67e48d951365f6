//! The benchmark crate's tests in one binary (one link against libtorch): the command line,
//! data set layouts and the generator, the metrics against their Python reference, and whole
//! runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input_cli;
mod bench_precision_cli;
mod cli;
mod dataset;
mod embed_cli;
mod fast_jpeg_cli;
mod generate;
mod metrics_python;
mod preprocess_cli;
mod reliability_csv;
mod run;
