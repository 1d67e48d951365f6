//! Reliability of index files: every truncation and every single-bit
//! flip of small files in our format is an error; lying length fields are refused without a
//! large allocation (measured by a counting allocator); damaged FAISS files never panic and,
//! when they load, can be searched; query edge cases on both index kinds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use common::ids;
use vecindex::faiss_io::{IdSource, ReadOptions};
use vecindex::{Error, FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};

/// Counts the bytes live on the current thread and their peak, so a test can assert that a
/// load did not allocate what a lying header asked for (other test threads do not interfere).
struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn note_free(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: forwards to the system allocator; the bookkeeping never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated on this thread while `f` runs, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

fn small_flat(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("flat.vix");
    FlatIndex::from_vectors(3, Metric::L2, &ids(4), &common::xorshift_vectors(4, 3, 1))
        .unwrap()
        .with_model_id("m")
        .save(&path)
        .unwrap();
    path
}

fn small_hnsw(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("hnsw.vix");
    let params = HnswParams {
        m: 4,
        ef_construction: 8,
        ef_search: 8,
        seed: 1,
    };
    HnswIndex::build(
        2,
        Metric::InnerProduct,
        params,
        &ids(6),
        &common::xorshift_vectors(6, 2, 2),
    )
    .unwrap()
    .with_model_id("m")
    .save(&path)
    .unwrap();
    path
}

/// Every prefix of the file and single-bit flips at every byte must be typed format errors.
fn assert_every_damage_is_an_error(
    good: &Path,
    all_bits: usize,
    load: impl Fn(&Path) -> Result<(), Error>,
) {
    let bytes = std::fs::read(good).unwrap();
    let bad = good.with_extension("bad");
    for len in 0..bytes.len() {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        match load(&bad) {
            Err(Error::Format { .. }) => {}
            other => panic!(
                "{}: truncation to {len} bytes gave {other:?}",
                good.display()
            ),
        }
    }
    // Every bit of the first `all_bits` bytes (the header and more), one bit per byte after
    // that (rotating through the 8): CRC-32 catches every single-bit error, so testing all 8
    // bits of every byte of a larger file would only cost time.
    let mut flips = 0;
    for pos in 0..bytes.len() {
        let bits = if pos < all_bits {
            0..8
        } else {
            pos % 8..pos % 8 + 1
        };
        for bit in bits {
            let mut b = bytes.clone();
            b[pos] ^= 1 << bit;
            std::fs::write(&bad, &b).unwrap();
            match load(&bad) {
                Err(Error::Format { .. }) => {}
                other => panic!(
                    "{}: bit {bit} of byte {pos} flipped gave {other:?}",
                    good.display()
                ),
            }
            flips += 1;
        }
    }
    eprintln!(
        "{}: {} truncations and {flips} bit flips, all refused",
        good.display(),
        bytes.len(),
    );
}

#[test]
fn every_truncation_and_bit_flip_of_our_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let flat = small_flat(dir.path());
    assert_every_damage_is_an_error(&flat, usize::MAX, |p| FlatIndex::load(p).map(|_| ()));
    let hnsw = small_hnsw(dir.path());
    assert_every_damage_is_an_error(&hnsw, 256, |p| HnswIndex::load(p).map(|_| ()));
}

/// `(offset, bytes)` to overwrite.
type Patches = Vec<(usize, Vec<u8>)>;

/// Writes `src` with `patches` applied and the checksum recomputed, so only the parser can
/// catch the lie.
fn patched(src: &Path, dst: &Path, patches: &[(usize, Vec<u8>)]) {
    let mut b = std::fs::read(src).unwrap();
    for (at, val) in patches {
        b[*at..*at + val.len()].copy_from_slice(val);
    }
    common::repair_crc(&mut b);
    std::fs::write(dst, b).unwrap();
}

