//! The DISC21 benchmark of the image-sim workspace: data set layouts, the extraction pipeline,
//! search, the official metrics and reports. The `disc21-eval` binary is its command line.

pub mod atomic;
pub mod benchmark;
pub mod dataset;
pub mod generate;
pub mod gpu_search;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod report;
