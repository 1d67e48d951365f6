//! Layout detection, explicit overrides and the two protocols on generated data sets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use disc21_eval::dataset::{
    DatasetError, EvalSet, Layout, LayoutKind, LayoutOverrides, Protocol, ReferenceSelection,
};
use disc21_eval::generate::{GenerateOptions, generate};

fn small() -> GenerateOptions {
    GenerateOptions {
        references: 20,
        queries: 16,
        copy_fraction: 0.75,
        seed: 11,
        min_side: 48,
        max_side: 96,
        ..GenerateOptions::default()
    }
}

#[test]
fn protocols_select_the_right_subsets() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), &small()).unwrap();
    let layout = Layout::detect(dir.path(), &LayoutOverrides::default()).unwrap();

    let official = EvalSet::load(layout.clone(), Protocol::Official).unwrap();
    assert_eq!(official.references.len(), 20);
    assert_eq!(
        official.queries.len(),
        16,
        "all queries, with or without a copy"
    );
    assert_eq!(official.ground_truth.n_queries_with_copy(), 12);

    // The study's protocol over the first 10 references: only queries whose copy is among them.
    let sel = ReferenceSelection::First(10);
    let study = EvalSet::load(layout.clone(), Protocol::Study { references: sel }).unwrap();
    assert_eq!(study.references.len(), 10);
    let expected: Vec<&str> = summary
        .records
        .iter()
        .filter(|r| r.reference.as_deref().is_some_and(|id| id < "R000010"))
        .map(|r| r.id.as_str())
        .collect();
    let got: Vec<&str> = study.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(got, expected);
    assert!(!got.is_empty());
    assert_eq!(study.ground_truth.n_queries_with_copy(), got.len());

    // A range selection behaves the same way, and the default range covers everything here.
    let range = "R000000-R000009".parse().unwrap();
    let by_range = EvalSet::load(layout.clone(), Protocol::Study { references: range }).unwrap();
    assert_eq!(by_range.queries, study.queries);
    let default = EvalSet::load(layout, Protocol::default()).unwrap();
    assert_eq!(default.references.len(), 20);
    assert_eq!(default.queries.len(), 12);
}

#[test]
fn overrides_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &small()).unwrap();
    // Move the ground truth elsewhere: detection fails, an override fixes it.
    let moved = dir.path().join("elsewhere.csv");
    std::fs::rename(dir.path().join("public_ground_truth.csv"), &moved).unwrap();
    let err = Layout::detect(dir.path(), &LayoutOverrides::default()).unwrap_err();
    assert!(matches!(err, DatasetError::UnknownLayout { .. }), "{err}");
    let overrides = LayoutOverrides {
        ground_truth: Some(moved.clone()),
        ..Default::default()
    };
    let layout = Layout::detect(dir.path(), &overrides).unwrap();
    assert_eq!(layout.kind, LayoutKind::Official);
    assert_eq!(layout.ground_truth, moved);
    let all = LayoutOverrides {
        references: Some(dir.path().join("references")),
        queries: Some(dir.path().join("dev_queries")),
        ground_truth: Some(moved),
    };
    assert_eq!(
        Layout::detect(dir.path(), &all).unwrap().kind,
        LayoutKind::Explicit
    );

    // A ground-truth query without an image is an error naming it.
    std::fs::remove_file(dir.path().join("dev_queries/Q00003.jpg")).unwrap();
    let err = EvalSet::load(layout, Protocol::Official).unwrap_err();
    assert!(
        matches!(&err, DatasetError::MissingQueries { first, .. } if first == "Q00003"),
        "{err}"
    );
}