#[test]
fn counts_of_two_to_the_sixty_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let flat = small_flat(dir.path());
    let hnsw = small_hnsw(dir.path());
    let bad = dir.path().join("bad.vix");
    let big = 1u64 << 60;
    // Offsets from the layout in `persist.rs`: count at 20, model id length at 48, the model id
    // ("m", one byte), then the ids section length at 53.
    let lies: Vec<(&str, Patches)> = vec![
        ("count", vec![(20, big.to_le_bytes().to_vec())]),
        (
            "count and a matching ids length",
            vec![
                (20, big.to_le_bytes().to_vec()),
                (53, (big * 5).to_le_bytes().to_vec()),
            ],
        ),
        ("ids length", vec![(53, big.to_le_bytes().to_vec())]),
        (
            "model id length",
            vec![(48, (1u32 << 31).to_le_bytes().to_vec())],
        ),
    ];
    for (src, load) in [
        (
            &flat,
            &(|p: &Path| FlatIndex::load(p).map(|_| ())) as &dyn Fn(&Path) -> Result<(), Error>,
        ),
        (&hnsw, &|p: &Path| HnswIndex::load(p).map(|_| ())),
    ] {
        let file_len = std::fs::metadata(src).unwrap().len() as usize;
        for (name, patch) in &lies {
            patched(src, &bad, patch);
            let (result, peak) = peak_during(|| load(&bad));
            assert!(
                matches!(result, Err(Error::Format { .. })),
                "{name}: {result:?}"
            );
            // Reading the file itself is allowed; anything near the claimed size is not.
            assert!(
                peak < file_len + (1 << 20),
                "{name}: {peak} bytes allocated for a {file_len}-byte file"
            );
        }
    }
    // The payload length of a flat file (right after the ids section) set to 2^60.
    let ids_len: usize = ids(4).iter().map(|s| 4 + s.len()).sum();
    patched(
        &flat,
        &bad,
        &[(53 + 8 + ids_len, big.to_le_bytes().to_vec())],
    );
    let (result, peak) = peak_during(|| FlatIndex::load(&bad));
    assert!(matches!(result, Err(Error::Format { .. })), "{result:?}");
    assert!(peak < 1 << 20, "{peak}");
}

#[test]
fn faiss_counts_that_lie_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.faiss");
    FlatIndex::from_vectors(
        4,
        Metric::InnerProduct,
        &ids(3),
        &common::xorshift_vectors(3, 4, 3),
    )
    .unwrap()
    .write_faiss(&good)
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("bad.faiss");
    let patch = |at: usize, val: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + val.len()].copy_from_slice(val);
        std::fs::write(&bad, b).unwrap();
    };
    // ntotal at 8 (i64), float count at 37 (u64).
    for (name, at, val) in [
        ("ntotal 2^60", 8, (1i64 << 60).to_le_bytes().to_vec()),
        ("ntotal 2^40", 8, (1i64 << 40).to_le_bytes().to_vec()),
        ("float count 2^60", 37, (1u64 << 60).to_le_bytes().to_vec()),
    ] {
        patch(at, &val);
        for mmap in [false, true] {
            let options = ReadOptions {
                mmap,
                ids: IdSource::NoSidecar,
            };
            let (result, peak) = peak_during(|| FlatIndex::read_faiss(&bad, options));
            assert!(
                matches!(result, Err(Error::Format { .. })),
                "{name}: {result:?}"
            );
            // The reader's 1 MiB copy buffer is the most it may take.
            assert!(peak <= (1 << 20) + (64 << 10), "{name}: {peak} bytes");
        }
    }
}

