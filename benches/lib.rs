//! Benchmarks live next to this crate.
