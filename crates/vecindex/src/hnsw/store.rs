//! What a graph's vectors are stored as, and the distances on them: f32 rows ([`F32Rows`]) or
//! scalar-quantised codes ([`SqRows`]). The graph's search and insertion are generic over
//! [`Store`]; each store is monomorphised into them, so the f32 path runs the same code as
//! before codes existed (a query is the row slice itself, the distance the f32 kernel).

use super::distance::{Distance, GraphDistance};
use super::graph::{BLOCK, Block};
use crate::huge_pages;
use crate::sq::{PreparedQuery, SqCodes};

/// Most cache lines of a neighbour's vector prefetched before its distance is computed (the
/// whole row up to d = 1024 floats; the hardware prefetcher follows longer rows).
const PREFETCH_LINES: usize = 64;

/// The vectors of a graph's rows and the distance between a query and a row (smaller is
/// nearer, never NaN).
pub(crate) trait Store: Send + Sync + Sized {
    /// Per-thread room a query is prepared in.
    type Buf: Default + Send;
    /// A query as [`Store::dist`] takes it.
    type Query<'a>: Copy
    where
        Self: 'a;

    /// `v` (`dim` finite floats, already normalised for cosine) as a query.
    fn query<'a>(&'a self, v: &'a [f32], buf: &'a mut Self::Buf) -> Self::Query<'a>;

    /// The stored vector of `row` as a query (the insertion's code-to-code distances).
    fn row_query<'a>(&'a self, row: u32, buf: &'a mut Self::Buf) -> Self::Query<'a>;

    /// The distance from `q` to `row`.
    fn dist(&self, q: Self::Query<'_>, row: u32) -> f32;

    /// Asks for `row`'s vector to be brought into the cache (a hint).
    fn prefetch(&self, row: u32);

    /// Appends row-major `vectors` (`dim` finite floats each, normalised for cosine).
    fn push(&mut self, vectors: &[f32]);

    /// Rows held.
    fn rows(&self) -> usize;

    /// Bytes held by the vectors.
    fn heap_bytes(&self) -> usize;
}

/// f32 rows, each on its own 64-byte blocks (zero padded), in one aligned matrix.
pub(crate) struct F32Rows {
    pub(super) distance: GraphDistance,
    pub(super) dim: usize,
    /// Blocks per vector row.
    pub(super) row_blocks: usize,
    /// `rows * row_blocks` blocks, row-major, zero padded.
    pub(super) vectors: Vec<Block>,
}

impl F32Rows {
    /// No rows yet.
    pub(crate) fn new(distance: Distance, dim: usize) -> Self {
        Self {
            distance: GraphDistance::of(distance),
            dim,
            row_blocks: dim.div_ceil(BLOCK),
            vectors: Vec::new(),
        }
    }

    #[inline(always)]
    pub(super) fn row_ptr(&self, row: u32) -> *const f32 {
        // In bounds: rows come from the graph, which only stores rows < n.
        self.vectors[row as usize * self.row_blocks].0.as_ptr()
    }

    #[inline(always)]
    pub(super) fn vector(&self, row: u32) -> &[f32] {
        let blocks = &self.vectors[row as usize * self.row_blocks..][..self.row_blocks];
        // SAFETY: `Block` is `repr(C)` around `[f32; 16]` (size 64, no padding), so `row_blocks`
        // consecutive blocks are `16 * row_blocks >= dim` initialised, aligned f32.
        let floats = unsafe {
            std::slice::from_raw_parts(blocks.as_ptr().cast::<f32>(), self.row_blocks * BLOCK)
        };
        &floats[..self.dim]
    }
}

impl Store for F32Rows {
    type Buf = ();
    type Query<'a> = &'a [f32];

