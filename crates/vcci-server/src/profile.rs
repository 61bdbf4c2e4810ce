//! The CPU profile of a running node (`GET /api/v1/admin/profile`): sampled with the `pprof`
//! crate (SIGPROF, 99 Hz) for a bounded time, returned as a pprof protobuf (what `go tool
//! pprof` and Grafana Pyroscope read) or as a flame graph SVG. Off unless the node is
//! started with `--profiling`; one profile at a time.
//!
//! The protobuf is encoded here from the report (profile.proto: samples, locations with
//! their lines, functions, the string table), so no protoc is needed to build.

use std::collections::HashMap;
use std::time::Duration;

/// Samples per second.
pub const FREQUENCY: i32 = 99;

/// Samples the whole process for `seconds` (blocking the calling thread).
pub fn capture(seconds: u64) -> Result<pprof::Report, String> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| format!("starting the profiler: {e}"))?;
    std::thread::sleep(Duration::from_secs(seconds));
    guard
        .report()
        .build()
        .map_err(|e| format!("building the profile: {e}"))
}

/// The flame graph of a report (SVG).
pub fn flamegraph(report: &pprof::Report) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    report
        .flamegraph(&mut out)
        .map_err(|e| format!("drawing the flame graph: {e}"))?;
    Ok(out)
}

/// Protobuf wire encoding, the few shapes profile.proto needs.
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }
    /// An integer field (omitted when 0, as proto3 does).
    fn int(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    /// A packed repeated integer field.
    fn packed(&mut self, field: u32, vs: &[i64]) {
        let mut inner = Pb(Vec::new());
        for v in vs {
            inner.varint(*v as u64);
        }
        self.bytes(field, &inner.0);
    }
}

/// Strings interned into the profile's string table (index 0 is "").
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
    fn id(&mut self, s: &str) -> i64 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// The report as a pprof `Profile` message: sample types `samples/count` and
/// `cpu/nanoseconds`, one location per sampled address (its inlined functions as lines,
/// leaf first), functions by name and file.
pub fn pprof_protobuf(report: &pprof::Report) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut function_msgs = Vec::new();
    let mut locations: HashMap<Vec<(u64, i64)>, u64> = HashMap::new();
    let mut location_msgs = Vec::new();
    let mut samples = Vec::new();
    let period = 1_000_000_000 / i64::from(FREQUENCY);
    for (frames, count) in &report.data {
        let mut ids = Vec::with_capacity(frames.frames.len());
        for frame in &frames.frames {
            let mut lines = Vec::with_capacity(frame.len());
            for sym in frame {
                let (name, file) = (sym.name(), sym.filename().into_owned());
                let next = functions.len() as u64 + 1;
                let fid = *functions
                    .entry((name.clone(), file.clone()))
                    .or_insert_with(|| {
                        let mut f = Pb(Vec::new());
                        f.int(1, next as i64);
                        f.int(2, strings.id(&name));
                        f.int(3, strings.id(&sym.sys_name()));
                        f.int(4, strings.id(&file));
                        function_msgs.push(f.0);
                        next
                    });
                lines.push((fid, i64::from(sym.lineno.unwrap_or(0))));
            }
            let next = locations.len() as u64 + 1;
            let lid = *locations.entry(lines.clone()).or_insert_with(|| {
                let mut l = Pb(Vec::new());
                l.int(1, next as i64);
                for (fid, line) in &lines {
                    let mut ln = Pb(Vec::new());
                    ln.int(1, *fid as i64);
                    ln.int(2, *line);
                    l.bytes(4, &ln.0);
                }
                location_msgs.push(l.0);
                next
            });
            ids.push(lid as i64);
        }
        let mut s = Pb(Vec::new());
        s.packed(1, &ids);
        s.packed(2, &[*count as i64, *count as i64 * period]);
        samples.push(s.0);
    }
    let value_type = |strings: &mut Strings, t: &str, u: &str| {
        let mut v = Pb(Vec::new());
        v.int(1, strings.id(t));
        v.int(2, strings.id(u));
        v.0
    };
    let samples_type = value_type(&mut strings, "samples", "count");
    let cpu_type = value_type(&mut strings, "cpu", "nanoseconds");
    let mut p = Pb(Vec::new());
    p.bytes(1, &samples_type);
    p.bytes(1, &cpu_type);
    for s in &samples {
        p.bytes(2, s);
    }
    for l in &location_msgs {
        p.bytes(4, l);
    }
    for f in &function_msgs {
        p.bytes(5, f);
    }
    let start = report
        .timing
        .start_time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let period_type = value_type(&mut strings, "cpu", "nanoseconds");
    for s in &strings.table {
        p.bytes(6, s.as_bytes());
    }
    p.int(9, start);
    p.int(10, report.timing.duration.as_nanos() as i64);
    p.bytes(11, &period_type);
    p.int(12, period);
    p.0
}
