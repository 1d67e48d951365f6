//! The scalar quantiser: FAISS's `QT_8bit` (per-dimension range trained on the data, one byte a
//! dimension) and `QT_fp16` (IEEE half floats), with FAISS's encoding arithmetic.
//!
//! 8-bit, per dimension `i`, trained with FAISS's default range statistic (`RS_minmax`, argument
//! 0): `vmin[i]` = the smallest training value, `vdiff[i]` = largest − smallest. A value `x`
//! encodes as `c = trunc(255 · clamp((x − vmin) / vdiff, 0, 1))` (0 where `vdiff` is 0) and
//! decodes as `vmin + (c + 0.5) / 255 · vdiff`.
//!
//! fp16: FAISS 1.15's portable conversion (Fabian Giesen's), which rounds a value exactly
//! half-way between two half floats away from zero (not to even), and saturates above the
//! largest half to infinity as IEEE does; the decode is exact.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::{MAX_DIM, check_rows};

/// The kind of scalar quantisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SqKind {
    /// One byte a dimension over a per-dimension range learnt from the data (FAISS `QT_8bit`).
    #[default]
    Sq8,
    /// IEEE half floats, two bytes a dimension, no training (FAISS `QT_fp16`).
    Fp16,
}

impl SqKind {
    /// FAISS's `QuantizerType` code (`QT_8bit` = 0, `QT_fp16` = 4).
    pub fn faiss_code(self) -> i32 {
        match self {
            SqKind::Sq8 => 0,
            SqKind::Fp16 => 4,
        }
    }

    /// The kind of a FAISS `QuantizerType` code, if supported.
    pub fn from_faiss_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(SqKind::Sq8),
            4 => Some(SqKind::Fp16),
            _ => None,
        }
    }

    /// Bytes per dimension.
    pub fn bytes_per_dim(self) -> usize {
        match self {
            SqKind::Sq8 => 1,
            SqKind::Fp16 => 2,
        }
    }
}

impl std::fmt::Display for SqKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SqKind::Sq8 => "sq8",
            SqKind::Fp16 => "fp16",
        })
    }
}

impl std::str::FromStr for SqKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sq8" | "8bit" => Ok(SqKind::Sq8),
            "fp16" | "f16" => Ok(SqKind::Fp16),
            other => Err(Error::Unsupported(format!(
                "scalar quantiser {other:?} (use sq8 or fp16)"
            ))),
        }
    }
}

/// A trained scalar quantiser for `dim`-dimensional vectors.
///
/// ```
/// use vecindex::sq::{ScalarQuantizer, SqKind};
/// let data = [0.0, -1.0, 1.0, 1.0];
/// let sq = ScalarQuantizer::train(SqKind::Sq8, 2, &data)?;
/// let mut codes = Vec::new();
/// sq.encode(&data, &mut codes)?;
/// assert_eq!(codes, [0, 0, 255, 255]);
/// let mut back = [0.0; 2];
/// sq.decode(&codes[2..], &mut back);
/// assert!((back[0] - 1.0).abs() < 0.01);
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarQuantizer {
    kind: SqKind,
    dim: usize,
    /// Sq8: per-dimension minimum (empty for fp16).
    vmin: Vec<f32>,
    /// Sq8: per-dimension range (empty for fp16).
    vdiff: Vec<f32>,
}

fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidDimension(dim));
    }
    Ok(())
}

