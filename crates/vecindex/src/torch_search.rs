//! Exact k-nearest-neighbour search of many queries against many references as chunked matrix
//! products with a running top-k, on any libtorch device (a GPU where there is one: 50,000 ×
//! 1,000,000 × 768 is about 77 TFLOP, seconds on an H100). Feature `torch`.
//!
//! Scores are inner products ("greater is closer"), as [`crate::Metric::InnerProduct`]'s; on
//! unit vectors they are cosine similarities and rank exactly as squared L2 distances do.
//! Results are [`Hit`]s like every index's: within a query, sorted by score descending, ties by
//! row ascending; which of several references tied at the k-th score make the cut is up to
//! libtorch's `topk`.
//!
//! ```
//! use vecindex::torch_search::{TorchSearchOptions, search};
//! let refs = [1.0f32, 0.0, 0.0, 1.0, 0.6, 0.8];
//! let queries = [0.0f32, 1.0];
//! let hits = search(&queries, &refs, 2, 2, &TorchSearchOptions::default()).unwrap();
//! assert_eq!(hits[0].iter().map(|h| h.row).collect::<Vec<_>>(), [1, 2]);
//! ```

use tch::{Device, Kind, Tensor};

use crate::{Error, Hit, Result, check_rows};

/// How [`search`] runs.
#[derive(Clone, Copy, Debug)]
pub struct TorchSearchOptions {
    /// Where the products run.
    pub device: Device,
    /// Precision of the products (`Float` by default; `Half`/`BFloat16` on a GPU trade exactness
    /// of near-ties for speed). Top-k runs in `f32`.
    pub kind: Kind,
    /// Queries per product.
    pub query_chunk: usize,
    /// References per product.
    pub ref_chunk: usize,
}

impl Default for TorchSearchOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            kind: Kind::Float,
            query_chunk: 4096,
            ref_chunk: 65_536,
        }
    }
}

impl TorchSearchOptions {
    /// Defaults on `device`.
    pub fn on(device: Device) -> Self {
        Self {
            device,
            ..Self::default()
        }
    }
}

fn torch(e: tch::TchError) -> Error {
    Error::Backend(format!("libtorch: {e}"))
}

fn to_tensor(rows: &[f32], dim: usize, device: Device, kind: Kind) -> Result<Tensor> {
    let n = rows.len() / dim;
    Tensor::f_from_slice(rows)
        .and_then(|t| t.f_view([n as i64, dim as i64]))
        .and_then(|t| t.f_to_device(device))
        .and_then(|t| t.f_to_kind(kind))
        .map_err(torch)
}

