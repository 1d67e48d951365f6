//! Reading and writing the ISC2021 CSV files: ground truth (`query_id,reference_id`, an empty
//! reference for a query with no copy) and predictions (`query_id,reference_id,score`).
//!
//! The readers accept what real files contain: a UTF-8 byte-order mark, CRLF line ends, blank
//! lines, a header or none (then the columns are positional), extra columns, and fields in
//! double quotes. They refuse a row with too few columns, an empty id, a score that does not
//! parse or is NaN, and a repeated pair, naming the line.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use super::{GroundTruth, MetricsError, Prediction, Result};

/// Column positions of one file, from its header or the defaults.
struct Columns {
    query: usize,
    reference: usize,
    score: Option<usize>,
    /// Number of columns a row needs.
    needed: usize,
}

fn io_error(path: &Path, source: std::io::Error) -> MetricsError {
    MetricsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_error(path: &Path, line: usize, message: impl Into<String>) -> MetricsError {
    MetricsError::Parse {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn split_fields(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('"')
                .and_then(|f| f.strip_suffix('"'))
                .unwrap_or(f)
        })
        .collect()
}

/// Yields `(line number, fields)` for every non-blank line; the first is checked for a header.
fn rows<'a>(text: &'a str) -> impl Iterator<Item = (usize, Vec<&'a str>)> + 'a {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines() // also strips a trailing '\r'
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, split_fields(l)))
}

fn header_columns(
    path: &Path,
    line: usize,
    fields: &[&str],
    want_score: bool,
) -> Result<Option<Columns>> {
    let position = |names: &[&str]| {
        fields
            .iter()
            .position(|f| names.iter().any(|n| f.eq_ignore_ascii_case(n)))
    };
    let Some(query) = position(&["query_id", "query"]) else {
        return Ok(None);
    };
    let reference = position(&["reference_id", "reference", "db_id", "ref_id"])
        .ok_or_else(|| parse_error(path, line, "header has no reference_id column"))?;
    let score = if want_score {
        Some(
            position(&["score"])
                .ok_or_else(|| parse_error(path, line, "header has no score column"))?,
        )
    } else {
        None
    };
    let needed = query.max(reference).max(score.unwrap_or(0)) + 1;
    Ok(Some(Columns {
        query,
        reference,
        score,
        needed,
    }))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

/// Reads a ground-truth CSV. See [`parse_ground_truth`].
pub fn read_ground_truth(path: &Path) -> Result<GroundTruth> {
    parse_ground_truth(&read_text(path)?, path)
}

/// Parses ground-truth CSV text; `path` only names the source in errors.
pub fn parse_ground_truth(text: &str, path: &Path) -> Result<GroundTruth> {
    let mut gt = GroundTruth::new();
    let mut columns: Option<Columns> = None;
    for (n, (line, fields)) in rows(text).enumerate() {
        if n == 0 {
            columns = header_columns(path, line, &fields, false)?;
            if columns.is_some() {
                continue;
            }
        }
        let cols = columns.get_or_insert(Columns {
            query: 0,
            reference: 1,
            score: None,
            needed: 2,
        });
        if fields.len() < cols.needed {
            return Err(parse_error(
                path,
                line,
                format!(
                    "expected `query_id,reference_id`, found {} column(s)",
                    fields.len()
                ),
            ));
        }
        let query = fields[cols.query];
        if query.is_empty() {
            return Err(parse_error(path, line, "empty query_id"));
        }
        let reference = fields[cols.reference];
        let reference = (!reference.is_empty()).then(|| reference.to_string());
        gt.add(query.to_string(), reference, Some(line))?;
    }
    Ok(gt)
}

/// Reads a predictions CSV. See [`parse_predictions`].
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    parse_predictions(&read_text(path)?, path)
}

/// Parses predictions CSV text; `path` only names the source in errors. NaN scores and repeated
/// `(query, reference)` pairs are refused with their line number.
pub fn parse_predictions(text: &str, path: &Path) -> Result<Vec<Prediction>> {
    let mut out = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut columns: Option<Columns> = None;
    for (n, (line, fields)) in rows(text).enumerate() {
        if n == 0 {
            columns = header_columns(path, line, &fields, true)?;
            if columns.is_some() {
                continue;
            }
        }
        let cols = columns.get_or_insert(Columns {
            query: 0,
            reference: 1,
            score: Some(2),
            needed: 3,
        });
        if fields.len() < cols.needed {
            return Err(parse_error(
                path,
                line,
                format!(
                    "expected `query_id,reference_id,score`, found {} column(s)",
                    fields.len()
                ),
            ));
        }
        let (query, reference) = (fields[cols.query], fields[cols.reference]);
        if query.is_empty() || reference.is_empty() {
            return Err(parse_error(path, line, "empty query_id or reference_id"));
        }
        let raw = fields[cols.score.unwrap_or(2)];
        let score: f64 = raw
            .parse()
            .map_err(|_| parse_error(path, line, format!("score `{raw}` is not a number")))?;
        if score.is_nan() {
            return Err(parse_error(path, line, "score is NaN"));
        }
        if !seen.insert((query.to_string(), reference.to_string())) {
            return Err(MetricsError::Duplicate {
                what: "prediction",
                query: query.to_string(),
                reference: reference.to_string(),
                line: Some(line),
            });
        }
        out.push(Prediction::new(query, reference, score));
    }
    Ok(out)
}

