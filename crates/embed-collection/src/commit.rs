//! The atomic commit of a collection version.
//!
//! A collection is a folder of fixed names (`img_emb/`, `metadata/`, `image.index`,
//! `skipped.csv`, `collection.json`) that other tools read directly, so a new version cannot
//! be written beside the old one and switched to by one rename. Instead every change goes
//! through a journal of renames:
//!
//! 1. **Lock.** A writer holds an exclusive `flock` on `DIR/.lock` for its whole life; a second
//!    writer is refused ([`Error::Busy`]). A dead writer's lock is released by the kernel.
//! 2. **Recover.** Under the lock, the writer first finishes or undoes what a dead writer left
//!    (`recover`, below).
//! 3. **Stage.** Every new file (new shards, the index, `skipped.csv`, the new
//!    `collection.json`) is written under `DIR/.staging/` with a `.part` suffix (so no reader
//!    that globs `*.npy` or `*.parquet` picks it up) and synced; then `.staging/` is synced.
//!    Nothing outside `.staging/` has changed yet: a crash here leaves the old version.
//! 4. **Decide.** The journal `DIR/.commit.json` lists the moves (staged file → final name,
//!    `collection.json` last) and the old files to delete. It is written to a temporary name,
//!    synced, renamed into place and the folder synced. The rename is the commit point: from
//!    then on the new version is the collection.
//! 5. **Roll forward.** Each staged file still present is renamed to its final name (renames
//!    replace old files of the same name atomically), the folders are synced, the listed old
//!    files are deleted, then the journal is deleted and `.staging/` removed.
//!
//! **Recovery** (run by the next writer, and by [`crate::Collection::open`] when it finds a
//! journal and can take the lock): a journal means the commit was decided, so step 5 is
//! replayed; it is idempotent (a move whose staged file is gone was done, provided its target
//! exists; a delete of a missing file is done). Without a journal, `.staging/` holds an
//! undecided version and is removed. Either way the folder ends as exactly one version.
//!
//! **Readers** take no lock. [`crate::Collection::open`] reads `collection.json`, checks every
//! file against it, and then reads `collection.json` again: if a journal appeared or the
//! manifest changed meanwhile, a commit ran during the open and it starts over. While a live
//! writer holds the lock and a journal exists, a reader waits for the roll-forward (a few
//! renames) to end.
//!
//! In test builds, `crash_point` can stop a commit (or a recovery) after any step, as a kill
//! would; the tests then check that the folder opens as the old or the new version.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, damaged, io_err};

/// The writer lock file.
pub(crate) const LOCK: &str = ".lock";
/// The journal of a decided commit.
pub(crate) const JOURNAL: &str = ".commit.json";
/// Where a version is staged before it is committed.
pub(crate) const STAGING: &str = ".staging";

/// The moves and deletes of one commit, paths relative to the collection folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Journal {
    /// (staged, final) pairs, applied in order; `collection.json` comes last.
    pub(crate) moves: Vec<(String, String)>,
    /// Files of the old version that the new one does not have.
    pub(crate) deletes: Vec<String>,
}

/// An exclusive lock on the collection folder, held by a writer for its life.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: Option<File>,
}

/// How long [`WriterLock::acquire`] keeps trying a lock that is held.
///
/// A `flock` belongs to the open file description, and a process that starts a child
/// (`fork`, `posix_spawn`) shares every description it has open with that child until the
/// child runs `exec` or exits. A writer in a program that spawns processes on other threads
/// can therefore close its lock file and still appear to hold the lock for that instant: the
/// next writer of the same folder, even in the same process, would be refused. Waiting this
/// long turns that window into a short delay; a real second writer holds the lock for the
/// whole of its work and is still refused.
pub(crate) const LOCK_GRACE: Duration = Duration::from_secs(1);

impl WriterLock {
    /// Takes the lock, trying for up to [`LOCK_GRACE`]; [`Error::Busy`] if another writer
    /// holds it. Where the file system has no locks (some cluster file systems), a warning is
    /// logged and the writer proceeds unlocked.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        Self::acquire_within(dir, LOCK_GRACE)
    }

    /// [`Self::acquire`] with another grace period (zero: one try).
    pub(crate) fn acquire_within(dir: &Path, grace: Duration) -> Result<Self> {
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < grace => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => return Self::locked(dir, &path, file, r),
            }
        }
    }

    /// The outcome of the last `try_lock`.
    fn locked(
        dir: &Path,
        path: &Path,
        file: File,
        r: std::result::Result<(), std::fs::TryLockError>,
    ) -> Result<Self> {
        match r {
            Ok(()) => Ok(Self { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                log::warn!(
                    "{}: file locks are not supported here; two writers of this collection at \
                     once would damage it",
                    path.display()
                );
                Ok(Self { _file: None })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(path)(e)),
        }
    }
}

/// Syncs a folder, so that the renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

/// Writes `bytes` to `path` through a temporary name: write, sync, rename, sync the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes a small staged file and returns (bytes, crc32).
pub(crate) fn write_staged(path: &Path, bytes: &[u8]) -> Result<(u64, u32)> {
    let mut f = File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok((bytes.len() as u64, crc32fast::hash(bytes)))
}