    #[inline(always)]
    fn query<'a>(&'a self, v: &'a [f32], _: &'a mut ()) -> &'a [f32] {
        v
    }

    #[inline(always)]
    fn row_query<'a>(&'a self, row: u32, _: &'a mut ()) -> &'a [f32] {
        self.vector(row)
    }

    #[inline(always)]
    fn dist(&self, q: &[f32], row: u32) -> f32 {
        self.distance.eval(q, self.vector(row))
    }

    #[inline(always)]
    fn prefetch(&self, row: u32) {
        prefetch_lines(
            self.row_ptr(row).cast::<u8>(),
            self.row_blocks.min(PREFETCH_LINES),
        );
    }

    fn push(&mut self, vectors: &[f32]) {
        use rayon::prelude::*;
        let (old, rb, dim) = (self.rows(), self.row_blocks, self.dim);
        let added = vectors.len() / dim;
        let vecs = std::mem::take(&mut self.vectors);
        self.vectors = huge_pages::grown(vecs, (old + added) * rb, Block::default());
        self.vectors[old * rb..]
            .par_chunks_mut(rb)
            .zip(vectors.par_chunks_exact(dim))
            .for_each(|(blocks, v)| {
                for (b, src) in blocks.iter_mut().zip(v.chunks(BLOCK)) {
                    b.0[..src.len()].copy_from_slice(src);
                }
            });
    }

    fn rows(&self) -> usize {
        self.vectors.len() / self.row_blocks.max(1)
    }

    fn heap_bytes(&self) -> usize {
        self.vectors.len() * std::mem::size_of::<Block>()
    }
}

/// Scalar-quantised codes ([`SqCodes`]): the distance is minus their score, computed on the
/// codes. Code-to-code distances (insertion) decode one of the two and score it against the
/// other's code, as FAISS's symmetric distance does on decoded vectors.
pub(crate) struct SqRows {
    pub(crate) codes: SqCodes,
}

/// Room for one prepared query.
#[derive(Default)]
pub(crate) struct SqBuf {
    decoded: Vec<f32>,
    query: Option<PreparedQuery>,
}

impl SqBuf {
    fn set(&mut self, q: PreparedQuery) -> &PreparedQuery {
        self.query.insert(q)
    }
}

impl Store for SqRows {
    type Buf = SqBuf;
    type Query<'a> = &'a PreparedQuery;

    #[inline]
    fn query<'a>(&'a self, v: &'a [f32], buf: &'a mut SqBuf) -> &'a PreparedQuery {
        buf.set(self.codes.prepare_unchecked(v))
    }

    #[inline]
    fn row_query<'a>(&'a self, row: u32, buf: &'a mut SqBuf) -> &'a PreparedQuery {
        let d = self.codes.quantizer().dim();
        buf.decoded.resize(d, 0.0);
        self.codes
            .quantizer()
            .decode(self.codes.code(row as usize), &mut buf.decoded);
        let q = self.codes.prepare_unchecked(&buf.decoded);
        buf.set(q)
    }

    #[inline(always)]
    fn dist(&self, q: &PreparedQuery, row: u32) -> f32 {
        // Scores are finite for finite codes; `min` maps a NaN (overflow) to the farthest.
        (-self.codes.score(q, row as usize)).min(f32::MAX)
    }

    #[inline(always)]
    fn prefetch(&self, row: u32) {
        let size = self.codes.quantizer().code_size();
        let code = self.codes.code(row as usize);
        prefetch_lines(code.as_ptr(), size.div_ceil(64).min(PREFETCH_LINES));
    }

    fn push(&mut self, vectors: &[f32]) {
        // Rows were checked (finite, `dim` each) before they reach a store.
        if let Err(e) = self.codes.push(vectors) {
            log::error!("encoding checked rows failed: {e}");
        }
    }

    fn rows(&self) -> usize {
        self.codes.len()
    }

    fn heap_bytes(&self) -> usize {
        self.codes.memory_bytes()
    }
}

/// Prefetches `lines` cache lines from `p` into the second-level cache.
#[inline(always)]
pub(super) fn prefetch_lines(p: *const u8, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        for i in 0..lines {
            // SAFETY: prefetching is a hint that never faults; `lines` stays within the row.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i * 64).cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, lines);
}
