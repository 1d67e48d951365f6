//! [`AnyIndex`]: one value for every kind this crate builds, built from a [`Plan`], written
//! and opened by file kind ([`peek_kind`]).

use std::path::Path;

use crate::choose::{IndexType, Plan};
use crate::error::Result;
use crate::faiss_io::ReadOptions;
use crate::ivf::IvfPqIndex;
use crate::persist::{IndexKind, peek_kind};
use crate::sq::{FlatSqIndex, SqKind, SqOptions};
use crate::{FlatIndex, HnswIndex, HnswSqIndex, Metric, VectorIndex};

/// An index of any kind this crate builds.
#[derive(Debug)]
pub enum AnyIndex {
    /// Exact search over f32 rows.
    Flat(FlatIndex),
    /// HNSW over f32 rows.
    Hnsw(Box<HnswIndex>),
    /// Exact search over scalar-quantised codes.
    Sq(FlatSqIndex),
    /// HNSW over scalar-quantised codes.
    HnswSq(Box<HnswSqIndex>),
    /// IVF with product quantisation.
    IvfPq(Box<IvfPqIndex>),
}

impl AnyIndex {
    /// Builds the index `plan` describes from ids and row-major vectors; `progress(done,
    /// total)` is called during HNSW insertion (other kinds do not report).
    ///
    /// ```
    /// use vecindex::{AnyIndex, HnswParams, IndexType, Metric, Plan, VectorIndex};
    /// let data = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
    /// let plan = Plan::of(IndexType::HnswSq8, 3, 2, HnswParams::default());
    /// let index = AnyIndex::build(&plan, 2, Metric::InnerProduct, &["a", "b", "c"], &data,
    ///                             &|_, _| ())?;
    /// let hits = index.as_dyn().search(&[0.0, 1.0], 1)?;
    /// assert_eq!(index.as_dyn().id(hits[0][0].row), Some("b"));
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    pub fn build<S: AsRef<str>>(
        plan: &Plan,
        dim: usize,
        metric: Metric,
        ids: &[S],
        vectors: &[f32],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Self> {
        Ok(match plan.kind {
            IndexType::Flat => AnyIndex::Flat(FlatIndex::from_vectors(dim, metric, ids, vectors)?),
            IndexType::Hnsw => {
                let mut index = HnswIndex::new(dim, metric, plan.hnsw, ids.len())?;
                index.add_with_progress(ids, vectors, progress)?;
                AnyIndex::Hnsw(Box::new(index))
            }
            IndexType::Sq8 | IndexType::F16 => {
                let kind = if plan.kind == IndexType::Sq8 {
                    SqKind::Sq8
                } else {
                    SqKind::Fp16
                };
                AnyIndex::Sq(FlatSqIndex::build(
                    dim,
                    metric,
                    SqOptions { kind },
                    ids,
                    vectors,
                )?)
            }
            IndexType::HnswSq8 => {
                let mut index = HnswSqIndex::train(dim, metric, SqKind::Sq8, plan.hnsw, vectors)?;
                index.add_with_progress(ids, vectors, progress)?;
                AnyIndex::HnswSq(Box::new(index))
            }
            IndexType::IvfPq => AnyIndex::IvfPq(Box::new(IvfPqIndex::build(
                dim, metric, plan.ivfpq, ids, vectors,
            )?)),
        })
    }

    /// Adds vectors as [`VectorIndex::add`] does (compressed kinds encode them with the
    /// quantisers they were trained with).
    pub fn add<S: AsRef<str>>(&mut self, ids: &[S], vectors: &[f32]) -> Result<()> {
        self.add_with_progress(ids, vectors, &|_, _| ())
    }

    /// [`AnyIndex::add`], calling `progress(done, total)` during HNSW insertion (other kinds
    /// do not report).
    pub fn add_with_progress<S: AsRef<str>>(
        &mut self,
        ids: &[S],
        vectors: &[f32],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<()> {
        match self {
            AnyIndex::Flat(i) => i.add(ids, vectors),
            AnyIndex::Hnsw(i) => i.add_with_progress(ids, vectors, progress),
            AnyIndex::Sq(i) => i.add(ids, vectors),
            AnyIndex::HnswSq(i) => i.add_with_progress(ids, vectors, progress),
            AnyIndex::IvfPq(i) => i.add(ids, vectors),
        }
    }

    /// Records the model id the vectors came from (stored by the formats that keep one).
    pub fn with_model_id(self, model_id: impl Into<String>) -> Self {
        match self {
            AnyIndex::Flat(i) => AnyIndex::Flat(i.with_model_id(model_id)),
            AnyIndex::Hnsw(i) => AnyIndex::Hnsw(Box::new(i.with_model_id(model_id))),
            AnyIndex::Sq(i) => AnyIndex::Sq(i.with_model_id(model_id)),
            AnyIndex::HnswSq(i) => AnyIndex::HnswSq(Box::new(i.with_model_id(model_id))),
            AnyIndex::IvfPq(i) => AnyIndex::IvfPq(Box::new(i.with_model_id(model_id))),
        }
    }

    /// Writes the index: HNSW over f32 in this crate's format ([`HnswIndex::save`]), every
    /// other kind as a FAISS file with its ids sidecar.
    pub fn write(&self, path: &Path) -> Result<()> {
        match self {
            AnyIndex::Flat(i) => i.write_faiss(path),
            AnyIndex::Hnsw(i) => i.save(path),
            AnyIndex::Sq(i) => i.write_faiss(path),
            AnyIndex::HnswSq(i) => i.write_faiss(path),
            AnyIndex::IvfPq(i) => i.write_faiss(path),
        }
    }

    /// Opens a file of any kind [`peek_kind`] recognises (`options` apply to FAISS files).
    pub fn open(path: &Path, options: ReadOptions) -> Result<Self> {
        Ok(match peek_kind(path)? {
            IndexKind::Faiss => AnyIndex::Flat(FlatIndex::read_faiss(path, options)?),
            IndexKind::Flat => AnyIndex::Flat(FlatIndex::load(path)?),
            IndexKind::Hnsw => AnyIndex::Hnsw(Box::new(HnswIndex::load(path)?)),
            IndexKind::FaissSq => AnyIndex::Sq(FlatSqIndex::read_faiss(path, options)?),
            IndexKind::FaissHnswSq => {
                AnyIndex::HnswSq(Box::new(HnswSqIndex::read_faiss(path, options)?))
            }
            IndexKind::FaissIvfPq => {
                AnyIndex::IvfPq(Box::new(IvfPqIndex::read_faiss(path, options)?))
            }
        })
    }

    /// The index behind the common trait.
    pub fn as_dyn(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i.as_ref(),
            AnyIndex::Sq(i) => i,
            AnyIndex::HnswSq(i) => i.as_ref(),
            AnyIndex::IvfPq(i) => i.as_ref(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> IndexType {
        match self {
            AnyIndex::Flat(_) => IndexType::Flat,
            AnyIndex::Hnsw(_) => IndexType::Hnsw,
            AnyIndex::Sq(i) if i.codes().quantizer().kind() == SqKind::Fp16 => IndexType::F16,
            AnyIndex::Sq(_) => IndexType::Sq8,
            AnyIndex::HnswSq(_) => IndexType::HnswSq8,
            AnyIndex::IvfPq(_) => IndexType::IvfPq,
        }
    }

    /// Bytes the search structures hold (vectors or codes, graph, centroids; not the ids).
    pub fn memory_bytes(&self) -> usize {
        match self {
            AnyIndex::Flat(i) => 4 * i.len() * i.dim(),
            AnyIndex::Hnsw(i) => i.search_copy_bytes(),
            AnyIndex::Sq(i) => i.memory_bytes(),
            AnyIndex::HnswSq(i) => i.memory_bytes(),
            AnyIndex::IvfPq(i) => i.memory_bytes(),
        }
    }

    /// Sets the candidate list size of HNSW kinds (ignored by the others; returns whether it
    /// applied).
    pub fn set_ef_search(&mut self, ef: usize) -> Result<bool> {
        match self {
            AnyIndex::Hnsw(i) => i.set_ef_search(ef).map(|()| true),
            AnyIndex::HnswSq(i) => i.set_ef_search(ef).map(|()| true),
            _ => Ok(false),
        }
    }

    /// Sets the lists an IVF-PQ index searches (ignored by the others; returns whether it
    /// applied).
    pub fn set_nprobe(&mut self, nprobe: usize) -> bool {
        match self {
            AnyIndex::IvfPq(i) => {
                i.set_nprobe(nprobe);
                true
            }
            _ => false,
        }
    }
}
