//! Scalar quantisation: vectors stored as one byte (8-bit, FAISS `QT_8bit`) or two (half
//! floats, FAISS `QT_fp16`) a dimension, searched exactly over the codes.
//!
//! - [`ScalarQuantizer`]: training, encoding and decoding with FAISS's arithmetic.
//! - [`SqCodes`]: many codes and the distances on them (query-to-code, code-to-code), computed
//!   on the codes by SIMD kernels; the storage a flat scan or a graph searches.
//! - [`FlatSqIndex`]: exact search over the codes, FAISS `IndexScalarQuantizer` files (`IxSQ`).

mod codec;
pub(crate) mod faiss;
mod flat;
mod kernels;
mod storage;

pub use codec::{ScalarQuantizer, SqKind, f16_to_f32, f32_to_f16};
pub use flat::{FlatSqIndex, SqOptions};
pub use kernels::sq_simd_level;
pub use storage::{PreparedQuery, SqCodes};
