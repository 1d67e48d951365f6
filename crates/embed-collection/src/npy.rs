//! The embedding shards: 2-D `.npy` files (version 1.0, C order, little-endian `<f4` or `<f2`),
//! as numpy and clip-retrieval write them.
//!
//! The writer streams rows and does not know the row count up front, so it writes a header of
//! a fixed [`HEADER_LEN`] bytes (numpy pads its own to a multiple of 64 too) and rewrites it with
//! the real shape when the shard is closed.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, damaged, io_err};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Bytes before the data: magic, version, header length and the padded header dictionary.
pub(crate) const HEADER_LEN: usize = 128;

/// How the vectors are stored in the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Dtype {
    /// 32-bit floats (`<f4`).
    #[default]
    #[serde(rename = "float32")]
    F32,
    /// 16-bit floats (`<f2`), as clip-retrieval writes; the index holds the same rounded values.
    #[serde(rename = "float16")]
    F16,
}

impl Dtype {
    /// numpy's `descr` string.
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F16 => "<f2",
        }
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }

    /// `v` as stored and read back (f16 rounds).
    pub fn round(self, v: f32) -> f32 {
        match self {
            Dtype::F32 => v,
            Dtype::F16 => half::f16::from_f32(v).to_f32(),
        }
    }

    /// Widens the little-endian values stored in `bytes` into `out` (as many as both hold).
    fn widen_into(self, bytes: &[u8], out: &mut [f32]) {
        match self {
            Dtype::F32 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Dtype::F16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
        })
    }
}

fn header(dtype: Dtype, rows: usize, dim: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}",
        dtype.descr()
    );
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&((HEADER_LEN - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    // The dictionary of the largest shape numpy allows fits in 118 bytes.
    out.resize(HEADER_LEN - 1, b' ');
    out.push(b'\n');
    out
}

/// A shard being written: rows are appended, [`NpyWriter::finish`] writes the shape, syncs the
/// file and returns its size and CRC-32.
pub(crate) struct NpyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    dtype: Dtype,
    dim: usize,
    rows: usize,
    body_crc: crc32fast::Hasher,
    buf: Vec<u8>,
}