/// Searches `queries` against `references` (both row-major, `dim` floats a row) exactly,
/// returning the `min(k, references)` highest inner products of each query, best first.
pub fn search(
    queries: &[f32],
    references: &[f32],
    dim: usize,
    k: usize,
    options: &TorchSearchOptions,
) -> Result<Vec<Vec<Hit>>> {
    if k == 0 {
        return Err(Error::ZeroK);
    }
    let nq = check_rows(queries, dim)?;
    let nr = check_rows(references, dim)?;
    if options.query_chunk == 0 || options.ref_chunk == 0 {
        return Err(Error::Unsupported("chunk sizes must be at least 1".into()));
    }
    let k = k.min(nr);
    if k == 0 || nq == 0 {
        return Ok(vec![Vec::new(); nq]);
    }
    let _guard = tch::no_grad_guard();
    let (dev, kind) = (options.device, options.kind);
    let ref_chunks: Vec<(i64, Tensor)> = (0..nr)
        .step_by(options.ref_chunk)
        .map(|s| {
            let e = (s + options.ref_chunk).min(nr);
            // Stored transposed (d × n) and contiguous: one layout conversion, not one per product.
            let r = to_tensor(&references[s * dim..e * dim], dim, dev, kind)?;
            let r = r
                .f_transpose(0, 1)
                .and_then(|t| t.f_contiguous())
                .map_err(torch)?;
            Ok((s as i64, r))
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(nq);
    for qs in (0..nq).step_by(options.query_chunk) {
        let qe = (qs + options.query_chunk).min(nq);
        let q = to_tensor(&queries[qs * dim..qe * dim], dim, dev, kind)?;
        let (v, i) = chunk_top_k(&q, &ref_chunks, k).map_err(torch)?;
        let rows = qe - qs;
        let mut vb = vec![0f32; rows * k];
        let mut ib = vec![0i64; rows * k];
        v.f_copy_data(&mut vb, rows * k).map_err(torch)?;
        i.f_copy_data(&mut ib, rows * k).map_err(torch)?;
        for row in 0..rows {
            let mut hits: Vec<Hit> = (0..k)
                .map(|c| Hit {
                    row: ib[row * k + c] as usize,
                    score: vb[row * k + c],
                })
                .collect();
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
            out.push(hits);
        }
    }
    Ok(out)
}

/// The `k` best scores and reference rows of every query of `q`, on the host (`f32`, `i64`).
fn chunk_top_k(
    q: &Tensor,
    ref_chunks: &[(i64, Tensor)],
    k: usize,
) -> std::result::Result<(Tensor, Tensor), tch::TchError> {
    let mut best: Option<(Tensor, Tensor)> = None;
    for (offset, r) in ref_chunks {
        let s = q.f_mm(r)?.f_to_kind(Kind::Float)?;
        let kk = (k as i64).min(s.size()[1]);
        let (v, i) = s.f_topk(kk, 1, true, true)?;
        let i = i.f_add_scalar(*offset)?;
        best = Some(match best {
            None => (v, i),
            Some((bv, bi)) => {
                let v = Tensor::f_cat(&[bv, v], 1)?;
                let i = Tensor::f_cat(&[bi, i], 1)?;
                let (tv, pos) = v.f_topk((k as i64).min(v.size()[1]), 1, true, true)?;
                (tv, i.f_gather(1, &pos, false)?)
            }
        });
    }
    let Some((v, i)) = best else {
        return Err(tch::TchError::Shape("no references to search".into()));
    };
    Ok((
        v.f_to_device(Device::Cpu)?.f_contiguous()?,
        i.f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Int64)?
            .f_contiguous()?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, d: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    fn naive(q: &[f32], r: &[f32], d: usize, k: usize) -> Vec<Vec<(usize, f32)>> {
        q.chunks(d)
            .map(|qr| {
                let mut s: Vec<(usize, f32)> = r
                    .chunks(d)
                    .enumerate()
                    .map(|(i, rr)| (i, qr.iter().zip(rr).map(|(a, b)| a * b).sum()))
                    .collect();
                s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                s.truncate(k);
                s
            })
            .collect()
    }

    #[test]
    fn matches_naive_loop_across_chunkings() {
        let seed = 20_261_126u64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for &(nq, nr, d, k, qc, rc) in &[
            (17usize, 301usize, 24usize, 5usize, 4usize, 64usize),
            (5, 7, 3, 10, 2, 3),
            (33, 1000, 64, 1, 33, 1000),
            (9, 250, 16, 7, 100, 17),
        ] {
            let q = random(nq, d, &mut rng);
            let r = random(nr, d, &mut rng);
            let opts = TorchSearchOptions {
                query_chunk: qc,
                ref_chunk: rc,
                ..TorchSearchOptions::default()
            };
            let top = search(&q, &r, d, k, &opts).unwrap();
            let want = naive(&q, &r, d, k);
            assert_eq!(top.len(), nq);
            for (qi, w) in want.iter().enumerate() {
                assert_eq!(top[qi].len(), k.min(nr));
                let got: Vec<usize> = top[qi].iter().map(|h| h.row).collect();
                let exp: Vec<usize> = w.iter().map(|p| p.0).collect();
                assert_eq!(got, exp, "seed {seed}, query {qi}, case {nq}x{nr}x{d} k{k}");
                for (a, b) in top[qi].iter().zip(w) {
                    assert!(
                        (a.score - b.1).abs() <= 1e-4 * (1.0 + b.1.abs()),
                        "{} vs {}",
                        a.score,
                        b.1
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        let o = TorchSearchOptions::default();
        let q = vec![0f32; 2 * 3];
        assert!(matches!(
            search(&q, &[0f32; 7], 3, 1, &o),
            Err(Error::RaggedInput { .. })
        ));
        let r = vec![0f32; 4 * 3];
        assert!(matches!(search(&q, &r, 3, 0, &o), Err(Error::ZeroK)));
        let mut q2 = q.clone();
        q2[4] = f32::NAN;
        assert!(matches!(
            search(&q2, &r, 3, 1, &o),
            Err(Error::NonFinite { row: 1 })
        ));
        let top = search(&q, &[], 3, 3, &o).unwrap();
        assert_eq!(top, vec![Vec::<Hit>::new(); 2]);
    }
}