/// FAISS files carry no checksum: a damaged one may still be a valid file. Whatever the damage,
/// loading returns (never panics), and a loaded index can be searched.
#[test]
fn every_truncation_and_bit_flip_of_faiss_files_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.faiss");
    let index = FlatIndex::from_vectors(3, Metric::L2, &ids(3), &common::xorshift_vectors(3, 3, 4))
        .unwrap();
    index.write_faiss(&plain).unwrap();
    let mapped = dir.path().join("mapped.faiss");
    index.write_faiss_with_ids(&mapped, &[7, 8, 9]).unwrap();
    let bad = dir.path().join("bad.faiss");
    for good in [&plain, &mapped] {
        let bytes = std::fs::read(good).unwrap();
        let (mut loaded, mut refused) = (0usize, 0usize);
        let mut check = |b: &[u8], what: &str| {
            std::fs::write(&bad, b).unwrap();
            for mmap in [false, true] {
                let options = ReadOptions {
                    mmap,
                    ids: IdSource::NoSidecar,
                };
                match FlatIndex::read_faiss(&bad, options) {
                    Ok(ix) => {
                        loaded += 1;
                        let q = vec![0.5; ix.dim()];
                        let hits = ix.search(&q, ix.len() + 1).unwrap();
                        assert_eq!(hits[0].len(), ix.len(), "{what}");
                    }
                    Err(Error::Format { .. }) => refused += 1,
                    Err(e) => panic!("{what}: untyped error {e:?}"),
                }
            }
        };
        for len in 0..bytes.len() {
            check(&bytes[..len], &format!("truncated to {len}"));
        }
        for pos in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[pos] ^= 1 << bit;
                check(&b, &format!("bit {bit} of byte {pos}"));
            }
        }
        check(&[bytes.clone(), b"garbage".to_vec()].concat(), "trailing");
        eprintln!(
            "{}: {} variants x 2 loaders: {loaded} loaded (flipped float bits), {refused} refused",
            good.display(),
            bytes.len() * 9 + 1
        );
        // Truncations are always refused, so something must have been.
        assert!(refused >= bytes.len() * 2);
    }
}

#[test]
fn model_id_and_kind_mismatches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flat = small_flat(dir.path());
    let hnsw = small_hnsw(dir.path());
    assert!(matches!(
        FlatIndex::load(&flat)
            .unwrap()
            .check_model_id("other/model"),
        Err(Error::ModelMismatch { .. })
    ));
    assert!(matches!(
        HnswIndex::load(&hnsw).unwrap().check_model_id(""),
        Err(Error::ModelMismatch { .. })
    ));
    FlatIndex::load(&flat).unwrap().check_model_id("m").unwrap();
    assert!(matches!(HnswIndex::load(&flat), Err(Error::Format { .. })));
    assert!(matches!(FlatIndex::load(&hnsw), Err(Error::Format { .. })));
    // A FAISS file is not our format, and ours is not FAISS.
    let faiss = dir.path().join("x.faiss");
    FlatIndex::load(&flat).unwrap().write_faiss(&faiss).unwrap();
    assert!(matches!(FlatIndex::load(&faiss), Err(Error::Format { .. })));
    assert!(matches!(
        FlatIndex::read_faiss(&flat, ReadOptions::default()),
        Err(Error::Format { .. })
    ));
}

#[test]
fn hnsw_query_edge_cases() {
    let (n, d) = (50, 4);
    let data = common::xorshift_vectors(n, d, 5);
    // On one thread: the assertion that the query finds itself first needs a graph that is the
    // same on every run.
    let index = common::on_one_thread(|| {
        HnswIndex::build(
            d,
            Metric::L2,
            HnswParams {
                m: 8,
                ef_construction: 32,
                ef_search: 16,
                seed: 7,
            },
            &ids(n),
            &data,
        )
        .unwrap()
    });
    let q = &data[..d];
    // ef < k is raised to k: the same answer as ef = k.
    assert_eq!(
        index.search_with_ef(q, 10, 2).unwrap(),
        index.search_with_ef(q, 10, 10).unwrap()
    );
    assert_eq!(index.search_with_ef(q, 10, 2).unwrap()[0].len(), 10);
    // k > n gives n hits, and the query itself first.
    let hits = index.search_with_ef(q, n + 10, 200).unwrap();
    assert_eq!(hits[0].len(), n);
    assert_eq!(hits[0][0].row, 0);
    assert!(matches!(index.search(q, 0), Err(Error::ZeroK)));
    assert!(matches!(
        index.search(&data[..d - 1], 1),
        Err(Error::RaggedInput { .. })
    ));
    assert!(matches!(
        index.search(&[f32::INFINITY, 0.0, 0.0, 0.0], 1),
        Err(Error::NonFinite { .. })
    ));
    // Flat: k > n, NaN in the second query of a batch.
    let flat = FlatIndex::from_vectors(d, Metric::L2, &ids(n), &data).unwrap();
    assert_eq!(flat.search(q, 1000).unwrap()[0].len(), n);
    let mut two = data[..2 * d].to_vec();
    two[d + 1] = f32::NAN;
    assert!(matches!(
        flat.search(&two, 1),
        Err(Error::NonFinite { row: 1 })
    ));
}