impl NpyWriter {
    pub(crate) fn create(path: &Path, dtype: Dtype, dim: usize) -> Result<Self> {
        let file = File::create(path).map_err(io_err(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(dtype, 0, dim))
            .map_err(io_err(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            dtype,
            dim,
            rows: 0,
            body_crc: crc32fast::Hasher::new(),
            buf: Vec::new(),
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Appends row-major rows (already normalised and, for f16, already rounded).
    pub(crate) fn push(&mut self, rows: &[f32]) -> Result<()> {
        self.buf.clear();
        match self.dtype {
            Dtype::F32 => self.buf.extend(rows.iter().flat_map(|v| v.to_le_bytes())),
            Dtype::F16 => self.buf.extend(
                rows.iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes()),
            ),
        }
        self.body_crc.update(&self.buf);
        self.out.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.rows += rows.len() / self.dim;
        Ok(())
    }

    /// Writes the final header and syncs. Returns (bytes, crc32).
    pub(crate) fn finish(self) -> Result<(u64, u32)> {
        let path = self.path;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        let head = header(self.dtype, self.rows, self.dim);
        file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
        file.write_all(&head).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.combine(&self.body_crc);
        let bytes = (HEADER_LEN + self.rows * self.dim * self.dtype.size()) as u64;
        Ok((bytes, crc.finalize()))
    }
}

/// What a shard's header says, checked against the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NpyInfo {
    pub(crate) dtype: Dtype,
    pub(crate) rows: usize,
    pub(crate) dim: usize,
    pub(crate) data_offset: u64,
}

/// Reads and checks the header of a 2-D `<f4`/`<f2` C-order `.npy` file.
pub(crate) fn read_info(path: &Path) -> Result<NpyInfo> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let bad = |m: String| damaged(path, m);
    let mut head = [0u8; 10];
    f.read_exact(&mut head)
        .map_err(|_| bad("too short for a .npy header".into()))?;
    if &head[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let (hlen, prefix) = match head[6] {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10),
        2 | 3 => {
            let mut more = [0u8; 2];
            f.read_exact(&mut more)
                .map_err(|_| bad("truncated .npy header".into()))?;
            let n = u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize;
            (n, 12)
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if hlen > 1 << 16 {
        return Err(bad(format!(".npy header of {hlen} bytes")));
    }
    let mut dict = vec![0u8; hlen];
    f.read_exact(&mut dict)
        .map_err(|_| bad("truncated .npy header".into()))?;
    let dict = String::from_utf8_lossy(&dict);
    let field = |key: &str| -> Option<&str> {
        let at = dict.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = dict[at..].trim_start().strip_prefix(':')?.trim_start();
        if rest.starts_with('(') {
            Some(&rest[..=rest.find(')')?])
        } else {
            Some(rest[..rest.find(',')?].trim().trim_matches('\''))
        }
    };
    let dtype = match field("descr") {
        Some("<f4") => Dtype::F32,
        Some("<f2") => Dtype::F16,
        other => {
            return Err(bad(format!(
                "dtype {} is neither <f4 nor <f2",
                other.unwrap_or("(none)")
            )));
        }
    };
    if field("fortran_order") != Some("False") {
        return Err(bad("not a C-order array".into()));
    }
    let shape = field("shape").ok_or_else(|| bad("header has no shape".into()))?;
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(format!("bad shape {shape}")))?;
    let [rows, dim] = dims[..] else {
        return Err(bad(format!("shape {shape} is not 2-D")));
    };
    let data_offset = (prefix + hlen) as u64;
    let want = rows
        .checked_mul(dim)
        .and_then(|n| n.checked_mul(dtype.size()))
        .map(|n| n as u64 + data_offset);
    if want != Some(len) {
        return Err(bad(format!(
            "file is {len} bytes; shape {shape} of {dtype} needs {}",
            want.map_or("more than 2^64".into(), |w| w.to_string())
        )));
    }
    Ok(NpyInfo {
        dtype,
        rows,
        dim,
        data_offset,
    })
}

/// Calls `each(first_row, rows)` on blocks of up to `block` rows of the shard, widened to f32.
pub(crate) fn for_each_block(
    path: &Path,
    info: &NpyInfo,
    block: usize,
    mut each: impl FnMut(usize, &[f32]) -> Result<()>,
) -> Result<()> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_err(path))?);
    r.seek(SeekFrom::Start(info.data_offset))
        .map_err(io_err(path))?;
    let size = info.dtype.size();
    let mut bytes = vec![0u8; block.max(1) * info.dim * size];
    let mut out = vec![0.0; block.max(1) * info.dim];
    let mut row = 0;
    while row < info.rows {
        let n = block.max(1).min(info.rows - row);
        let want = &mut bytes[..n * info.dim * size];
        r.read_exact(want)
            .map_err(|_| damaged(path, "shorter than its header says"))?;
        let out = &mut out[..n * info.dim];
        info.dtype.widen_into(want, out);
        each(row, out)?;
        row += n;
    }
    Ok(())
}

/// Reads single rows of a collection's shards, widened to f32: the exact vectors that
/// re-ranking scores a compressed index's candidates with. Each row is one positioned read of
/// `dim` values, so the shards are never loaded whole and the reads may run in parallel.
#[derive(Debug)]
pub(crate) struct RowReader {
    /// Per shard: its path, the open file, its header and its first row in the collection.
    shards: Vec<(PathBuf, File, NpyInfo, usize)>,
    rows: usize,
}

