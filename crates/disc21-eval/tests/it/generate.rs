//! The generator: deterministic by seed, the official and SSCD layouts, never overwrites
//! without `force`, and ground truth that matches what it drew.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use disc21_eval::dataset::{Layout, LayoutKind, LayoutOverrides, list_images};
use disc21_eval::generate::{GenerateError, GenerateOptions, OutputLayout, QueryKind, generate};
use disc21_eval::metrics::read_ground_truth;

fn small(seed: u64) -> GenerateOptions {
    GenerateOptions {
        references: 12,
        queries: 10,
        copy_fraction: 0.6,
        seed,
        min_side: 64,
        max_side: 128,
        ..GenerateOptions::default()
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = list_images(dir)
        .unwrap()
        .into_iter()
        .map(|e| (e.id, std::fs::read(e.path).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let sa = generate(&a, &small(7)).unwrap();
    generate(&b, &small(7)).unwrap();
    generate(&c, &small(8)).unwrap();
    assert_eq!(sa.copies, 6);
    for sub in ["references", "dev_queries"] {
        let (fa, fb, fc) = (
            files(&a.join(sub)),
            files(&b.join(sub)),
            files(&c.join(sub)),
        );
        assert_eq!(fa.len(), if sub == "references" { 12 } else { 10 });
        assert_eq!(fa, fb, "{sub} differ for the same seed");
        assert_ne!(fa, fc, "{sub} identical for different seeds");
        // All decodable JPEGs, all different from one another.
        for (id, bytes) in &fa {
            let img = image::load_from_memory(bytes).unwrap();
            assert!(img.width() >= 16 && img.height() >= 16, "{id}");
        }
        let mut uniq: Vec<&Vec<u8>> = fa.iter().map(|(_, b)| b).collect();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), fa.len(), "duplicate images in {sub}");
    }
    assert_eq!(
        std::fs::read(a.join("public_ground_truth.csv")).unwrap(),
        std::fs::read(b.join("public_ground_truth.csv")).unwrap()
    );
}

#[test]
fn ground_truth_layout_and_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("set");
    let summary = generate(&out, &small(1)).unwrap();
    let layout = Layout::detect(&out, &LayoutOverrides::default()).unwrap();
    assert_eq!(layout.kind, LayoutKind::Official);
    let gt = read_ground_truth(&layout.ground_truth).unwrap();
    assert_eq!(gt.len(), 10);
    assert_eq!(gt.n_queries_with_copy(), summary.copies);
    for r in &summary.records {
        let refs = gt.references_of(&r.id);
        assert_eq!(refs.first().map(String::as_str), r.reference.as_deref());
        // Edited copies carry 1–3 edits; non-copies none.
        assert_eq!(r.reference.is_some(), !r.transforms.is_empty(), "{r:?}");
        assert!(r.transforms.len() <= 3);
    }
    // Refuses to overwrite, then replaces with force.
    let err = generate(&out, &small(2)).unwrap_err();
    assert!(matches!(err, GenerateError::Exists(_)), "{err}");
    let before = files(&out.join("references"));
    generate(
        &out,
        &GenerateOptions {
            force: true,
            ..small(2)
        },
    )
    .unwrap();
    assert_ne!(before, files(&out.join("references")));
}

#[test]
fn exact_copies_and_sscd_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sscd");
    let opts = GenerateOptions {
        query_kind: QueryKind::Exact,
        layout: OutputLayout::Sscd,
        ..small(3)
    };
    let summary = generate(&out, &opts).unwrap();
    let layout = Layout::detect(&out, &LayoutOverrides::default()).unwrap();
    assert_eq!(layout.kind, LayoutKind::Sscd);
    assert!(layout.ground_truth.ends_with("val_groundtruth_matches.csv"));
    for r in summary.records.iter().filter(|r| r.reference.is_some()) {
        let q = std::fs::read(out.join("val_query").join(format!("{}.jpg", r.id))).unwrap();
        let reference = r.reference.as_deref().unwrap();
        let rf = std::fs::read(out.join("val_ref").join(format!("{reference}.jpg"))).unwrap();
        assert_eq!(q, rf, "{} is not an exact copy", r.id);
    }
}

#[test]
fn refuses_inconsistent_options() {
    let dir = tempfile::tempdir().unwrap();
    let too_many_copies = GenerateOptions {
        references: 2,
        queries: 10,
        copy_fraction: 1.0,
        ..small(0)
    };
    assert!(matches!(
        generate(dir.path(), &too_many_copies),
        Err(GenerateError::InvalidOptions(_))
    ));
}
