//! The batch ring: worker threads decode and preprocess images straight into the slots of a
//! fixed set of batch buffers; the calling thread (which owns the model) receives whole batches
//! in input order. Memory is bounded by the number of buffers, whatever the number of images.
//!
//! Protocol. Image `i` belongs to batch `j = i / B`, slot `i % B`, and batch `j` uses buffer
//! `j % K`. Workers claim images one at a time from an atomic counter, so every slot has exactly
//! one writer. Before writing, a worker waits on the buffer's gate until the gate says the
//! buffer belongs to batch `j` (the consumer opens it for `j` after it has released batch
//! `j - K`). The worker that finishes the last slot of a batch sends the batch index to the
//! consumer. Because images are claimed in increasing order and the consumer takes batches in
//! order, the lowest unfinished image can always make progress: no deadlock.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

/// A raw pointer to a batch buffer, shared with the workers.
#[derive(Clone, Copy)]
pub(crate) struct BufPtr<T>(pub(crate) *mut T);
// SAFETY: the pointer is only dereferenced under the slot-ownership protocol above: one writer
// per slot while a batch is being filled, and the consumer alone between "batch complete" and
// "gate reopened".
unsafe impl<T: Send> Send for BufPtr<T> {}
// SAFETY: see above.
unsafe impl<T: Send> Sync for BufPtr<T> {}

/// How the ring is laid out.
pub(crate) struct RingLayout {
    /// Images per batch.
    pub batch: usize,
    /// Elements per image slot.
    pub slot_len: usize,
    /// Number of images.
    pub n: usize,
}

impl RingLayout {
    pub(crate) fn n_batches(&self) -> usize {
        self.n.div_ceil(self.batch)
    }
    pub(crate) fn batch_len(&self, j: usize) -> usize {
        (self.n - j * self.batch).min(self.batch)
    }
}

/// What the consumer sees of a completed batch.
pub(crate) struct FilledBatch<'a, T> {
    /// Batch index.
    pub index: usize,
    /// The compacted buffer: `rows × slot_len` valid elements first (the good images, in
    /// order), the rest unspecified.
    pub data: &'a mut [T],
    /// Number of good images at the front of `data`.
    pub rows: usize,
    /// Position in the batch of each good image.
    pub good: Vec<usize>,
    /// What `load` returned for each good image (its `(width, height)` in its file).
    pub sizes: Vec<(u32, u32)>,
    /// `(position in the batch, reason)` of each failed image, ascending.
    pub failed: Vec<(usize, String)>,
}

