//! A streaming CSV record scanner (RFC 4180 plus what real exports do).
//!
//! Belongs here: splitting bytes into records and fields, quote handling, physical line
//! numbers, a hard cap on record size. Not here: what the fields mean (see `line`).
//!
//! We do not use the `csv` crate because the import needs three things it does not give:
//! a bounded record size (a 100 MB field must not be buffered), the raw bytes of a record
//! for the rejects file, and fields kept as bytes so that bad UTF-8 is a per-field error.

use std::io::{self, BufRead};

/// Why a record could not be read. The scanner recovers and continues after either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The record is longer than the configured limit; its bytes were skipped.
    TooLong { limit: usize },
    /// The file ended inside a quoted field.
    UnterminatedQuote,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::TooLong { limit } => {
                write!(f, "record is longer than the limit of {limit} bytes")
            }
            RecordError::UnterminatedQuote => {
                f.write_str("quoted field is not closed before the end of the file")
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Reads records one at a time; the returned record borrows the scanner's buffers.
#[derive(Debug)]
pub struct CsvScanner<R> {
    r: R,
    max_record: usize,
    /// Unescaped field bytes of the current record.
    data: Vec<u8>,
    /// End offsets of each field in `data`.
    ends: Vec<usize>,
    /// The record as it appeared in the file (kept up to `RAW_KEEP` bytes when too long).
    raw: Vec<u8>,
    /// Physical line number (1-based) of the next byte to be read.
    line: u64,
    /// Line number where the current record started.
    record_line: u64,
    /// A '\r' ended the previous record; a following '\n' belongs to it.
    pending_cr: bool,
    started: bool,
    bytes_read: u64,
}

/// How much of an over-long record is kept for error reports.
pub const RAW_KEEP: usize = 1024;

/// One record: its physical start line, raw bytes and fields.
#[derive(Debug)]
pub struct Record<'a> {
    pub line: u64,
    pub raw: &'a [u8],
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    /// Field `i` as bytes (unescaped).
    pub fn field(&self, i: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..end])
    }
}

impl<R: BufRead> CsvScanner<R> {
    pub fn new(r: R, max_record: usize) -> Self {
        CsvScanner {
            r,
            max_record,
            data: Vec::with_capacity(256),
            ends: Vec::with_capacity(32),
            raw: Vec::with_capacity(256),
            line: 1,
            record_line: 1,
            pending_cr: false,
            started: false,
            bytes_read: 0,
        }
    }

    /// The raw bytes of the record last returned or rejected (at most `RAW_KEEP` bytes of a
    /// record that was too long).
    pub fn last_raw(&self) -> &[u8] {
        &self.raw
    }

    /// Bytes consumed from the reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next record, `Ok(None)` at end of input, or a record-level error (with its line).
    /// Blank lines are skipped.
    #[allow(clippy::type_complexity)]
    pub fn next_record(&mut self) -> io::Result<Option<Result<Record<'_>, (u64, RecordError)>>> {
        loop {
            match self.scan()? {
                Scan::Eof => return Ok(None),
                Scan::Blank => continue,
                Scan::Error(e) => return Ok(Some(Err((self.record_line, e)))),
                Scan::Record => {
                    return Ok(Some(Ok(Record {
                        line: self.record_line,
                        raw: &self.raw,
                        data: &self.data,
                        ends: &self.ends,
                    })));
                }
            }
        }
    }

    fn scan(&mut self) -> io::Result<Scan> {
        self.data.clear();
        self.ends.clear();
        self.raw.clear();
        let mut state = State::FieldStart;
        let mut size = 0usize;
        let mut too_long = false;
        let mut any = false;
        self.record_line = self.line;
        loop {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                // End of input.
                if !any {
                    return Ok(Scan::Eof);
                }
                if state == State::Quoted {
                    return Ok(Scan::Error(RecordError::UnterminatedQuote));
                }
                if too_long {
                    return Ok(Scan::Error(RecordError::TooLong {
                        limit: self.max_record,
                    }));
                }
                self.ends.push(self.data.len());
                return Ok(Scan::Record);
            }
            let mut i = 0;
            if !self.started {
                self.started = true;
                if buf.starts_with(b"\xEF\xBB\xBF") {
                    i = 3;
                }
            }
            if self.pending_cr && i < buf.len() {
                self.pending_cr = false;
                if buf[i] == b'\n' {
                    i += 1;
                }
            }
            let mut done = false;
            while i < buf.len() {
                let b = buf[i];
                i += 1;
                if b == b'\n' || b == b'\r' {
                    if state != State::Quoted {
                        self.line += 1;
                        if b == b'\r' {
                            if i < buf.len() {
                                if buf[i] == b'\n' {
                                    i += 1;
                                }
                            } else {
                                self.pending_cr = true;
                            }
                        }
                        done = true;
                        break;
                    }
                    if b == b'\n' {
                        self.line += 1;
                    } else if i < buf.len() && buf[i] != b'\n' {
                        // A lone CR inside quotes still starts a new physical line.
                        self.line += 1;
                    }
                }
                any = true;
                size += 1;
                if size > self.max_record && !too_long {
                    too_long = true;
                    self.raw.truncate(RAW_KEEP);
                    self.data.clear();
                }
                if !too_long || self.raw.len() < RAW_KEEP {
                    self.raw.push(b);
                }
                if too_long {
                    // Keep only the quote state so the record's end is found correctly.
                    state = match (state, b) {
                        (State::FieldStart, b'"') => State::Quoted,
                        (State::FieldStart, b',') => State::FieldStart,
                        (State::FieldStart, _) => State::Unquoted,
                        (State::Unquoted, b',') => State::FieldStart,
                        (State::Quoted, b'"') => State::QuoteInQuoted,
                        (State::QuoteInQuoted, b'"') => State::Quoted,
                        (State::QuoteInQuoted, b',') => State::FieldStart,
                        (State::QuoteInQuoted, _) => State::Unquoted,
                        (s, _) => s,
                    };
                    continue;
                }
                match state {
                    State::FieldStart => match b {
                        b'"' => state = State::Quoted,
                        b',' => self.ends.push(self.data.len()),
                        _ => {
                            self.data.push(b);
                            state = State::Unquoted;
                        }
                    },
                    State::Unquoted => {
                        if b == b',' {
                            self.ends.push(self.data.len());
                            state = State::FieldStart;
                        } else {
                            self.data.push(b);
                        }
                    }
                    State::Quoted => {
                        if b == b'"' {
                            state = State::QuoteInQuoted;
                        } else {
                            self.data.push(b);
                        }
                    }
                    State::QuoteInQuoted => match b {
                        b'"' => {
                            self.data.push(b'"');
                            state = State::Quoted;
                        }
                        b',' => {
                            self.ends.push(self.data.len());
                            state = State::FieldStart;
                        }
                        _ => {
                            // Lenient: text after a closing quote is kept as is.
                            self.data.push(b);
                            state = State::Unquoted;
                        }
                    },
                }
            }
            self.bytes_read += i as u64;
            self.r.consume(i);
            if done {
                if !any {
                    // A blank line.
                    return Ok(Scan::Blank);
                }
                if too_long {
                    return Ok(Scan::Error(RecordError::TooLong {
                        limit: self.max_record,
                    }));
                }
                self.ends.push(self.data.len());
                return Ok(Scan::Record);
            }
        }
    }
}

