//! Inner products of two sets of rows as one matrix product, through `gemm`'s f32 kernels.

/// `out[i * nc + j] = x_i · c_j` over `len` floats, for `nx` rows of `x` starting every
/// `x_stride` floats and `nc` rows of `c` every `c_stride` floats. Multi-threaded on the rayon
/// pool when the product is large enough to pay for it (over 2^20 multiply-adds).
///
/// # Panics
/// If `x` or `c` is too short for its rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dots(
    x: &[f32],
    x_stride: usize,
    nx: usize,
    c: &[f32],
    c_stride: usize,
    nc: usize,
    len: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(nx * nc, 0.0);
    if nx == 0 || nc == 0 || len == 0 {
        return;
    }
    assert!(
        len <= x_stride.min(c_stride)
            && x.len() >= (nx - 1) * x_stride + len
            && c.len() >= (nc - 1) * c_stride + len,
        "matrix operands shorter than their rows"
    );
    let parallelism = if nx * nc * len > 1 << 20 {
        gemm_common::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm_common::Parallelism::None
    };
    // Computed as its transpose, out^T (nc x nx, column-major: row stride 1, column stride nc)
    // = c (nc x len: row stride c_stride, column stride 1) x x^T (len x nx: row stride 1, column
    // stride x_stride): the orientation gemm's kernels take (the `gemm` crate's generic entry
    // point swaps the operands to it before calling this same f32 kernel; calling the f32 crate
    // directly spares building that crate's f64 and complex kernels).
    // SAFETY: `out` holds nx x nc floats and the assertion above bounds every element of `x`
    // and `c` the strides reach; `out` is a fresh buffer that aliases neither.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            nc,
            nx,
            len,
            out.as_mut_ptr(),
            nc as isize,
            1,
            false,
            c.as_ptr(),
            1,
            c_stride as isize,
            x.as_ptr(),
            x_stride as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the plain triple loop, on odd sizes and strides wider than the rows, both sides
    /// of the threading threshold.
    #[test]
    fn dots_equal_the_plain_products() {
        for (nx, nc, len, pad) in [(1, 1, 1, 0), (3, 5, 7, 2), (17, 1, 33, 1), (300, 70, 64, 3)] {
            let xs = len + pad;
            let cs = len + 2 * pad;
            let x: Vec<f32> = (0..nx * xs)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                .collect();
            let c: Vec<f32> = (0..nc * cs)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 24.0)
                .collect();
            let mut out = Vec::new();
            dots(&x, xs, nx, &c, cs, nc, len, &mut out);
            for i in 0..nx {
                for j in 0..nc {
                    let want: f32 = (0..len).map(|t| x[i * xs + t] * c[j * cs + t]).sum();
                    let got = out[i * nc + j];
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "({i}, {j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
