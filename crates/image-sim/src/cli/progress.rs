//! Progress on standard error (count, rate, ETA), only when it is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embed_pipeline::ProgressFn;

/// A one-line progress display, redrawn at most twice a second. Silent when standard error is
/// not a terminal (logs and pipes get the final status line only).
pub struct TerminalProgress {
    enabled: bool,
    /// What is counted ("images", "points").
    unit: &'static str,
    state: Mutex<State>,
}

struct State {
    total: usize,
    done: usize,
    started: Instant,
    last: Option<Instant>,
}

impl TerminalProgress {
    /// A display counting `unit`.
    pub fn new(unit: &'static str) -> Arc<Self> {
        Arc::new(Self {
            enabled: std::io::stderr().is_terminal(),
            unit,
            state: Mutex::new(State {
                total: 0,
                done: 0,
                started: Instant::now(),
                last: None,
            }),
        })
    }

    /// A pipeline callback that drives this display.
    pub fn pipeline_callback(self: &Arc<Self>) -> ProgressFn {
        let me = Arc::clone(self);
        ProgressFn::new(move |r| me.set(r.done, r.total))
    }

    /// Sets the count done so far out of `total`.
    pub fn set(&self, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.last.is_none() {
            // A new count (the first, or one after `finish`): its rate starts now.
            s.started = Instant::now();
        }
        s.done = done;
        s.total = total;
        if s.last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(500))
        {
            s.last = Some(Instant::now());
            self.print(&s);
        }
    }

    fn print(&self, s: &State) {
        let unit = self.unit;
        let secs = s.started.elapsed().as_secs_f64().max(1e-9);
        let rate = s.done as f64 / secs;
        let eta = if rate > 0.0 {
            (s.total - s.done.min(s.total)) as f64 / rate
        } else {
            0.0
        };
        let _ = write!(
            std::io::stderr(),
            "\r{}/{} {unit}, {rate:.1} {unit}/s, ETA {}:{:02}   ",
            s.done,
            s.total,
            (eta / 60.0) as u64,
            (eta % 60.0) as u64
        );
    }

    /// Draws the final count and ends the line (when anything was drawn); the next
    /// [`TerminalProgress::set`] starts a new count on a new line.
    pub fn finish(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.enabled && s.last.is_some() {
            self.print(&s);
            let _ = writeln!(std::io::stderr());
        }
        s.last = None;
    }
}

/// Shows checkpoint downloads (`embed_torch::download`) on the terminal, in megabytes: one line
/// per file.
#[cfg(feature = "torch")]
pub fn show_downloads() {
    let shown = TerminalProgress::new("MB");
    embed_torch::download::set_progress_hook(move |p| {
        let mb = |b: u64| (b / 1_000_000) as usize;
        shown.set(mb(p.done), mb(p.total.unwrap_or(p.done)));
        if p.finished {
            shown.finish();
        }
    });
}