/// Commits a staged version: writes the journal (the commit point), then rolls forward.
/// The caller holds the [`WriterLock`] and has synced every staged file.
pub(crate) fn commit(dir: &Path, _lock: &WriterLock, journal: &Journal) -> Result<()> {
    sync_dir(&dir.join(STAGING))?;
    crash_point("staged")?;
    let bytes =
        serde_json::to_vec_pretty(journal).map_err(|e| Error::Invalid(format!("journal: {e}")))?;
    write_atomic(&dir.join(JOURNAL), &bytes)?;
    crash_point("journal written")?;
    roll_forward(dir, journal)
}

/// Replays step 5 of the protocol; idempotent.
fn roll_forward(dir: &Path, journal: &Journal) -> Result<()> {
    let mut folders = vec![dir.to_path_buf()];
    for (from, to) in &journal.moves {
        let (from, to) = (dir.join(from), dir.join(to));
        if let Some(parent) = to.parent()
            && !folders.iter().any(|f| f == parent)
        {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            folders.push(parent.to_path_buf());
        }
        if from.exists() {
            std::fs::rename(&from, &to).map_err(io_err(&to))?;
            crash_point("moved")?;
        } else if !to.exists() {
            return Err(damaged(
                &dir.join(JOURNAL),
                format!(
                    "{} is neither staged nor in place: the commit cannot be finished",
                    to.display()
                ),
            ));
        }
    }
    for f in &folders {
        sync_dir(f)?;
    }
    for d in &journal.deletes {
        let p = dir.join(d);
        match std::fs::remove_file(&p) {
            Ok(()) => crash_point("deleted")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&p)(e)),
        }
    }
    for f in &folders {
        sync_dir(f)?;
    }
    let journal_path = dir.join(JOURNAL);
    std::fs::remove_file(&journal_path).map_err(io_err(&journal_path))?;
    sync_dir(dir)?;
    crash_point("journal removed")?;
    remove_staging(dir)
}

fn remove_staging(dir: &Path) -> Result<()> {
    let staging = dir.join(STAGING);
    match std::fs::remove_dir_all(&staging) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&staging)(e)),
    }
}

/// Whether a decided commit has not been rolled forward yet.
pub(crate) fn journal_exists(dir: &Path) -> bool {
    dir.join(JOURNAL).exists()
}

/// Finishes a decided commit or drops an undecided one (see the module doc). Returns whether
/// a commit was rolled forward.
pub(crate) fn recover(dir: &Path, _lock: &WriterLock) -> Result<bool> {
    let path = dir.join(JOURNAL);
    let rolled = match std::fs::read(&path) {
        Ok(bytes) => {
            let journal: Journal = serde_json::from_slice(&bytes)
                .map_err(|e| damaged(&path, format!("unreadable commit journal: {e}")))?;
            log::info!("{}: finishing an interrupted commit", dir.display());
            roll_forward(dir, &journal)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(&path)(e)),
    };
    remove_staging(dir)?;
    Ok(rolled)
}

#[cfg(test)]
thread_local! {
    /// Steps left before the simulated crash; `None`: no crash planned.
    static CRASH_IN: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    /// Crash points passed since [`count_crash_points`] was last reset.
    static PASSED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Plans a simulated crash at the `n`-th crash point from now on this thread (0 = the next).
#[cfg(test)]
pub(crate) fn crash_after(n: Option<usize>) {
    CRASH_IN.with(|c| c.set(n));
    PASSED.with(|c| c.set(0));
}

/// Crash points passed on this thread since the last [`crash_after`].
#[cfg(test)]
pub(crate) fn crash_points_passed() -> usize {
    PASSED.with(|c| c.get())
}

/// A step after which a test may stop the commit as a kill would. No-op outside tests.
#[cfg(test)]
pub(crate) fn crash_point(name: &'static str) -> Result<()> {
    PASSED.with(|c| c.set(c.get() + 1));
    CRASH_IN.with(|c| match c.get() {
        Some(0) => {
            c.set(None);
            Err(Error::SimulatedCrash(name))
        }
        Some(n) => {
            c.set(Some(n - 1));
            Ok(())
        }
        None => Ok(()),
    })
}

/// A step after which a test may stop the commit as a kill would. No-op outside tests.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn crash_point(_name: &'static str) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Holds the folder's lock through a second open file description, as a forked child
    /// that has not yet run `exec` does.
    fn hold(dir: &Path) -> File {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .unwrap();
        f.try_lock().unwrap();
        f
    }

    #[test]
    fn a_lock_released_within_the_grace_period_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let held = hold(dir.path());
        let release = std::thread::spawn(move || {
            std::thread::sleep(LOCK_GRACE / 5);
            drop(held);
        });
        let lock = WriterLock::acquire(dir.path());
        release.join().unwrap();
        assert!(lock.is_ok(), "{lock:?}");
    }

    #[test]
    fn a_lock_held_past_the_grace_period_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = hold(dir.path());
        let start = Instant::now();
        let lock = WriterLock::acquire(dir.path());
        assert!(matches!(lock, Err(Error::Busy(_))), "{lock:?}");
        assert!(start.elapsed() >= LOCK_GRACE);
        // One try when asked for none.
        let start = Instant::now();
        let lock = WriterLock::acquire_within(dir.path(), Duration::ZERO);
        assert!(matches!(lock, Err(Error::Busy(_))), "{lock:?}");
        assert!(start.elapsed() < LOCK_GRACE);
    }
}