/// The consumer's side of the ring.
pub(crate) trait Consumer<T> {
    /// Error that stops the pipeline.
    type Error;
    /// Takes a batch. The buffer stays reserved until `release_lag` later batches have been
    /// taken (or the end), so asynchronous uploads from it may still be running on return.
    fn take(&mut self, batch: FilledBatch<'_, T>) -> Result<(), Self::Error>;
    /// Called once after the last batch, before the remaining buffers are released.
    fn finish(&mut self) -> Result<(), Self::Error>;
}

struct Gate {
    ready_for: Mutex<usize>,
    cv: Condvar,
}

/// Runs the ring. `buffers` are `K` pointers, each to `batch × slot_len` elements that stay
/// valid and otherwise untouched for the whole call. `load(path, slot)` fills one slot and
/// returns the image's `(width, height)`, or returns why the image is unusable. `release_lag`: see [`Consumer::take`].
///
/// # Safety
/// Every pointer in `buffers` must point to `layout.batch * layout.slot_len` initialised,
/// writable elements that nothing else reads or writes during the call, and the pointers must be
/// distinct, non-overlapping buffers.
pub(crate) unsafe fn run_ring<T, P, L, C>(
    paths: &[P],
    layout: &RingLayout,
    buffers: &[BufPtr<T>],
    workers: usize,
    release_lag: usize,
    load: &L,
    consumer: &mut C,
) -> Result<(), C::Error>
where
    T: Copy + Send,
    P: AsRef<Path> + Sync,
    L: Fn(&Path, &mut [T]) -> Result<(u32, u32), String> + Sync,
    C: Consumer<T>,
{
    let k = buffers.len();
    let n_batches = layout.n_batches();
    if n_batches == 0 {
        return consumer.finish();
    }
    let gates: Vec<Gate> = (0..k)
        .map(|r| Gate {
            ready_for: Mutex::new(r),
            cv: Condvar::new(),
        })
        .collect();
    let remaining: Vec<AtomicUsize> = (0..k)
        .map(|r| {
            AtomicUsize::new(if r < n_batches {
                layout.batch_len(r)
            } else {
                0
            })
        })
        .collect();
    let failures: Vec<Mutex<Vec<(usize, String)>>> =
        (0..k).map(|_| Mutex::new(Vec::new())).collect();
    // Each slot's image size, `width << 32 | height`, written by the slot's one worker before
    // its release of `remaining` and read by the consumer after its acquire.
    let sizes: Vec<Vec<AtomicU64>> = (0..k)
        .map(|_| (0..layout.batch).map(|_| AtomicU64::new(0)).collect())
        .collect();
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<usize>();

    let open_gate = |r: usize, j: usize| {
        let mut g = gates[r].ready_for.lock().unwrap_or_else(|e| e.into_inner());
        *g = j;
        gates[r].cv.notify_all();
    };
    let abort_all = || {
        abort.store(true, Ordering::SeqCst);
        for gate in &gates {
            let _g = gate.ready_for.lock().unwrap_or_else(|e| e.into_inner());
            gate.cv.notify_all();
        }
    };

    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let tx = tx.clone();
            let (gates, remaining, failures, sizes, next, abort) =
                (&gates, &remaining, &failures, &sizes, &next, &abort);
            scope.spawn(move || {
                loop {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= layout.n {
                        return;
                    }
                    let (j, s) = (i / layout.batch, i % layout.batch);
                    let r = j % k;
                    {
                        let mut g = gates[r].ready_for.lock().unwrap_or_else(|e| e.into_inner());
                        while *g != j {
                            if abort.load(Ordering::SeqCst) {
                                return;
                            }
                            g = gates[r].cv.wait(g).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    // SAFETY: slot `s` of buffer `r` belongs to image `i` alone until batch `j`
                    // is complete (see the module documentation); the buffer is valid by the
                    // caller's contract.
                    let slot = unsafe {
                        std::slice::from_raw_parts_mut(
                            buffers[r].0.add(s * layout.slot_len),
                            layout.slot_len,
                        )
                    };
                    let path = paths[i].as_ref();
                    match load(path, slot) {
                        Ok((width, height)) => sizes[r][s].store(
                            u64::from(width) << 32 | u64::from(height),
                            Ordering::Relaxed,
                        ),
                        Err(reason) => failures[r]
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((s, reason)),
                    }
                    if remaining[r].fetch_sub(1, Ordering::AcqRel) == 1 && tx.send(j).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);

        let result = (|| {
            let mut pending = BTreeMap::new();
            let mut expected = 0usize;
            let mut taken: Vec<usize> = Vec::new();
            while expected < n_batches {
                let Ok(j) = rx.recv() else { break };
                pending.insert(j, ());
                while pending.remove(&expected).is_some() {
                    let j = expected;
                    let r = j % k;
                    let len = layout.batch_len(j);
                    let mut failed =
                        std::mem::take(&mut *failures[r].lock().unwrap_or_else(|e| e.into_inner()));
                    failed.sort_by_key(|(s, _)| *s);
                    // SAFETY: every slot of batch `j` is written (remaining hit zero, with
                    // acquire ordering) and no worker touches buffer `r` until its gate is
                    // reopened below.
                    let data = unsafe {
                        std::slice::from_raw_parts_mut(buffers[r].0, layout.batch * layout.slot_len)
                    };
                    let mut good = Vec::with_capacity(len);
                    let mut f = failed.iter().peekable();
                    for s in 0..len {
                        if f.peek().is_some_and(|(fs, _)| *fs == s) {
                            f.next();
                            continue;
                        }
                        let row = good.len();
                        if row != s {
                            let sl = layout.slot_len;
                            data.copy_within(s * sl..(s + 1) * sl, row * sl);
                        }
                        good.push(s);
                    }
                    let rows = good.len();
                    let good_sizes = good
                        .iter()
                        .map(|&s| {
                            let packed = sizes[r][s].load(Ordering::Relaxed);
                            ((packed >> 32) as u32, packed as u32)
                        })
                        .collect();
                    consumer.take(FilledBatch {
                        index: j,
                        data,
                        rows,
                        good,
                        sizes: good_sizes,
                        failed,
                    })?;
                    taken.push(j);
                    expected += 1;
                    // Release the batch taken `release_lag` batches ago.
                    if taken.len() > release_lag {
                        let done = taken.remove(0);
                        let nj = done + k;
                        if nj < n_batches {
                            let r = done % k;
                            remaining[r].store(layout.batch_len(nj), Ordering::Release);
                            open_gate(r, nj);
                        }
                    }
                }
            }
            consumer.finish()
        })();
        if result.is_err() {
            abort_all();
        }
        // Workers may be waiting for a gate that will never open when the consumer stopped
        // early; `abort_all` wakes them. On success every worker has already returned.
        result
    })
}
