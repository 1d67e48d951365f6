//! Reading and writing `.npy` files of `f32` (little-endian, C order), the exchange format with
//! numpy and the Python reference.

use std::io::{Read, Write};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Header bigger than this is refused (numpy itself caps headers at 10 KiB by default).
const MAX_HEADER: usize = 1 << 16;

/// Writes `array` as a version 1.0 `.npy` file with dtype `<f4`.
pub fn write_f32<W: Write, D: ndarray::Dimension>(
    mut writer: W,
    array: &ndarray::ArrayBase<impl ndarray::Data<Elem = f32>, D>,
) -> std::io::Result<()> {
    let shape = array.shape();
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Pad so the data starts on a 64-byte boundary, ending with a newline.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    writer.write_all(MAGIC)?;
    writer.write_all(&[1, 0])?;
    writer.write_all(&(header.len() as u16).to_le_bytes())?;
    writer.write_all(header.as_bytes())?;
    let mut buf = Vec::with_capacity(array.len().min(1 << 20) * 4);
    for &v in array.iter() {
        buf.extend_from_slice(&v.to_le_bytes());
        if buf.len() >= 1 << 22 {
            writer.write_all(&buf)?;
            buf.clear();
        }
    }
    writer.write_all(&buf)?;
    writer.flush()
}

/// Writes `array` to `path` (created or truncated).
pub fn write_f32_file<D: ndarray::Dimension>(
    path: &Path,
    array: &ndarray::ArrayBase<impl ndarray::Data<Elem = f32>, D>,
) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    write_f32(std::io::BufWriter::new(file), array).map_err(io)
}

/// Reads a `.npy` file of dtype `<f4` (C order) of any rank.
pub fn read_f32_file(path: &Path) -> Result<ArrayD<f32>> {
    let bad = |message: String| Error::Npy {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut reader = std::io::BufReader::new(file);
    let mut head = [0u8; 10];
    reader
        .read_exact(&mut head)
        .map_err(|e| bad(format!("short header: {e}")))?;
    if &head[..6] != MAGIC {
        return Err(bad("not a .npy file (bad magic)".into()));
    }
    let (header_len, prefix) = match head[6] {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10usize),
        2 | 3 => {
            let mut more = [0u8; 2];
            reader
                .read_exact(&mut more)
                .map_err(|e| bad(format!("short header: {e}")))?;
            (
                u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize,
                12usize,
            )
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if header_len > MAX_HEADER {
        return Err(bad(format!("header of {header_len} bytes is too long")));
    }
    let mut header = vec![0u8; header_len];
    reader
        .read_exact(&mut header)
        .map_err(|e| bad(format!("short header: {e}")))?;
    let header = String::from_utf8_lossy(&header);
    let field = |key: &str| -> Option<String> {
        let start = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
        if let Some(r) = rest.strip_prefix('(') {
            Some(r[..r.find(')')?].to_string())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            Some(rest[..end].trim().trim_matches('\'').to_string())
        }
    };
    let descr = field("descr").ok_or_else(|| bad("header has no descr".into()))?;
    if descr != "<f4" {
        return Err(bad(format!(
            "dtype {descr} is not little-endian float32 (<f4)"
        )));
    }
    if field("fortran_order").as_deref() != Some("False") {
        return Err(bad("Fortran-order arrays are not supported".into()));
    }
    let shape_txt = field("shape").ok_or_else(|| bad("header has no shape".into()))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("bad shape ({shape_txt})")))
        })
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("shape ({shape_txt}) overflows")))?;
    let body = (prefix + header_len) as u64;
    let expected = count.checked_mul(4).map(|b| b as u64 + body);
    if expected != Some(file_len) {
        return Err(bad(format!(
            "file is {file_len} bytes, shape ({shape_txt}) of f32 needs {}",
            expected.map_or_else(|| "more than 2^64".to_string(), |e| e.to_string())
        )));
    }
    let mut bytes = vec![0u8; count * 4];
    reader
        .read_exact(&mut bytes)
        .map_err(|e| bad(format!("short body: {e}")))?;
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| bad(e.to_string()))
}
