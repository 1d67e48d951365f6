//! FAISS `IndexScalarQuantizer` files (`IxSQ`).
//!
//! Layout after the common header ([`crate::faiss_bin`]): the quantiser — qtype i32
//! (`QT_8bit` 0, `QT_fp16` 4), rangestat i32, rangestat_arg f32, d u64, code_size u64,
//! trained `vector<float>` (`vmin ++ vdiff` for 8-bit, empty for fp16) — then the codes as a
//! `vector<uint8_t>` of ntotal × code_size bytes. String ids live in the same sidecar as flat
//! files ([`crate::faiss_io::sidecar_path`]).

use std::path::Path;

use super::codec::{ScalarQuantizer, SqKind};
use super::flat::FlatSqIndex;
use super::storage::SqCodes;
use crate::error::Result;
use crate::faiss_bin::{FileBytes, Reader, Writer};
use crate::faiss_io::{
    ReadOptions, commit_with_sidecars, create_with_sidecars, load_ids, verified_meta,
};
use crate::{MAX_DIM, VectorIndex};

/// Reads a scalar quantiser block; `dim` is the header's.
pub(crate) fn read_quantizer(r: &mut Reader<'_>, dim: usize) -> Result<ScalarQuantizer> {
    let qtype = r.i32("qtype")?;
    let kind = SqKind::from_faiss_code(qtype).ok_or_else(|| {
        r.err(format!(
            "scalar quantiser type {qtype} is not supported (QT_8bit 0 and QT_fp16 4 are)"
        ))
    })?;
    let _rangestat = r.i32("rangestat")?;
    let _rangestat_arg = r.f32("rangestat_arg")?;
    let d = r.size(MAX_DIM as u64, "quantiser d")?;
    if d != dim {
        return Err(r.err(format!(
            "quantiser dimension {d} differs from the index's {dim}"
        )));
    }
    let code_size = r.size(u64::MAX, "code_size")?;
    if code_size != d * kind.bytes_per_dim() {
        return Err(r.err(format!(
            "code_size {code_size} is not {} for {kind} at d {d}",
            d * kind.bytes_per_dim()
        )));
    }
    let trained = r.f32_vec("trained")?;
    match kind {
        SqKind::Sq8 => {
            if trained.len() != 2 * d {
                return Err(r.err(format!(
                    "8-bit quantiser holds {} trained values, not 2 * d = {} (untrained?)",
                    trained.len(),
                    2 * d
                )));
            }
            let vdiff = trained[d..].to_vec();
            let mut vmin = trained;
            vmin.truncate(d);
            ScalarQuantizer::sq8(vmin, vdiff)
        }
        SqKind::Fp16 => {
            if !trained.is_empty() {
                return Err(r.err("fp16 quantiser holds trained values"));
            }
            ScalarQuantizer::fp16(d)
        }
    }
}

/// Writes a scalar quantiser block.
pub(crate) fn write_quantizer(w: &mut Writer, sq: &ScalarQuantizer) {
    let trained: Vec<f32> = sq.vmin().iter().chain(sq.vdiff()).copied().collect();
    w.i32(sq.kind().faiss_code())
        .i32(0) // RS_minmax
        .f32(0.0)
        .u64(sq.dim() as u64)
        .u64(sq.code_size() as u64)
        .f32_vec(&trained);
}

impl FlatSqIndex {
    /// Reads a FAISS `IndexScalarQuantizer` file (`IxSQ`, 8-bit or fp16, inner product or L2).
    /// Ids come from the sidecar or are row numbers, per `options.ids` (`options.mmap` is
    /// ignored: the codes are read into memory).
    ///
    /// ```no_run
    /// use vecindex::sq::FlatSqIndex;
    /// let index = FlatSqIndex::read_faiss(std::path::Path::new("refs.sq8"), Default::default())?;
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    pub fn read_faiss(path: &Path, options: ReadOptions) -> Result<Self> {
        let file = FileBytes::open(path)?;
        let meta = verified_meta(path, file.bytes())?;
        let mut r = Reader::new(file.bytes(), path);
        let four = r.fourcc("fourcc")?;
        if &four != b"IxSQ" {
            return Err(r.err(format!(
                "fourcc {:?} is not a scalar quantiser index (IxSQ)",
                String::from_utf8_lossy(&four)
            )));
        }
        let h = r.header()?;
        let sq = read_quantizer(&mut r, h.dim)?;
        let codes = r.byte_vec("codes")?;
        if Some(codes.len()) != h.ntotal.checked_mul(sq.code_size()) {
            return Err(r.err(format!(
                "{} code bytes for {} vectors of {} bytes",
                codes.len(),
                h.ntotal,
                sq.code_size()
            )));
        }
        r.finish()?;
        let metric = match &meta {
            Some(meta) => meta.metric(path, h.metric)?,
            None => h.metric,
        };
        let codes = SqCodes::from_codes(sq, metric, codes.to_vec())?;
        let ids = load_ids(path, h.ntotal, options, meta.as_ref())?;
        FlatSqIndex::from_parts(codes, ids)
    }

    /// Writes the index as a FAISS `IndexScalarQuantizer` file (loadable with
    /// `faiss.read_index`) and its ids to the sidecar; both written to temporary files,
    /// synced and renamed.
    pub fn write_faiss(&self, path: &Path) -> Result<()> {
        let mut f = create_with_sidecars(path)?;
        let mut w = Writer::default();
        w.header(b"IxSQ", self.dim(), self.len(), self.metric());
        write_quantizer(&mut w, self.codes.quantizer());
        w.u64(self.codes.codes().len() as u64);
        w.flush(&mut f)?;
        for chunk in self.codes.codes().chunks(1 << 24) {
            f.write_all(chunk)?;
        }
        commit_with_sidecars(f, path, self.metric(), &self.ids)
    }
}
