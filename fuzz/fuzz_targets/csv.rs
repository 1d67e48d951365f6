//! The ISC2021 CSV readers: ground truth and predictions (split at the first NUL byte) parse or
//! give a typed error; parsed files are scored.
#![no_main]

use std::path::Path;

use disc21_eval::metrics::{EvalOptions, evaluate, parse_ground_truth, parse_predictions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (gt, preds) = text.split_once('\0').unwrap_or((text, text));
    let gt = parse_ground_truth(gt, Path::new("gt.csv"));
    let preds = parse_predictions(preds, Path::new("predictions.csv"));
    if let (Ok(gt), Ok(preds)) = (gt, preds) {
        if let Ok(m) = evaluate(&gt, &preds, &EvalOptions::default()) {
            for v in [m.micro_ap, m.recall_at_1, m.recall_at_10, m.accuracy] {
                assert!((0.0..=1.0).contains(&v), "{v}");
            }
        }
    }
});
