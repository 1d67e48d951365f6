#![doc = include_str!("../README.md")]

pub mod benchmark;
pub mod cli;
pub mod dataset;
pub mod generate;
pub mod metrics;
pub mod report;
