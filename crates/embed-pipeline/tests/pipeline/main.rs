//! The extraction pipeline against a sequential reference: order, skips, failure limits, batch
//! and worker invariance, the libtorch 8-bit path, and the resumable cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[cfg(feature = "torch")]
mod device;
mod host;
