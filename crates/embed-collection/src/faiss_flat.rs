//! Streaming writer of the flat index: a FAISS `IndexFlatIP` (`IxFI`) or `IndexFlatL2`
//! (`IxF2`) file, the layout `vecindex::faiss_io` reads and `faiss.read_index` opens:
//!
//! ```text
//! offset size field
//!      0    4 fourcc IxFI / IxF2
//!      4    4 d (i32)
//!      8    8 ntotal (i64)           patched when the writer finishes
//!     16   16 two i64, 1 << 20 each  (unused by FAISS)
//!     32    1 is_trained = 1
//!     33    4 metric_type (i32: 0 inner product, 1 L2)
//!     37    8 float count = ntotal * d (u64), patched when the writer finishes
//!     45      ntotal * d little-endian f32
//! ```
//! vecindex writes these files from a `FlatIndex` held in memory; a collection streams its
//! rows instead (the shards can be larger than memory), and appends copy the old file's rows.
//! Files written here are read back with `vecindex::FlatIndex::read_faiss` when opened.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use vecindex::Metric;

use crate::error::{Result, damaged, io_err};

const HEADER: usize = 45;
const DUMMY: i64 = 1 << 20;

fn header(dim: usize, rows: usize, metric: Metric) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(match metric {
        // Rows are normalised before they get here: a cosine index is an inner-product file.
        Metric::InnerProduct | Metric::Cosine => b"IxFI",
        Metric::L2 => b"IxF2",
    });
    h[4..8].copy_from_slice(&(dim as i32).to_le_bytes());
    h[8..16].copy_from_slice(&(rows as i64).to_le_bytes());
    h[16..24].copy_from_slice(&DUMMY.to_le_bytes());
    h[24..32].copy_from_slice(&DUMMY.to_le_bytes());
    h[32] = 1;
    h[33..37].copy_from_slice(&metric.faiss_code().to_le_bytes());
    h[37..45].copy_from_slice(&((rows * dim) as u64).to_le_bytes());
    h
}

/// A flat index file being written row block by row block.
pub(crate) struct FlatWriter {
    path: PathBuf,
    out: BufWriter<File>,
    dim: usize,
    metric: Metric,
    rows: usize,
    body_crc: crc32fast::Hasher,
    buf: Vec<u8>,
}

impl FlatWriter {
    pub(crate) fn create(path: &Path, dim: usize, metric: Metric) -> Result<Self> {
        let file = File::create(path).map_err(io_err(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(dim, 0, metric))
            .map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            dim,
            metric,
            rows: 0,
            body_crc: crc32fast::Hasher::new(),
            buf: Vec::new(),
        })
    }

    /// Appends row-major rows.
    pub(crate) fn push(&mut self, rows: &[f32]) -> Result<()> {
        self.buf.clear();
        self.buf.extend(rows.iter().flat_map(|v| v.to_le_bytes()));
        self.push_bytes()?;
        self.rows += rows.len() / self.dim;
        Ok(())
    }

    fn push_bytes(&mut self) -> Result<()> {
        self.body_crc.update(&self.buf);
        self.out.write_all(&self.buf).map_err(io_err(&self.path))
    }

    /// Copies the rows of an existing flat file (checked to have this dimension and metric).
    pub(crate) fn copy_rows_of(&mut self, old: &Path) -> Result<()> {
        let mut r = BufReader::with_capacity(1 << 20, File::open(old).map_err(io_err(old))?);
        let mut head = [0u8; HEADER];
        r.read_exact(&mut head)
            .map_err(|_| damaged(old, "too short for a FAISS flat index"))?;
        let rows = i64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        let rows = usize::try_from(rows).map_err(|_| damaged(old, "negative ntotal"))?;
        if head != header(self.dim, rows, self.metric) {
            return Err(damaged(
                old,
                "not a flat index of this collection's dimension and metric",
            ));
        }
        let mut left = rows * self.dim * 4;
        self.buf.resize(1 << 20, 0);
        while left > 0 {
            let n = left.min(self.buf.len());
            self.buf.truncate(n);
            r.read_exact(&mut self.buf)
                .map_err(|_| damaged(old, "shorter than its header says"))?;
            self.push_bytes()?;
            left -= n;
            self.buf.resize(1 << 20, 0);
        }
        self.rows += rows;
        Ok(())
    }

    /// Writes the final header and syncs. Returns (bytes, crc32).
    pub(crate) fn finish(self) -> Result<(u64, u32)> {
        let path = self.path;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        let head = header(self.dim, self.rows, self.metric);
        file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
        file.write_all(&head).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.combine(&self.body_crc);
        Ok(((HEADER + self.rows * self.dim * 4) as u64, crc.finalize()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vecindex::VectorIndex;
    use vecindex::faiss_io::{IdSource, ReadOptions};

    /// vecindex reads the streamed file back with the rows pushed and copied, in order.
    #[test]
    fn vecindex_reads_streamed_and_copied_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.index"), dir.path().join("b.index"));
        let mut w = FlatWriter::create(&a, 2, Metric::InnerProduct).unwrap();
        w.push(&[1.0, 0.0, 0.0, 1.0]).unwrap();
        let (bytes, crc) = w.finish().unwrap();
        let file = std::fs::read(&a).unwrap();
        assert_eq!((bytes, crc), (file.len() as u64, crc32fast::hash(&file)));
        let mut w = FlatWriter::create(&b, 2, Metric::InnerProduct).unwrap();
        w.copy_rows_of(&a).unwrap();
        w.push(&[0.6, 0.8]).unwrap();
        w.finish().unwrap();
        let opts = ReadOptions {
            mmap: false,
            ids: IdSource::NoSidecar,
        };
        let index = vecindex::FlatIndex::read_faiss(&b, opts).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index.vectors(), [1.0, 0.0, 0.0, 1.0, 0.6, 0.8]);
        let mut w = FlatWriter::create(&a, 3, Metric::InnerProduct).unwrap();
        assert!(w.copy_rows_of(&b).is_err());
    }
}
