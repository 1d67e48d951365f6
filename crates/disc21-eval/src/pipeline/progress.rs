//! Progress on stderr (count, rate, ETA), only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) struct Progress {
    enabled: bool,
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
            total,
            done: 0,
            started: now,
            last: now,
        }
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.done += n;
        if self.enabled && self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            self.print();
        }
    }

    fn print(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let eta = if rate > 0.0 {
            (self.total - self.done.min(self.total)) as f64 / rate
        } else {
            0.0
        };
        let _ = write!(
            std::io::stderr(),
            "\r{}/{} images, {rate:.1} images/s, ETA {}:{:02}   ",
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