impl RowReader {
    /// Opens the shards `paths`, in row order.
    pub(crate) fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut shards = Vec::with_capacity(paths.len());
        let mut rows = 0;
        for path in paths {
            let info = read_info(path)?;
            let file = File::open(path).map_err(io_err(path))?;
            shards.push((path.clone(), file, info, rows));
            rows += info.rows;
        }
        Ok(Self { shards, rows })
    }

    /// Row `row` of the collection into `out` (`dim` floats).
    pub(crate) fn read(&self, row: usize, out: &mut [f32]) -> Result<()> {
        if row >= self.rows {
            return Err(crate::error::Error::Invalid(format!(
                "row {row} of {} vectors",
                self.rows
            )));
        }
        let at = self.shards.partition_point(|s| s.3 <= row) - 1;
        let (path, file, info, first) = &self.shards[at];
        let size = info.dtype.size();
        let out = &mut out[..info.dim];
        let mut offset = info.data_offset + ((row - first) * info.dim * size) as u64;
        // One positioned read per 4 KiB on the stack (a whole row up to 1,024 f32 values), no
        // allocation: re-ranking reads k x R rows a query.
        let mut bytes = [0u8; 4096];
        for values in out.chunks_mut(bytes.len() / size) {
            let bytes = &mut bytes[..values.len() * size];
            read_exact_at(file, bytes, offset).map_err(io_err(path))?;
            offset += bytes.len() as u64;
            info.dtype.widen_into(bytes, values);
        }
        Ok(())
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A streamed shard reads back with its shape, values and checksum, in both dtypes.
    #[test]
    fn streamed_shards_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [Dtype::F32, Dtype::F16] {
            let path = dir.path().join(format!("{dtype}.npy"));
            let mut w = NpyWriter::create(&path, dtype, 3).unwrap();
            w.push(&[0.5, -1.0, 0.25]).unwrap();
            w.push(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
            let (bytes, crc) = w.finish().unwrap();
            let file = std::fs::read(&path).unwrap();
            assert_eq!(bytes, file.len() as u64);
            assert_eq!(crc, crc32fast::hash(&file));
            let info = read_info(&path).unwrap();
            assert_eq!((info.rows, info.dim, info.dtype), (3, 3, dtype));
            let mut all = Vec::new();
            for_each_block(&path, &info, 2, |_, rows| {
                all.extend_from_slice(rows);
                Ok(())
            })
            .unwrap();
            assert_eq!(all, [0.5, -1.0, 0.25, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }
    }

    /// Single rows read across two shards (f32 and f16) equal the rows streamed in blocks, and
    /// a row past the end is an error.
    #[test]
    fn rows_read_one_at_a_time_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        let mut want = Vec::new();
        for (i, dtype) in [Dtype::F32, Dtype::F16].into_iter().enumerate() {
            let path = dir.path().join(format!("{i}.npy"));
            let mut w = NpyWriter::create(&path, dtype, 2).unwrap();
            let rows: Vec<f32> = (0..6).map(|v| (v + 10 * i) as f32 * 0.5).collect();
            w.push(&rows).unwrap();
            w.finish().unwrap();
            want.extend(rows.iter().map(|&v| dtype.round(v)));
            paths.push(path);
        }
        let reader = RowReader::open(&paths).unwrap();
        let mut out = [0.0f32; 2];
        for row in 0..6 {
            reader.read(row, &mut out).unwrap();
            assert_eq!(out, want[row * 2..row * 2 + 2], "row {row}");
        }
        assert!(reader.read(6, &mut out).is_err());
    }

    /// Rows longer than one 4 KiB read (d 2,500: three reads in f32, two in f16) come back
    /// whole.
    #[test]
    fn rows_longer_than_one_read_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 2500;
        for dtype in [Dtype::F32, Dtype::F16] {
            let path = dir.path().join(format!("{dtype:?}.npy"));
            let mut w = NpyWriter::create(&path, dtype, dim).unwrap();
            let rows: Vec<f32> = (0..3 * dim).map(|v| (v % 977) as f32 - 300.0).collect();
            w.push(&rows).unwrap();
            w.finish().unwrap();
            let reader = RowReader::open(&[path]).unwrap();
            let mut out = vec![0.0f32; dim];
            for row in 0..3 {
                reader.read(row, &mut out).unwrap();
                let want: Vec<f32> = rows[row * dim..(row + 1) * dim]
                    .iter()
                    .map(|&v| dtype.round(v))
                    .collect();
                assert_eq!(out, want, "{dtype:?} row {row}");
            }
        }
    }

    /// A truncated shard is refused with its name and the size it should have.
    #[test]
    fn a_truncated_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let mut w = NpyWriter::create(&path, Dtype::F32, 2).unwrap();
        w.push(&[1.0, 2.0]).unwrap();
        w.finish().unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(HEADER_LEN as u64 + 5).unwrap();
        let e = read_info(&path).unwrap_err().to_string();
        assert!(e.contains("a.npy") && e.contains("needs 136"), "{e}");
    }
}
