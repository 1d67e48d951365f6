//! Reliability of the ISC2021 CSV readers: what real files contain is
//! accepted, everything else is refused with its line number; unknown ids count as wrong
//! predictions, as in the official `isc2021` `evaluate` (`(query, db) in gt_pairs`).
//! The module's unit tests already cover BOM + CRLF + blank lines + extra columns in ground
//! truth, a short row, NaN and a repeated pair: these cases add the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use disc21_eval::metrics::{
    EvalOptions, GroundTruth, MetricsError, Prediction, evaluate, parse_ground_truth,
    parse_predictions, read_ground_truth, read_predictions,
};

fn p() -> &'static Path {
    Path::new("f.csv")
}

fn line_of(e: &MetricsError) -> Option<usize> {
    match e {
        MetricsError::Parse { line, .. } => Some(*line),
        MetricsError::Duplicate { line, .. } => *line,
        _ => None,
    }
}

#[test]
fn predictions_with_bom_crlf_blank_lines_and_extra_columns() {
    let text = "\u{feff}query_id,reference_id,score,rank\r\n\r\nQ1,R1,0.9,1\r\n   \r\nQ1,R2,1e-3,2\r\nQ2,R1,\"0.25\",1\r\n";
    let preds = parse_predictions(text, p()).unwrap();
    assert_eq!(
        preds,
        [
            Prediction::new("Q1", "R1", 0.9),
            Prediction::new("Q1", "R2", 0.001),
            Prediction::new("Q2", "R1", 0.25),
        ]
    );
    // Without a header: positional, extra columns ignored; a file with only a BOM is empty.
    let preds = parse_predictions("Q1,R1,0.5,x,y\n", p()).unwrap();
    assert_eq!(preds, [Prediction::new("Q1", "R1", 0.5)]);
    assert!(parse_predictions("\u{feff}", p()).unwrap().is_empty());
    assert!(
        parse_predictions("query_id,reference_id,score\r\n", p())
            .unwrap()
            .is_empty()
    );
    // Columns in another order, found by name.
    let preds = parse_predictions("score,reference_id,query_id\n0.5,R9,Q9\n", p()).unwrap();
    assert_eq!(preds, [Prediction::new("Q9", "R9", 0.5)]);
}

#[test]
fn bad_rows_are_refused_with_their_line() {
    let header = "query_id,reference_id,score\n";
    for (body, line) in [
        ("Q1,R1,0.5\n\nQ1,R2,nan\n", 4),
        ("Q1,R1,NAN\n", 2),
        ("Q1,R1, NaN \n", 2),
        ("Q1,R1,-nan\n", 2),
        ("Q1,R1,\n", 2),
        ("Q1,R1,0.5\r\nQ1\r\n", 3),
        (",R1,0.5\n", 2),
        ("Q1,,0.5\n", 2),
        ("Q1,R1,0x10\n", 2),
        ("Q1,R1,0.5\nQ2,R1,0.4\nQ1,R1,0.3\n", 4),
    ] {
        let text = format!("{header}{body}");
        let e = parse_predictions(&text, p()).unwrap_err();
        assert_eq!(line_of(&e), Some(line), "{body:?}: {e}");
    }
    // A header naming the query column but no score column.
    let e = parse_predictions("query_id,reference_id\nQ1,R1\n", p()).unwrap_err();
    assert_eq!(line_of(&e), Some(1), "{e}");
    // Infinite scores are numbers (ranked first or last), not errors.
    let preds = parse_predictions("Q1,R1,inf\nQ1,R2,-inf\n", p()).unwrap();
    assert_eq!(preds[0].score, f64::INFINITY);
}

#[test]
fn ground_truth_duplicates_and_short_rows_name_the_line() {
    let e = parse_ground_truth("query_id,reference_id\r\nQ1,R1\r\n\r\nQ1,R1\r\n", p()).unwrap_err();
    assert!(
        matches!(e, MetricsError::Duplicate { line: Some(4), .. }),
        "{e}"
    );
    let e = parse_ground_truth("query_id,reference_id\nQ1\n", p()).unwrap_err();
    assert_eq!(line_of(&e), Some(2), "{e}");
    let e = parse_ground_truth("query_id,reference_id\n,R1\n", p()).unwrap_err();
    assert_eq!(line_of(&e), Some(2), "{e}");
    // A query listed once with no copy and once with one: both kept, one pair.
    let gt = parse_ground_truth("Q1,\nQ1,R1\nQ2,\n", p()).unwrap();
    assert_eq!(
        (gt.len(), gt.n_pairs(), gt.n_queries_with_copy()),
        (2, 1, 1)
    );
}

#[test]
fn unknown_ids_count_as_wrong_predictions() {
    let gt = GroundTruth::from_rows([("Q1", Some("R1")), ("Q2", None)]).unwrap();
    let known = [Prediction::new("Q1", "R1", 0.9)];
    let m = evaluate(&gt, &known, &EvalOptions::default()).unwrap();
    assert_eq!((m.micro_ap, m.n_true_predictions), (1.0, 1));
    // An unknown query and an unknown reference, scored above the true pair: two false
    // positives first, so precision at the only true pair is 1/3 and µAP = 1/3.
    let with_unknown = [
        Prediction::new("Q404", "R1", 0.99),
        Prediction::new("Q1", "R404", 0.95),
        Prediction::new("Q1", "R1", 0.9),
    ];
    let m = evaluate(&gt, &with_unknown, &EvalOptions::default()).unwrap();
    assert_eq!(m.n_predictions, 3);
    assert_eq!(m.n_true_predictions, 1);
    assert!((m.micro_ap - 1.0 / 3.0).abs() < 1e-12, "{}", m.micro_ap);
    // Q1's best prediction is wrong: accuracy 0.
    assert_eq!(m.accuracy, 0.0);
    // No positives at all is an error, not a division by zero.
    let none = GroundTruth::from_rows([("Q1", None::<&str>)]).unwrap();
    assert!(matches!(
        evaluate(&none, &known, &EvalOptions::default()),
        Err(MetricsError::NoPositives)
    ));
}

#[test]
fn unreadable_files_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    assert!(matches!(
        read_predictions(&missing),
        Err(MetricsError::Io { .. })
    ));
    // Not UTF-8 (a Latin-1 export): refused as a whole rather than misread.
    let latin1 = dir.path().join("latin1.csv");
    std::fs::write(&latin1, b"Q1,R\xe9,0.5\n").unwrap();
    assert!(read_predictions(&latin1).is_err());
    assert!(read_ground_truth(&latin1).is_err());
    assert!(matches!(
        read_ground_truth(dir.path()),
        Err(MetricsError::Io { .. })
    ));
}