/// Writes `text` to `path` atomically ([`embed_pipeline::atomic::write_atomic`]), errors naming `path`.
pub(crate) fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    embed_pipeline::atomic::write_atomic(path, |w| w.write_all(text)).map_err(|e| io_error(path, e))
}

/// Writes predictions as `query_id,reference_id,score` with a header. Scores are written in the
/// shortest form that reads back to the same `f64`, so ties survive the round trip.
pub fn write_predictions(path: &Path, predictions: &[Prediction]) -> Result<()> {
    let mut text = String::from("query_id,reference_id,score\n");
    for p in predictions {
        let _ = writeln!(text, "{},{},{}", p.query, p.reference, p.score);
    }
    write_atomic(path, text.as_bytes())
}

/// Writes ground truth as `query_id,reference_id` with a header; a query with no copy gets an
/// empty reference.
pub fn write_ground_truth(path: &Path, gt: &GroundTruth) -> Result<()> {
    let mut text = String::from("query_id,reference_id\n");
    for (q, r) in gt.rows() {
        let _ = writeln!(text, "{q},{}", r.unwrap_or(""));
    }
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn p() -> &'static Path {
        Path::new("x.csv")
    }

    #[test]
    fn ground_truth_tolerates_bom_crlf_blank_and_extra_columns() {
        let text = "\u{feff}query_id,reference_id,note\r\nQ1,R1,a\r\n\r\nQ2,,b\r\n  \nQ3,R3\r\n";
        let gt = parse_ground_truth(text, p()).unwrap();
        assert_eq!(gt.len(), 3);
        assert_eq!(gt.n_pairs(), 2);
        assert_eq!(gt.references_of("Q1"), ["R1".to_string()]);
        assert!(gt.references_of("Q2").is_empty());
        // No header: positional.
        let gt = parse_ground_truth("Q1,R1\nQ2,\n", p()).unwrap();
        assert_eq!(gt.n_queries_with_copy(), 1);
        // Columns in another order.
        let gt = parse_ground_truth("reference_id,query_id\nR1,Q1\n", p()).unwrap();
        assert_eq!(gt.references_of("Q1"), ["R1".to_string()]);
    }

    #[test]
    fn predictions_errors_name_the_line() {
        let bad = "query_id,reference_id,score\nQ1,R1,0.5\nQ1,R2\n";
        let err = parse_predictions(bad, p()).unwrap_err();
        assert!(matches!(err, MetricsError::Parse { line: 3, .. }), "{err}");
        let nan = "query_id,reference_id,score\nQ1,R1,NaN\n";
        assert!(matches!(
            parse_predictions(nan, p()),
            Err(MetricsError::Parse { line: 2, .. })
        ));
        let word = "Q1,R1,high\n";
        let err = parse_predictions(word, p()).unwrap_err();
        assert!(err.to_string().contains("x.csv:1"), "{err}");
        let dup = "Q1,R1,0.5\n\nQ1,R1,0.4\n";
        assert!(matches!(
            parse_predictions(dup, p()),
            Err(MetricsError::Duplicate { line: Some(3), .. })
        ));
        let ok = "\u{feff}query_id,reference_id,score,extra\r\nQ1,R1,0.5,x\r\nQ1,R2,-inf,y\r\n";
        let preds = parse_predictions(ok, p()).unwrap();
        assert_eq!(preds.len(), 2);
        assert_eq!(preds[1].score, f64::NEG_INFINITY);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let gt =
            GroundTruth::from_rows([("Q1", Some("R1")), ("Q2", None), ("Q1", Some("R7"))]).unwrap();
        let path = dir.path().join("gt.csv");
        write_ground_truth(&path, &gt).unwrap();
        assert_eq!(read_ground_truth(&path).unwrap(), gt);
        let preds = vec![
            Prediction::new("Q1", "R1", 0.1 + 0.2),
            Prediction::new("Q2", "R1", -3.0),
        ];
        let path = dir.path().join("p.csv");
        write_predictions(&path, &preds).unwrap();
        assert_eq!(read_predictions(&path).unwrap(), preds);
    }
}