enum Scan {
    Eof,
    Blank,
    Record,
    Error(RecordError),
}

#[cfg(test)]
mod tests {
    use super::*;

    type Scanned = Result<(u64, Vec<String>), (u64, RecordError)>;

    fn all(input: &[u8], max: usize) -> Vec<Scanned> {
        let mut s = CsvScanner::new(input, max);
        let mut out = vec![];
        while let Some(r) = s.next_record().unwrap() {
            out.push(r.map(|rec| {
                let f = (0..rec.len())
                    .map(|i| String::from_utf8_lossy(rec.field(i).unwrap()).into_owned())
                    .collect();
                (rec.line, f)
            }));
        }
        out
    }

    #[test]
    fn quotes_commas_newlines_bom_crlf() {
        let input = b"\xEF\xBB\xBFa,b,c\r\n1,\"x, y\",\"he said \"\"hi\"\"\"\r\n2,\"multi\nline\",z\r\n\r\n3,,\n";
        let r = all(input, 1000);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], Ok((1, vec!["a".into(), "b".into(), "c".into()])));
        assert_eq!(
            r[1],
            Ok((2, vec!["1".into(), "x, y".into(), "he said \"hi\"".into()]))
        );
        assert_eq!(
            r[2],
            Ok((3, vec!["2".into(), "multi\nline".into(), "z".into()]))
        );
        // Line 4 was "multi"'s second half, line 5 blank, so the next record starts on 6.
        assert_eq!(r[3], Ok((6, vec!["3".into(), "".into(), "".into()])));
    }

    #[test]
    fn no_trailing_newline_and_lone_cr() {
        let r = all(b"a,b\rc,d", 100);
        assert_eq!(r[0], Ok((1, vec!["a".into(), "b".into()])));
        assert_eq!(r[1], Ok((2, vec!["c".into(), "d".into()])));
    }

    #[test]
    fn too_long_record_is_skipped_and_scanning_continues() {
        let mut input = b"h\n".to_vec();
        input.extend_from_slice(b"\"");
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\n,still quoted\"\nok\n");
        let r = all(&input, 100);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], Err((2, RecordError::TooLong { limit: 100 })));
        assert_eq!(r[2], Ok((4, vec!["ok".into()])));
    }

    #[test]
    fn unterminated_quote() {
        let r = all(b"a\n\"open\nnever closed", 100);
        assert_eq!(r[1], Err((2, RecordError::UnterminatedQuote)));
    }

    #[test]
    fn small_reader_buffers_give_same_result() {
        let input = b"a,b\r\n\"q\"\"x\",\"m\r\nn\"\r\n1,2\r\n";
        let whole = all(input, 100);
        let mut s = CsvScanner::new(io::BufReader::with_capacity(1, &input[..]), 100);
        let mut n = 0;
        while let Some(r) = s.next_record().unwrap() {
            let rec = r.unwrap();
            let f: Vec<String> = (0..rec.len())
                .map(|i| String::from_utf8_lossy(rec.field(i).unwrap()).into_owned())
                .collect();
            assert_eq!(whole[n], Ok((rec.line, f)));
            n += 1;
        }
        assert_eq!(n, whole.len());
    }
}
