//! The metadata shards: one Parquet file per embedding shard, one row per vector, with the
//! columns `image_path` and `id` (UTF-8 strings) and `width`, `height` (INT32), snappy
//! compressed, as pyarrow, pandas, Spark and DuckDB read them. Written with the `parquet`
//! crate's low-level column writer (no Arrow dependency).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, Type as Physical};
use parquet::column::reader::ColumnReader;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::error::{Error, Result, damaged, io_err};

/// What the collection knows of one image (one vector).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRow {
    /// The path as given to the builder, relative to the image root.
    pub image_path: String,
    /// The stable string id (the file stem, e.g. `R000123`).
    pub id: String,
    /// Width of the original image in pixels.
    pub width: u32,
    /// Height of the original image in pixels.
    pub height: u32,
}

const SCHEMA: &str = "message image_metadata {
    REQUIRED BYTE_ARRAY image_path (UTF8);
    REQUIRED BYTE_ARRAY id (UTF8);
    REQUIRED INT32 width;
    REQUIRED INT32 height;
}";

/// Counts and checksums the bytes on their way to the file.
struct Hashing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pq_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Error + '_ {
    move |e| damaged(path, format!("Parquet: {e}"))
}

/// Writes `rows` as one Parquet file (one row group), synced. Returns (bytes, crc32).
pub(crate) fn write(path: &Path, rows: &[ImageRow]) -> Result<(u64, u32)> {
    let file = File::create(path).map_err(io_err(path))?;
    let sink = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
        bytes: 0,
    };
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(pq_err(path))?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(concat!("embed-collection ", env!("CARGO_PKG_VERSION")).into())
            .build(),
    );
    let mut w = SerializedFileWriter::new(sink, schema, props).map_err(pq_err(path))?;
    let mut rg = w.next_row_group().map_err(pq_err(path))?;
    let strings = |f: fn(&ImageRow) -> &str| -> Vec<ByteArray> {
        rows.iter().map(|r| ByteArray::from(f(r))).collect()
    };
    let ints = |f: fn(&ImageRow) -> u32| -> Vec<i32> {
        rows.iter()
            .map(|r| i32::try_from(f(r)).unwrap_or(i32::MAX))
            .collect()
    };
    let mut column = 0;
    while let Some(mut col) = rg.next_column().map_err(pq_err(path))? {
        match column {
            0 => col
                .typed::<ByteArrayType>()
                .write_batch(&strings(|r| &r.image_path), None, None),
            1 => col
                .typed::<ByteArrayType>()
                .write_batch(&strings(|r| &r.id), None, None),
            2 => col
                .typed::<Int32Type>()
                .write_batch(&ints(|r| r.width), None, None),
            _ => col
                .typed::<Int32Type>()
                .write_batch(&ints(|r| r.height), None, None),
        }
        .map_err(pq_err(path))?;
        col.close().map_err(pq_err(path))?;
        column += 1;
    }
    rg.close().map_err(pq_err(path))?;
    let sink = w.into_inner().map_err(pq_err(path))?;
    let (bytes, crc) = (sink.bytes, sink.crc.finalize());
    let file = sink
        .inner
        .into_inner()
        .map_err(|e| io_err(path)(e.into_error()))?;
    file.sync_all().map_err(io_err(path))?;
    Ok((bytes, crc))
}

/// Reads every row of a metadata shard; the columns are found by name and their types checked.
pub(crate) fn read(path: &Path) -> Result<Vec<ImageRow>> {
    let file = File::open(path).map_err(io_err(path))?;
    let reader = SerializedFileReader::new(file).map_err(pq_err(path))?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let find = |name: &str, ty: Physical| -> Result<usize> {
        let i = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == name)
            .ok_or_else(|| damaged(path, format!("no column {name:?}")))?;
        if schema.column(i).physical_type() != ty {
            return Err(damaged(path, format!("column {name:?} is not {ty}")));
        }
        Ok(i)
    };
    let cols = [
        find("image_path", Physical::BYTE_ARRAY)?,
        find("id", Physical::BYTE_ARRAY)?,
        find("width", Physical::INT32)?,
        find("height", Physical::INT32)?,
    ];
    let total = usize::try_from(meta.file_metadata().num_rows())
        .map_err(|_| damaged(path, "negative row count"))?;
    let (mut paths, mut ids, mut widths, mut heights) = (
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
    );
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(pq_err(path))?;
        let n = usize::try_from(group.metadata().num_rows())
            .map_err(|_| damaged(path, "negative row count"))?;
        for (c, &col) in cols.iter().enumerate() {
            let before = [paths.len(), ids.len(), widths.len(), heights.len()][c];
            match group.get_column_reader(col).map_err(pq_err(path))? {
                ColumnReader::ByteArrayColumnReader(mut r) => {
                    let mut buf = Vec::with_capacity(n);
                    r.read_records(n, None, None, &mut buf)
                        .map_err(pq_err(path))?;
                    let out = if c == 0 { &mut paths } else { &mut ids };
                    for v in buf {
                        let s = v
                            .as_utf8()
                            .map_err(|_| damaged(path, "a string is not UTF-8"))?;
                        out.push(s.to_owned());
                    }
                }
                ColumnReader::Int32ColumnReader(mut r) => {
                    let mut buf = Vec::with_capacity(n);
                    r.read_records(n, None, None, &mut buf)
                        .map_err(pq_err(path))?;
                    let out = if c == 2 { &mut widths } else { &mut heights };
                    for v in buf {
                        let v = u32::try_from(v)
                            .map_err(|_| damaged(path, format!("negative size {v}")))?;
                        out.push(v);
                    }
                }
                _ => return Err(damaged(path, "unexpected column type")),
            }
            let after = [paths.len(), ids.len(), widths.len(), heights.len()][c];
            if after - before != n {
                return Err(damaged(
                    path,
                    format!(
                        "row group {g}: a column holds {} of {n} rows",
                        after - before
                    ),
                ));
            }
        }
    }
    if paths.len() != total {
        return Err(damaged(
            path,
            format!("{} rows read, footer says {total}", paths.len()),
        ));
    }
    Ok(paths
        .into_iter()
        .zip(ids)
        .zip(widths.into_iter().zip(heights))
        .map(|((image_path, id), (width, height))| ImageRow {
            image_path,
            id,
            width,
            height,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Rows written read back unchanged, and the reported size and checksum are the file's.
    #[test]
    fn rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        let rows: Vec<ImageRow> = (0..1000)
            .map(|i| ImageRow {
                image_path: format!("sub dir/é {i}.jpg"),
                id: format!("R{i:06}"),
                width: 100 + i,
                height: 7 * i,
            })
            .collect();
        let (bytes, crc) = write(&path, &rows).unwrap();
        let file = std::fs::read(&path).unwrap();
        assert_eq!((bytes, crc), (file.len() as u64, crc32fast::hash(&file)));
        assert_eq!(read(&path).unwrap(), rows);
        let (_, _) = write(&path, &[]).unwrap();
        assert!(read(&path).unwrap().is_empty());
    }
}
