//! Progress on stderr (count, rate, ETA), only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) struct Progress {
    enabled: bool,
    /// What is counted ("images", "points").
    unit: &'static str,
    total: usize,
    done: usize,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub(crate) fn new(wanted: bool, total: usize) -> Self {
        let now = Instant::now();
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            unit: "images",
            total,
            done: 0,
            started: now,
            last: now,
        }
    }

    /// Counts `unit` instead of images.
    pub(crate) fn counting(self, unit: &'static str) -> Self {
        Self { unit, ..self }
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.set(self.done + n);
    }

    /// Sets the count done so far.
    pub(crate) fn set(&mut self, done: usize) {
        self.done = done;
        if self.enabled && self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            self.print();
        }
    }

    fn print(&self) {
        let unit = self.unit;
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let eta = if rate > 0.0 {
            (self.total - self.done.min(self.total)) as f64 / rate
        } else {
            0.0
        };
        let _ = write!(
            std::io::stderr(),
            "\r{}/{} {unit}, {rate:.1} {unit}/s, ETA {}:{:02}   ",
            self.done,
            self.total,
            (eta / 60.0) as u64,
            (eta % 60.0) as u64
        );
    }

    pub(crate) fn finish(&mut self) {
        if self.enabled && self.done > 0 {
            self.print();
            let _ = writeln!(std::io::stderr());
        }
    }
}