/// The small files above load and search; with `VECINDEX_WRITE_FUZZ_SEEDS=<dir>` they are also
/// written there as seeds for the `vecindex_file` and `faiss_file` fuzz targets (the first
/// byte of a `vecindex_file` input picks flat (0) or HNSW (2), +1 to repair the checksum).
#[test]
fn small_files_load_and_can_seed_the_fuzzers() {
    let dir = tempfile::tempdir().unwrap();
    let flat = small_flat(dir.path());
    let hnsw = small_hnsw(dir.path());
    let f = FlatIndex::load(&flat).unwrap();
    assert_eq!(f.search(&[0.0; 3], 9).unwrap()[0].len(), 4);
    let h = HnswIndex::load(&hnsw).unwrap();
    assert_eq!(h.search(&[0.0; 2], 9).unwrap()[0].len(), 6);
    let faiss = dir.path().join("f.faiss");
    f.write_faiss(&faiss).unwrap();
    let faiss_map = dir.path().join("m.faiss");
    f.write_faiss_with_ids(&faiss_map, &[5, 6, 7, 8]).unwrap();
    let Ok(seeds) = std::env::var("VECINDEX_WRITE_FUZZ_SEEDS") else {
        return;
    };
    let seeds = Path::new(&seeds);
    let own = seeds.join("vecindex_file");
    let fa = seeds.join("faiss_file");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::create_dir_all(&fa).unwrap();
    for (name, src, mode) in [("flat", &flat, 0u8), ("hnsw", &hnsw, 2u8)] {
        let body = std::fs::read(src).unwrap();
        for m in [mode, mode + 1] {
            std::fs::write(own.join(format!("{name}_{m}")), [&[m][..], &body].concat()).unwrap();
        }
    }
    std::fs::copy(&faiss, fa.join("flat_ip.faiss")).unwrap();
    std::fs::copy(&faiss_map, fa.join("idmap.faiss")).unwrap();
}

/// A checksum-valid HNSW file whose embedded `hnsw_rs` data dump lies (a vector length of
/// 2^40, or one float short) is refused before the dump is read, without allocating the
/// length (`hnsw_rs`, reading such a dump, would allocate it, read `dim` floats past a short
/// buffer, or exit the process).
#[test]
fn lying_hnsw_data_dumps_are_refused_before_hnsw_rs() {
    let dir = tempfile::tempdir().unwrap();
    let hnsw = small_hnsw(dir.path());
    let bytes = std::fs::read(&hnsw).unwrap();
    let ids_len: usize = ids(6).iter().map(|s| 4 + s.len()).sum();
    let payload = 53 + 8 + ids_len + 8;
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let graph_len = u64_at(payload);
    let data = payload + 8 + graph_len + 8;
    assert_eq!(u64_at(payload + 8 + graph_len), bytes.len() - 4 - data);
    // Record 0: magic u32 and origin id u64 after the 12-byte header, then its byte length.
    let len_at = data + 12 + 12;
    assert_eq!(u64_at(len_at), 2 * 4, "dimension 2, f32");
    let bad = dir.path().join("bad.vix");
    for lie in [1u64 << 40, 4, 0] {
        patched(&hnsw, &bad, &[(len_at, lie.to_le_bytes().to_vec())]);
        let (result, peak) = peak_during(|| HnswIndex::load(&bad));
        assert!(
            matches!(result, Err(Error::Format { .. })),
            "length {lie}: {result:?}"
        );
        assert!(peak < 1 << 20, "{peak}");
    }
}
