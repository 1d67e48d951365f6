//! A memory-mapped 2-D `.npy` file of little-endian f32 (`<f4`, C order), NumPy format
//! versions 1–3: the full-precision vectors a compressed index re-ranks its candidates with.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Result, format_err, io_err};

/// A read-only, memory-mapped `rows × cols` f32 matrix from a `.npy` file.
///
/// ```no_run
/// use vecindex::npy::NpyF32;
/// let refs = NpyF32::open(std::path::Path::new("refs.npy"))?;
/// let mut row = vec![0.0; refs.cols()];
/// refs.row_into(0, &mut row);
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Debug)]
pub struct NpyF32 {
    map: memmap2::Mmap,
    offset: usize,
    rows: usize,
    cols: usize,
    path: PathBuf,
}

impl NpyF32 {
    /// Opens and checks the header: magic, version, `descr` `'<f4'`, `fortran_order` False,
    /// a 2-D shape, and a file exactly as long as header plus data.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        if len < 10 {
            return Err(format_err(path, "too short for a .npy header"));
        }
        // SAFETY: read-only map; we rely on the file not being truncated while mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
        if &map[..6] != b"\x93NUMPY" {
            return Err(format_err(path, "not a .npy file (bad magic)"));
        }
        let (hlen, start) = match map[6] {
            1 => (u16::from_le_bytes([map[8], map[9]]) as usize, 10),
            2 | 3 if map.len() >= 12 => (
                u32::from_le_bytes([map[8], map[9], map[10], map[11]]) as usize,
                12,
            ),
            v => {
                return Err(format_err(
                    path,
                    format!(".npy version {v} is not supported"),
                ));
            }
        };
        let offset = start + hlen;
        if offset > map.len() {
            return Err(format_err(path, "truncated .npy header"));
        }
        let header = String::from_utf8_lossy(&map[start..offset]).replace(' ', "");
        if !header.contains("'descr':'<f4'") {
            return Err(format_err(
                path,
                format!("only little-endian f32 ('<f4') is supported: {header}"),
            ));
        }
        if !header.contains("'fortran_order':False") {
            return Err(format_err(path, "only C-order arrays are supported"));
        }
        let shape = header
            .split("'shape':(")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| format_err(path, format!("no shape in the header: {header}")))?;
        let dims: Vec<usize> = shape
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format_err(path, format!("bad shape ({shape})")))?;
        let [rows, cols] = dims[..] else {
            return Err(format_err(
                path,
                format!("a 2-D array is needed, the shape is ({shape})"),
            ));
        };
        let bytes = rows.checked_mul(cols).and_then(|x| x.checked_mul(4));
        if bytes.and_then(|b| b.checked_add(offset)) != Some(map.len()) {
            return Err(format_err(
                path,
                format!(
                    "{rows} x {cols} f32 do not match the file size {}",
                    map.len()
                ),
            ));
        }
        Ok(Self {
            map,
            offset,
            rows,
            cols,
            path: path.to_path_buf(),
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (the dimension).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies row `row` (< `rows()`) into `out` (`cols()` floats).
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        let at = self.offset + row * self.cols * 4;
        for (o, c) in out
            .iter_mut()
            .zip(self.map[at..at + self.cols * 4].chunks_exact(4))
        {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
}
