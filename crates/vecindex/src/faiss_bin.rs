//! Reading and writing the pieces FAISS's compressed index files are made of
//! (`faiss/impl/index_write.cpp`): little-endian scalars back to back, `std::vector`s as a u64
//! element count followed by the elements, and the header every index starts with (fourcc,
//! d i32, ntotal i64, two ignored i64 = 2^20, is_trained u8, metric_type i32).
//!
//! The reader works on the whole file mapped read-only and checks every length against what
//! is left of it before anything is allocated, so a damaged file is an error, never a panic
//! or an allocation of a size read from the file.

use std::fs::File;
use std::path::Path;

use crate::error::{Result, format_err, io_err};
use crate::persist::AtomicFile;
use crate::{MAX_DIM, Metric};

/// The value FAISS writes in the two unused header fields.
const DUMMY: i64 = 1 << 20;

/// A file's bytes: mapped, or empty.
pub(crate) enum FileBytes {
    Mapped(memmap2::Mmap),
    Empty,
}

impl FileBytes {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        if len == 0 {
            return Ok(FileBytes::Empty);
        }
        // SAFETY: read-only map; like every mmap user we rely on the file not being truncated
        // while it is parsed (the parse copies what it keeps).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
        Ok(FileBytes::Mapped(map))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Empty => &[],
        }
    }
}

/// The common index header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) dim: usize,
    pub(crate) ntotal: usize,
    pub(crate) metric: Metric,
    pub(crate) trained: bool,
}

/// A bounded cursor over a file's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], path: &'a Path) -> Self {
        Self { buf, pos: 0, path }
    }

    /// An error about this file.
    pub(crate) fn err(&self, message: impl Into<String>) -> crate::Error {
        format_err(self.path, message)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "truncated in {what}: {n} bytes needed at offset {}, file has {}",
                self.pos,
                self.buf.len()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N, what)?);
        Ok(b)
    }

    pub(crate) fn fourcc(&mut self, what: &str) -> Result<[u8; 4]> {
        self.array(what)
    }
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u64 that must be at most `max`, as a usize.
    pub(crate) fn size(&mut self, max: u64, what: &str) -> Result<usize> {
        let v = self.u64(what)?;
        if v > max {
            return Err(self.err(format!("{what} {v} exceeds {max}")));
        }
        usize::try_from(v).map_err(|_| self.err(format!("{what} {v} too large")))
    }

    /// A vector's element count, checked against the bytes left in the file.
    pub(crate) fn vec_len(&mut self, elem: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        match n.checked_mul(elem as u64) {
            Some(bytes) if bytes <= self.remaining() as u64 => Ok(n as usize),
            _ => Err(self.err(format!(
                "{what}: {n} elements of {elem} bytes exceed the {} bytes left at offset {}",
                self.remaining(),
                self.pos
            ))),
        }
    }

    /// A `std::vector<uint8_t>`.
    pub(crate) fn byte_vec(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.vec_len(1, what)?;
        self.take(n, what)
    }

    /// A `std::vector<float>`; every value must be finite.
    pub(crate) fn f32_vec(&mut self, what: &str) -> Result<Vec<f32>> {
        let n = self.vec_len(4, what)?;
        self.f32s(n, what)
    }

    /// `n` little-endian i64 (checked against the bytes left).
    pub(crate) fn i64s(&mut self, n: usize, what: &str) -> Result<Vec<i64>> {
        let bytes = self.take(
            n.checked_mul(8)
                .ok_or_else(|| self.err(format!("{what}: too many")))?,
            what,
        )?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// A `std::vector<int64_t>` or `std::vector<size_t>` (as i64).
    pub(crate) fn i64_vec(&mut self, what: &str) -> Result<Vec<i64>> {
        let n = self.vec_len(8, what)?;
        self.i64s(n, what)
    }

    /// `n` little-endian f32, every one finite.
    pub(crate) fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let bytes = self.take(
            n.checked_mul(4)
                .ok_or_else(|| self.err(format!("{what}: too many")))?,
            what,
        )?;
        let v: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if v.iter().any(|x| !x.is_finite()) {
            return Err(self.err(format!("{what} holds a non-finite value")));
        }
        Ok(v)
    }

    /// The common header after the fourcc.
    pub(crate) fn header(&mut self) -> Result<Header> {
        let d = self.i32("d")?;
        let ntotal = self.i64("ntotal")?;
        self.take(16, "header")?;
        let trained = self.u8("is_trained")?;
        let metric_type = self.i32("metric_type")?;
        if d <= 0 || d as usize > MAX_DIM {
            return Err(self.err(format!("dimension {d} outside 1..=2^20")));
        }
        if ntotal < 0 {
            return Err(self.err(format!("negative ntotal {ntotal}")));
        }
        if trained > 1 {
            return Err(self.err(format!("is_trained byte is {trained}, not 0 or 1")));
        }
        let metric = match metric_type {
            0 => Metric::InnerProduct,
            1 => Metric::L2,
            m => return Err(self.err(format!("unsupported metric_type {m}"))),
        };
        Ok(Header {
            dim: d as usize,
            ntotal: usize::try_from(ntotal).map_err(|_| self.err("ntotal too large"))?,
            metric,
            trained: trained == 1,
        })
    }

    /// Errors unless the whole file was read.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} bytes of trailing data", self.remaining())));
        }
        Ok(())
    }
}

/// A little-endian byte buffer being assembled for a file.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn f32(&mut self, v: f32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn f32_vec(&mut self, v: &[f32]) -> &mut Self {
        self.u64(v.len() as u64);
        for x in v {
            self.f32(*x);
        }
        self
    }
    /// Fourcc and common header.
    pub(crate) fn header(
        &mut self,
        fourcc: &[u8; 4],
        dim: usize,
        ntotal: usize,
        metric: Metric,
    ) -> &mut Self {
        self.bytes(fourcc)
            .i32(dim as i32)
            .i64(ntotal as i64)
            .i64(DUMMY)
            .i64(DUMMY)
            .bytes(&[1])
            .i32(metric.faiss_code())
    }
    /// Moves the buffer into the file.
    pub(crate) fn flush(&mut self, f: &mut AtomicFile) -> Result<()> {
        f.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

/// The flat quantiser fourcc for a metric (`IxFI` inner product, `IxF2` L2).
pub(crate) fn flat_fourcc(metric: Metric) -> &'static [u8; 4] {
    match metric {
        Metric::InnerProduct | Metric::Cosine => b"IxFI",
        Metric::L2 => b"IxF2",
    }
}