impl ScalarQuantizer {
    /// Trains a quantiser of `kind` on row-major `data` (at least one vector for [`SqKind::Sq8`];
    /// fp16 needs no data and ignores it).
    pub fn train(kind: SqKind, dim: usize, data: &[f32]) -> Result<Self> {
        check_dim(dim)?;
        let n = check_rows(data, dim)?;
        match kind {
            SqKind::Fp16 => Ok(Self::fp16(dim)?),
            SqKind::Sq8 => {
                if n == 0 {
                    return Err(Error::Unsupported(
                        "training an 8-bit scalar quantiser needs at least one vector".into(),
                    ));
                }
                let mut vmin = data[..dim].to_vec();
                let mut vmax = vmin.clone();
                for row in data.chunks_exact(dim).skip(1) {
                    for ((lo, hi), &x) in vmin.iter_mut().zip(&mut vmax).zip(row) {
                        if x < *lo {
                            *lo = x;
                        }
                        if x > *hi {
                            *hi = x;
                        }
                    }
                }
                let vdiff = vmax.iter().zip(&vmin).map(|(hi, lo)| hi - lo).collect();
                Self::sq8(vmin, vdiff)
            }
        }
    }

    /// An fp16 quantiser (no training).
    pub fn fp16(dim: usize) -> Result<Self> {
        check_dim(dim)?;
        Ok(Self {
            kind: SqKind::Fp16,
            dim,
            vmin: Vec::new(),
            vdiff: Vec::new(),
        })
    }

    /// An 8-bit quantiser from its trained ranges (FAISS's `trained` = `vmin ++ vdiff`). Both
    /// must have the same non-zero length and hold finite values.
    pub fn sq8(vmin: Vec<f32>, vdiff: Vec<f32>) -> Result<Self> {
        check_dim(vmin.len())?;
        if vdiff.len() != vmin.len() {
            return Err(Error::DimensionMismatch {
                expected: vmin.len(),
                got: vdiff.len(),
            });
        }
        if vmin.iter().chain(&vdiff).any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row: 0 });
        }
        Ok(Self {
            kind: SqKind::Sq8,
            dim: vmin.len(),
            vmin,
            vdiff,
        })
    }

    /// The kind of quantisation.
    pub fn kind(&self) -> SqKind {
        self.kind
    }

    /// Dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes per encoded vector.
    pub fn code_size(&self) -> usize {
        self.dim * self.kind.bytes_per_dim()
    }

    /// Sq8: the per-dimension minimum (empty for fp16).
    pub fn vmin(&self) -> &[f32] {
        &self.vmin
    }

    /// Sq8: the per-dimension range (empty for fp16).
    pub fn vdiff(&self) -> &[f32] {
        &self.vdiff
    }

    /// Encodes row-major `vectors` (finite values), appending `code_size()` bytes per vector
    /// to `out`.
    pub fn encode(&self, vectors: &[f32], out: &mut Vec<u8>) -> Result<()> {
        let n = check_rows(vectors, self.dim)?;
        let (start, size) = (out.len(), self.code_size());
        out.resize(start + n * size, 0);
        out[start..]
            .par_chunks_exact_mut(size)
            .zip(vectors.par_chunks_exact(self.dim))
            .with_min_len(256)
            .for_each(|(code, v)| self.encode_into(v, code));
        Ok(())
    }

    fn encode_into(&self, v: &[f32], code: &mut [u8]) {
        match self.kind {
            SqKind::Sq8 => {
                for (((c, &x), &lo), &diff) in
                    code.iter_mut().zip(v).zip(&self.vmin).zip(&self.vdiff)
                {
                    let mut t = 0.0f32;
                    if diff != 0.0 {
                        t = ((x - lo) / diff).clamp(0.0, 1.0);
                    }
                    // Truncation, as FAISS's `(int)(255 * x)`.
                    *c = (255.0f32 * t) as u8;
                }
            }
            SqKind::Fp16 => {
                for (c, &x) in code.chunks_exact_mut(2).zip(v) {
                    c.copy_from_slice(&f32_to_f16(x).to_le_bytes());
                }
            }
        }
    }

    /// Decodes one code (`code_size()` bytes) into `out` (`dim` floats).
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        match self.kind {
            SqKind::Sq8 => {
                for (((o, &c), &lo), &diff) in
                    out.iter_mut().zip(code).zip(&self.vmin).zip(&self.vdiff)
                {
                    *o = lo + (c as f32 + 0.5) / 255.0 * diff;
                }
            }
            SqKind::Fp16 => {
                for (o, c) in out.iter_mut().zip(code.chunks_exact(2)) {
                    *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
        }
    }

    /// The affine form of a decoded 8-bit value: `x̂[i] = base[i] + step[i] · c[i]`.
    pub(crate) fn affine(&self) -> (Vec<f32>, Vec<f32>) {
        let step: Vec<f32> = self.vdiff.iter().map(|d| d / 255.0).collect();
        let base = self
            .vmin
            .iter()
            .zip(&step)
            .map(|(lo, s)| lo + 0.5 * s)
            .collect();
        (base, step)
    }
}

