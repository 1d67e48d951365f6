//! Transparent huge pages for the arrays an HNSW search reads at random (f32 rows, 8-bit or
//! half-float codes, layer-0 neighbour lists).
//!
//! A search at d = 768 reads a few hundred 3 KB vector rows and their neighbour lists scattered
//! over hundreds of megabytes; with 4 KB pages nearly every one of those reads misses the TLB
//! and walks the page table. Most Linux distributions ship transparent huge pages in `madvise`
//! mode, so a program gets 2 MB pages only where it asks for them (`MADV_HUGEPAGE`), and only
//! for memory it has not touched yet. The helpers here allocate first, advise, then write.
//! Measured (docs/BENCHMARKS-LOG.md): f32 HNSW searches on 100k × 768 6-16 % faster
//! (2026-11-27 22:30); HNSW-SQ8 searches on 1M × 768 1.12-1.30× faster once the 8-bit codes
//! were in huge pages too (2026-12-03 16:00).
//!
//! Elsewhere (other systems, THP off, small arrays) they are plain allocations: the advice is
//! a hint, and a refusal changes nothing but speed.

/// Arrays below this size are not advised: they span less than one huge page.
const MIN_BYTES: usize = 4 << 20;

/// `len` copies of `value`, the memory advised for huge pages before it is written.
pub(crate) fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    advise(&v);
    v.resize(len, value);
    v
}

/// The items of `iter` (`len` of them), collected into memory advised for huge pages.
pub(crate) fn collected<T>(len: usize, iter: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    advise(&v);
    v.extend(iter);
    v
}

/// Grows `v` to `len` elements with copies of `value`; the capacity it gains is advised for
/// huge pages before it is written (what `v` held may stay in small pages). The growth is
/// amortised as in [`reserve`].
pub(crate) fn grown<T: Clone>(mut v: Vec<T>, len: usize, value: T) -> Vec<T> {
    let additional = len.saturating_sub(v.len());
    reserve(&mut v, additional);
    v.resize(len, value);
    v
}

/// A copy of `src` in memory advised for huge pages (e.g. codes read from a file).
pub(crate) fn copied<T: Copy>(src: &[T]) -> Vec<T> {
    collected(src.len(), src.iter().copied())
}

/// Makes room in `v` for `additional` more elements and advises its allocation for huge
/// pages before they are written (what `v` held may stay in small pages). The growth is
/// `Vec::reserve`'s, amortised: repeated small additions do not reallocate each time.
pub(crate) fn reserve<T>(v: &mut Vec<T>, additional: usize) {
    v.reserve(additional);
    advise(v);
}

/// Asks the kernel to back `v`'s whole allocation (its capacity) with huge pages.
fn advise<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes >= MIN_BYTES {
        advise_range(v.as_ptr().cast(), bytes);
    }
}

#[cfg(target_os = "linux")]
fn advise_range(start: *const u8, bytes: usize) {
    // madvise wants a page-aligned start; the pages the range only partly covers are left out.
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let addr = start as usize;
    let first = addr.next_multiple_of(page);
    let end = (addr + bytes) / page * page;
    if end > first {
        // SAFETY: the range lies inside one live allocation of ours; MADV_HUGEPAGE changes how
        // the kernel backs it, never its contents. A failure (THP not built in) only costs speed.
        let rc =
            unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            log::debug!(
                "madvise(MADV_HUGEPAGE) on {} bytes: {}",
                end - first,
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_range(_start: *const u8, _bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_give_the_values_asked_for() {
        let big = 3 * MIN_BYTES / 4;
        assert_eq!(filled(big, 7u32), vec![7u32; big]);
        assert_eq!(
            collected(big, 0..big as u32),
            (0..big as u32).collect::<Vec<_>>()
        );
        let v = grown(vec![1u8, 2], MIN_BYTES + 3, 9);
        assert_eq!(v.len(), MIN_BYTES + 3);
        assert_eq!(&v[..3], &[1, 2, 9]);
        assert!(v[2..].iter().all(|&x| x == 9));
        assert!(filled(0, 1u8).is_empty());
        let src: Vec<u8> = (0..MIN_BYTES + 5).map(|i| i as u8).collect();
        assert_eq!(copied(&src), src);
        let mut v = vec![1u8, 2];
        reserve(&mut v, MIN_BYTES);
        assert!(v.capacity() >= MIN_BYTES + 2);
        assert_eq!(v, [1, 2]);
        // Filled, then one more: amortised growth, not an exact fit per addition.
        v.resize(v.capacity(), 0);
        let full = v.len();
        reserve(&mut v, 1);
        assert!(
            v.capacity() > full + 1,
            "capacity {} after {full} + 1",
            v.capacity()
        );
        let mut g = grown(Vec::new(), MIN_BYTES, 0u8);
        g.resize(g.capacity(), 0);
        let full = g.len();
        let g = grown(g, full + 1, 0);
        assert!(
            g.capacity() > full + 1,
            "grown: capacity {} after {full} + 1",
            g.capacity()
        );
    }

    /// On Linux with THP in `madvise` or `always` mode, an advised array that was written lies
    /// (at least partly) in huge pages: the mapping holding it reports `AnonHugePages`.
    #[cfg(target_os = "linux")]
    #[test]
    fn advised_memory_gets_huge_pages_where_the_kernel_offers_them() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !mode.contains("[madvise]") && !mode.contains("[always]") {
            log::warn!(
                "transparent huge pages off here ({}): nothing to check",
                mode.trim()
            );
            return;
        }
        let v = filled(64 << 20, 1u8);
        // The array's middle: its first page, which it shares with the allocator's header, is
        // not advised, and advising splits the mapping.
        let addr = v.as_ptr() as usize + v.len() / 2;
        // This process's mapping that holds `addr`, and its AnonHugePages (kB).
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        // A mapping's header line starts with its address range, `start-end` in hex.
        let range = |line: &str| -> Option<(usize, usize)> {
            let (a, b) = line.split_whitespace().next()?.split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        };
        let mut inside = false;
        let mut huge_kb = None;
        for line in smaps.lines() {
            if let Some((a, b)) = range(line) {
                inside = (a..b).contains(&addr);
            } else if let Some(kb) = line.strip_prefix("AnonHugePages:").filter(|_| inside) {
                huge_kb = kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
                break;
            }
        }
        std::hint::black_box(&v);
        // The kernel compacts memory for an advised fault; it gives at least one 2 MB page on a
        // machine with free memory, which the test machines are.
        let huge_kb = huge_kb.unwrap_or(0);
        assert!(
            huge_kb >= 2048,
            "the 64 MiB advised array's mapping holds {huge_kb} kB in huge pages (THP: {})",
            mode.trim()
        );
    }
}
