//! Import progress on standard error: a live line on a terminal, a line a second otherwise.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use vcci_store::import::ImportProgress;

#[derive(Debug)]
pub struct Progress {
    started: Instant,
    last_print: Instant,
    tty: bool,
    quiet: bool,
    total_bytes: Option<u64>,
}

impl Progress {
    pub fn new(quiet: bool, total_bytes: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last_print: now,
            tty: std::io::stderr().is_terminal(),
            quiet,
            total_bytes,
        }
    }

    pub fn update(&mut self, p: ImportProgress) {
        if self.quiet {
            return;
        }
        if !self.tty && self.last_print.elapsed().as_secs_f64() < 1.0 {
            return;
        }
        self.last_print = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let pct = match self.total_bytes {
            Some(t) if t > 0 => {
                let f = (p.bytes_read as f64 / t as f64).min(1.0);
                let filled = (f * 24.0) as usize;
                format!(
                    "[{}{}] {:>3.0}% ",
                    "#".repeat(filled),
                    "-".repeat(24 - filled),
                    f * 100.0
                )
            }
            _ => String::new(),
        };
        let line = format!(
            "{pct}{} lines read, {} committed, {} rejected, {} lines/s",
            group(p.lines_read),
            group(p.committed),
            group(p.rejected),
            group((p.lines_read as f64 / secs) as u64)
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    pub fn finish(&mut self) {
        if self.tty && !self.quiet {
            eprintln!();
        }
    }
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