/// f32 to IEEE half as FAISS's portable `encode_fp16` does it: round half away from zero,
/// values above the largest half (after rounding) to infinity, NaN to a quiet NaN.
pub fn f32_to_f16(f: f32) -> u16 {
    const F32_INF: u32 = 255 << 23;
    const ROUND_MASK: u32 = !0xfff;
    const MAGIC: u32 = 15 << 23;
    let bits = f.to_bits();
    let sign = bits & 0x8000_0000;
    let abs = bits ^ sign;
    let mut out = if abs > F32_INF { 0x7e00 } else { 0x7c00 };
    if abs < F32_INF {
        // Scale the exponent down by 2^-112 after cutting the low 12 bits (keeping the half
        // bit), cap below the overflow, then add half an f16 ulp: the carry rounds.
        let scaled = f32::from_bits(abs & ROUND_MASK) * f32::from_bits(MAGIC);
        let scaled = scaled.min(f32::from_bits((31 << 23) - 0x1000));
        out = scaled.to_bits().wrapping_add(0x1000) >> 13;
    }
    (out | (sign >> 16)) as u16
}

/// IEEE half to f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    match exp {
        0 => {
            // Zero or subnormal: man · 2^-24, exact in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            if sign != 0 { -v } else { v }
        }
        31 => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        e => f32::from_bits(sign | ((e + 112) << 23) | (man << 13)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Halves converted back are the same value; the conversion agrees with IEEE
    /// round-to-nearest except exactly at half-way points, which round away from zero.
    #[test]
    fn fp16_round_trips_every_half() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert_eq!(f32_to_f16(f) & 0x7e00, 0x7e00);
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "{h:#x} -> {f}");
        }
        // Half-way between 1.0 and the next half: away from zero (FAISS 1.15 gives 0x3c01).
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c01);
        assert_eq!(f32_to_f16(-(1.0 + 2f32.powi(-11))), 0xbc01);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(1e-7), 0x2);
        assert_eq!(f32_to_f16(3e-5), 0x1f7);
    }

    /// The 8-bit codes span the trained range: the minimum codes 0, the maximum 255, values
    /// outside clamp, a constant dimension codes 0.
    #[test]
    fn sq8_codes_cover_the_range() {
        let data = [0.0, 5.0, 1.0, 2.0, 5.0, 3.0];
        let sq = ScalarQuantizer::train(SqKind::Sq8, 3, &data).unwrap();
        assert_eq!(sq.vmin(), &[0.0, 5.0, 1.0]);
        assert_eq!(sq.vdiff(), &[2.0, 0.0, 2.0]);
        let mut codes = Vec::new();
        sq.encode(&[0.0, 5.0, 3.0, -1.0, 9.0, 10.0, 1.0, 5.0, 2.0], &mut codes)
            .unwrap();
        assert_eq!(codes, [0, 0, 255, 0, 0, 255, 127, 0, 127]);
        let mut out = [0.0; 3];
        sq.decode(&codes[6..], &mut out);
        assert!((out[0] - (0.0 + 127.5 / 255.0 * 2.0)).abs() < 1e-6);
        assert_eq!(out[1], 5.0);
    }
}
