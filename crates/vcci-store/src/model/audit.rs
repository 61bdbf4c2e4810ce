//! The audit log: every change of an organization's data appended as an entry, in the
//! change's own transaction, with who made it (an API key's id and role, or the command
//! line), when, what, and the request id. Entries of an organization form a hash chain:
//! entry n's hash is the SHA-256 of entry n-1's hash and entry n's fields, so an edited,
//! deleted or reordered entry breaks the chain, and `Db::verify_audit` names the first one
//! that does. The chain's last entry is also kept in `audit_heads` (a chain cut short at its
//! end is told by it) and recorded with each inventory version a close or restatement makes,
//! an anchor outside the log.
//!
//! Lines are summarized, not logged one row each: a change that wrote lines carries their
//! per-line digests ([`LineDigests`], 25 bytes a line: created / updated / deleted, the
//! FNV-1a hash of the transaction id, the content hash before and after) and the SHA-256
//! of them, which the entry's hash covers. A direct write keeps them in the entry; an
//! import's writers keep them in `audit_line_digests`, one row per committed transaction,
//! and one entry seals them when the import ends (succeeded or failed).
//!
//! Not here: where changes happen (each writer calls [`append`] in its transaction).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::conn::{Arg, Conn, Db, Dialect, Row, Tx, args, fnv1a};
use crate::model::orgs::OrgId;
use crate::{Result, now_rfc3339};

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Actor {
    /// The API key's id (never the key); none from the command line.
    pub key_id: Option<i64>,
    /// The key's role, `cli` for the command line, `system` for vcci itself.
    pub role: String,
    /// How the entry names the actor (`key 12 (admin)`, `command line (alice)`).
    pub label: String,
    /// The API request's id (`X-Request-Id`).
    pub request_id: Option<String>,
}

impl Actor {
    /// An API key of `role`, in request `request_id`.
    pub fn key(key_id: i64, role: &str, request_id: Option<String>) -> Actor {
        Actor {
            key_id: Some(key_id),
            role: role.to_owned(),
            label: format!("key {key_id} ({role})"),
            request_id,
        }
    }

    /// The command line, run by the operating-system user of `USER` (or `LOGNAME`, or the
    /// process's uid as `/etc/passwd` names it).
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(os_user)
            .unwrap_or_else(|| "unknown user".into());
        Actor {
            key_id: None,
            role: "cli".into(),
            label: format!("command line ({user})"),
            request_id: None,
        }
    }

    /// vcci itself (`what`: the demo loader, a job recovery).
    pub fn system(what: &str) -> Actor {
        Actor {
            key_id: None,
            role: "system".into(),
            label: what.to_owned(),
            request_id: None,
        }
    }
}

/// The name of the process's real uid (Linux: `/proc/self/status`, then `/etc/passwd`), or
/// `uid N` when it has none.
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or(format!("uid {uid}")))
}

/// What happened to a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineChange {
    Created = 1,
    Updated = 2,
    Deleted = 3,
}

/// Bytes of one line's digest: kind, id hash, content hash before, content hash after.
pub const DIGEST_BYTES: usize = 25;

/// The per-line digests of a change, packed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineDigests {
    bytes: Vec<u8>,
}

/// One line's digest, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LineDigest {
    pub change: LineChange,
    /// FNV-1a of the transaction id ([`line_key`]).
    pub id_hash: u64,
    /// The line's content hash before (none for a created line) and after (none for a
    /// deleted one): the hash that also tells an unchanged re-send.
    pub before: Option<i64>,
    pub after: Option<i64>,
}

/// The key under which a transaction id's digests are kept.
pub fn line_key(transaction_id: &str) -> u64 {
    fnv1a(transaction_id)
}

impl LineDigests {
    pub fn push(&mut self, change: LineChange, id: &str, before: Option<i64>, after: Option<i64>) {
        self.bytes.push(change as u8);
        self.bytes.extend_from_slice(&line_key(id).to_be_bytes());
        for h in [before, after] {
            self.bytes.extend_from_slice(&h.unwrap_or(0).to_be_bytes());
        }
    }

    /// Appends `other`'s digests.
    pub fn extend(&mut self, other: LineDigests) {
        self.bytes.extend_from_slice(&other.bytes);
    }

    /// Lines recorded.
    pub fn len(&self) -> usize {
        self.bytes.len() / DIGEST_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Created, updated and deleted lines.
    pub fn counts(&self) -> (u64, u64, u64) {
        let mut c = (0, 0, 0);
        for d in decode(&self.bytes) {
            match d.change {
                LineChange::Created => c.0 += 1,
                LineChange::Updated => c.1 += 1,
                LineChange::Deleted => c.2 += 1,
            }
        }
        c
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Digests packed as `as_bytes` gives them.
    pub fn from_bytes(bytes: Vec<u8>) -> LineDigests {
        LineDigests { bytes }
    }
}

/// The digests packed in `bytes` (a trailing partial record is ignored).
pub fn decode(bytes: &[u8]) -> impl Iterator<Item = LineDigest> + '_ {
    bytes.chunks_exact(DIGEST_BYTES).map(|r| {
        let word = |at: usize| u64::from_be_bytes(r[at..at + 8].try_into().unwrap_or_default());
        let change = match r[0] {
            1 => LineChange::Created,
            2 => LineChange::Updated,
            _ => LineChange::Deleted,
        };
        let hash = |at: usize, present: bool| present.then(|| word(at) as i64);
        LineDigest {
            change,
            id_hash: word(1),
            before: hash(9, change != LineChange::Created),
            after: hash(17, change != LineChange::Deleted),
        }
    })
}

/// The lines a change wrote, as its entry records them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lines<'a> {
    None,
    /// Kept in the entry.
    Inline(&'a LineDigests),
    /// An import's, kept in `audit_line_digests`: their number and SHA-256.
    Import {
        count: u64,
        sha256: [u8; 32],
    },
}

/// A change to append.
#[derive(Debug)]
pub(crate) struct Change<'a> {
    /// What happened: `lines.written`, `line.deleted`, `import`, `suppliers.upserted`, ...
    pub action: &'static str,
    /// What it happened to (a transaction id, a year, an import id; may be empty).
    pub subject: String,
    pub detail: serde_json::Value,
    pub lines: Lines<'a>,
}

impl<'a> Change<'a> {
    pub fn new(
        action: &'static str,
        subject: impl Into<String>,
        detail: serde_json::Value,
    ) -> Self {
        Change {
            action,
            subject: subject.into(),
            detail,
            lines: Lines::None,
        }
    }

    pub fn with_lines(mut self, d: &'a LineDigests) -> Self {
        self.lines = Lines::Inline(d);
        self
    }
}

/// The fields an entry's hash covers.
struct Hashed<'a> {
    org: i64,
    seq: i64,
    at: &'a str,
    actor: &'a str,
    key_id: Option<i64>,
    role: &'a str,
    request_id: Option<&'a str>,
    action: &'a str,
    subject: &'a str,
    detail: &'a str,
    lines: i64,
    lines_digest: Option<&'a [u8]>,
}

/// SHA-256 of the previous hash and the entry's fields, each length-prefixed (an absent
/// value is told from an empty one).
fn entry_hash(prev: &[u8], e: &Hashed<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vcci-audit-1\0");
    h.update(prev);
    h.update(e.org.to_be_bytes());
    h.update(e.seq.to_be_bytes());
    let mut text = |v: Option<&[u8]>| match v {
        Some(s) => {
            h.update([1]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s);
        }
        None => h.update([0]),
    };
    text(Some(e.at.as_bytes()));
    text(Some(e.actor.as_bytes()));
    text(e.key_id.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    text(Some(e.role.as_bytes()));
    text(e.request_id.map(str::as_bytes));
    text(Some(e.action.as_bytes()));
    text(Some(e.subject.as_bytes()));
    text(Some(e.detail.as_bytes()));
    text(Some(&e.lines.to_be_bytes()));
    text(e.lines_digest);
    h.finalize().into()
}

const GENESIS: [u8; 32] = [0; 32];

/// An appended entry's place in its chain.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Appended {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// Appends `change` to `org`'s audit log in `tx` and returns its seq and hash. Appends of one
/// organization take turns on its `audit_heads` row, held until `tx` ends: callers append
/// last in their transaction, after the locks of their change.
pub(crate) fn append(
    tx: &Tx<'_>,
    org: OrgId,
    actor: &Actor,
    change: Change<'_>,
) -> Result<Appended> {
    tx.execute(
        "INSERT INTO audit_heads (org_id, seq, hash) VALUES (?1, 0, ?2)
         ON CONFLICT (org_id) DO NOTHING",
        args![org.0, &GENESIS[..]],
    )?;
    let lock = match tx.dialect() {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let (last, prev) = tx.query_one(
        &format!("SELECT seq, hash FROM audit_heads WHERE org_id = ?1{lock}"),
        args![org.0],
        |r| Ok((r.i64(0)?, r.blob(1)?.to_vec())),
    )?;
    let (count, digest, inline): (i64, Option<[u8; 32]>, Option<&[u8]>) = match change.lines {
        Lines::None => (0, None, None),
        Lines::Inline(d) => (
            d.len() as i64,
            Some(Sha256::digest(d.as_bytes()).into()),
            Some(d.as_bytes()),
        ),
        Lines::Import { count, sha256 } => (count as i64, Some(sha256), None),
    };
    let detail = change.detail.to_string();
    let at = now_rfc3339();
    let seq = last + 1;
    let hashed = Hashed {
        org: org.0,
        seq,
        at: &at,
        actor: &actor.label,
        key_id: actor.key_id,
        role: &actor.role,
        request_id: actor.request_id.as_deref(),
        action: change.action,
        subject: &change.subject,
        detail: &detail,
        lines: count,
        lines_digest: digest.as_ref().map(|d| &d[..]),
    };
    let hash = entry_hash(&prev, &hashed);
    tx.execute(
        "INSERT INTO audit_log (org_id, seq, at, actor, key_id, role, request_id, action,
           subject, detail, lines, lines_digest, digests, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        args![
            org.0,
            seq,
            at.as_str(),
            actor.label.as_str(),
            actor.key_id,
            actor.role.as_str(),
            actor.request_id.as_deref(),
            change.action,
            change.subject.as_str(),
            detail.as_str(),
            count,
            digest.as_ref().map(|d| &d[..]),
            inline,
            &prev[..],
            &hash[..]
        ],
    )?;
    tx.execute(
        "UPDATE audit_heads SET seq = ?2, hash = ?3 WHERE org_id = ?1",
        args![org.0, seq, &hash[..]],
    )?;
    Ok(Appended { seq, hash })
}

/// Keeps the digests of lines an import's transaction wrote (in that transaction).
pub(crate) fn put_import_digests(
    tx: &Tx<'_>,
    org: OrgId,
    import_id: i64,
    d: &LineDigests,
) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO audit_line_digests (org_id, import_id, digests) VALUES (?1, ?2, ?3)",
        args![org.0, import_id, d.as_bytes()],
    )?;
    Ok(())
}

/// The number and SHA-256 of an import's line digests, over its rows in id order.
fn import_digests(conn: &Conn, org: OrgId, import_id: i64) -> Result<(u64, [u8; 32])> {
    let mut h = Sha256::new();
    let mut bytes = 0u64;
    conn.for_each(
        "SELECT digests FROM audit_line_digests WHERE org_id = ?1 AND import_id = ?2 ORDER BY id",
        args![org.0, import_id],
        &mut |r: &Row<'_>| {
            let b = r.blob(0)?;
            bytes += b.len() as u64;
            h.update(b);
            Ok(())
        },
    )?;
    Ok((bytes / DIGEST_BYTES as u64, h.finalize().into()))
}

/// Seals an import: appends its entry, covering every line digest its writers kept.
pub(crate) fn seal_import(
    tx: &Tx<'_>,
    org: OrgId,
    import_id: i64,
    actor: &Actor,
    detail: serde_json::Value,
) -> Result<Appended> {
    let (count, sha256) = import_digests(tx, org, import_id)?;
    let change = Change {
        action: "import",
        subject: import_id.to_string(),
        detail,
        lines: Lines::Import { count, sha256 },
    };
    append(tx, org, actor, change)
}

/// An entry as listed.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub key_id: Option<i64>,
    pub role: String,
    pub request_id: Option<String>,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
    /// Lines the change wrote (their digests are kept with the entry or its import).
    pub lines: i64,
    /// SHA-256 of the lines' digests, hex.
    pub lines_digest: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The columns `raw_row` reads; `digests` NULL unless asked for (a page of entries does not
/// carry their line digests: an API write's are 25 bytes a line).
fn entry_cols(with_digests: bool) -> String {
    format!(
        "seq, at, actor, key_id, role, request_id, action, subject, detail, lines, lines_digest, {}, prev_hash, hash",
        if with_digests {
            "digests"
        } else {
            "CAST(NULL AS BYTEA)"
        }
    )
}

impl From<&RawEntry> for AuditEntry {
    fn from(e: &RawEntry) -> AuditEntry {
        AuditEntry {
            seq: e.seq,
            at: e.at.clone(),
            actor: e.actor.clone(),
            key_id: e.key_id,
            role: e.role.clone(),
            request_id: e.request_id.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            lines: e.lines,
            lines_digest: e.lines_digest.as_deref().map(hex),
            prev_hash: hex(&e.prev_hash),
            hash: hex(&e.hash),
        }
    }
}

/// Filters of the audit log (all optional, combined with AND).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// An action (`import`), or a family of them with a trailing `.` (`period.`).
    pub action: Option<String>,
    pub subject: Option<String>,
    pub key_id: Option<i64>,
    /// RFC 3339 bounds of `at` (inclusive; a date alone is that day).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only changes that wrote this line (by its transaction id).
    pub line: Option<String>,
}

/// Entries a `line` filter reads per query while it looks for matches.
const LINE_SCAN: usize = 500;

impl Db {
    /// Entries of `org`, newest first, before seq `before` (the cursor), at most `limit`.
    pub fn audit_entries(
        &self,
        org: OrgId,
        f: &AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let Some(line) = &f.line else {
            let (sql, a) = audit_query(org, f, before, limit, false);
            return self
                .conn
                .query(&sql, &a, |r| Ok(AuditEntry::from(&raw_row(r)?)));
        };
        // A line's changes: entries that wrote lines, scanned newest first, kept where the
        // line's key is among their digests.
        let key = line_key(line);
        let mut out = Vec::new();
        let mut cursor = before;
        loop {
            let (sql, a) = audit_query(org, f, cursor, LINE_SCAN, true);
            let rows = self.conn.query(&sql, &a, raw_row)?;
            let done = rows.len() < LINE_SCAN;
            for raw in rows {
                let e = AuditEntry::from(&raw);
                cursor = Some(e.seq);
                let hit = match raw.digests {
                    Some(d) => decode(&d).any(|x| x.id_hash == key),
                    None if e.action == "import" => {
                        let id: i64 = e.subject.parse().unwrap_or(-1);
                        self.import_has_line(org, id, key)?
                    }
                    None => false,
                };
                if hit {
                    out.push(e);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    fn import_has_line(&self, org: OrgId, import_id: i64, key: u64) -> Result<bool> {
        let mut hit = false;
        self.conn.for_each(
            "SELECT digests FROM audit_line_digests WHERE org_id = ?1 AND import_id = ?2",
            args![org.0, import_id],
            &mut |r: &Row<'_>| {
                hit = hit || decode(r.blob(0)?).any(|x| x.id_hash == key);
                Ok(())
            },
        )?;
        Ok(hit)
    }

    /// One entry's line digests (kept with it, or its import's).
    pub fn audit_line_digests(&self, org: OrgId, seq: i64) -> Result<Option<Vec<LineDigest>>> {
        let Some((action, subject, inline)) = self.conn.query_opt(
            "SELECT action, subject, digests FROM audit_log WHERE org_id = ?1 AND seq = ?2",
            args![org.0, seq],
            |r| {
                Ok((
                    r.string(0)?,
                    r.string(1)?,
                    r.opt_blob(2)?.map(<[u8]>::to_vec),
                ))
            },
        )?
        else {
            return Ok(None);
        };
        let mut out = Vec::new();
        match inline {
            Some(d) => out.extend(decode(&d)),
            None if action == "import" => {
                let id: i64 = subject.parse().unwrap_or(-1);
                self.conn.for_each(
                    "SELECT digests FROM audit_line_digests WHERE org_id = ?1 AND import_id = ?2
                     ORDER BY id",
                    args![org.0, id],
                    &mut |r: &Row<'_>| {
                        out.extend(decode(r.blob(0)?));
                        Ok(())
                    },
                )?;
            }
            None => {}
        }
        Ok(Some(out))
    }

    /// The last entry of `org`'s chain: (seq, hash), (0, zeros) before the first.
    pub fn audit_head(&self, org: OrgId) -> Result<(i64, String)> {
        Ok(self
            .conn
            .query_opt(
                "SELECT seq, hash FROM audit_heads WHERE org_id = ?1",
                args![org.0],
                |r| Ok((r.i64(0)?, hex(r.blob(1)?))),
            )?
            .unwrap_or((0, hex(&GENESIS))))
    }

    /// Checks `org`'s chain from its first entry: every entry's hash, its link to the one
    /// before, its seq, its lines' digests, and the head.
    pub fn verify_audit(&self, org: OrgId) -> Result<AuditVerification> {
        let mut v = AuditVerification::default();
        let mut prev = GENESIS.to_vec();
        let mut expected = 1i64;
        let mut after = 0i64;
        // Read in pages (a chain of millions of entries is not held in memory).
        loop {
            let rows = self.conn.query(
                &format!(
                    "SELECT {} FROM audit_log WHERE org_id = ?1 AND seq > ?2 ORDER BY seq LIMIT 1000",
                    entry_cols(true)
                ),
                args![org.0, after],
                raw_row,
            )?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for e in rows {
                if v.broken.is_none()
                    && let Some(why) = self.check_entry(org, &e, &prev, expected)?
                {
                    v.broken = Some(BrokenEntry {
                        seq: e.seq,
                        reason: why,
                    });
                }
                v.entries += 1;
                v.lines += e.lines as u64;
                prev = e.hash.clone();
                expected = e.seq + 1;
            }
        }
        let (head_seq, head_hash) = self.audit_head(org)?;
        v.head_seq = head_seq;
        v.head_hash = head_hash.clone();
        if v.broken.is_none() && (head_seq != expected - 1 || head_hash != hex(&prev)) {
            v.broken = Some(BrokenEntry {
                seq: expected,
                reason: format!(
                    "the chain ends at entry {} but its head is entry {head_seq}: entries at its end were removed or the head was changed",
                    expected - 1
                ),
            });
        }
        v.unsealed_imports = self.conn.query(
            "SELECT DISTINCT d.import_id FROM audit_line_digests d
             WHERE d.org_id = ?1 AND NOT EXISTS (SELECT 1 FROM audit_log a
               WHERE a.org_id = d.org_id AND a.action = 'import'
                 AND a.subject = CAST(d.import_id AS TEXT))
             ORDER BY d.import_id",
            args![org.0],
            |r| r.i64(0),
        )?;
        Ok(v)
    }

    /// Why entry `e` breaks the chain, if it does.
    fn check_entry(
        &self,
        org: OrgId,
        e: &RawEntry,
        prev: &[u8],
        expected: i64,
    ) -> Result<Option<String>> {
        if e.seq != expected {
            return Ok(Some(format!(
                "entry {expected} is missing (the next is {}): entries were deleted",
                e.seq
            )));
        }
        if e.prev_hash != prev {
            return Ok(Some(format!(
                "it does not link to entry {}: entries were removed, inserted or reordered",
                e.seq - 1
            )));
        }
        let computed = entry_hash(
            prev,
            &Hashed {
                org: org.0,
                seq: e.seq,
                at: &e.at,
                actor: &e.actor,
                key_id: e.key_id,
                role: &e.role,
                request_id: e.request_id.as_deref(),
                action: &e.action,
                subject: &e.subject,
                detail: &e.detail,
                lines: e.lines,
                lines_digest: e.lines_digest.as_deref(),
            },
        );
        if computed[..] != e.hash[..] {
            return Ok(Some(
                "its hash does not match its content: the entry was edited".into(),
            ));
        }
        let lines = match (&e.digests, e.action.as_str()) {
            (Some(d), _) => Some((
                (d.len() / DIGEST_BYTES) as i64,
                <[u8; 32]>::from(Sha256::digest(d)),
            )),
            (None, "import") => {
                let (n, sha) = import_digests(&self.conn, org, e.subject.parse().unwrap_or(-1))?;
                Some((n as i64, sha))
            }
            (None, _) => None,
        };
        let recorded = e.lines_digest.as_deref();
        let ok = match lines {
            Some((n, sha)) => n == e.lines && recorded == Some(&sha[..]),
            None => e.lines == 0 && recorded.is_none(),
        };
        Ok((!ok)
            .then(|| "its line digests do not match what it recorded: they were changed".into()))
    }
}

/// An entry as stored, for verification.
struct RawEntry {
    seq: i64,
    at: String,
    actor: String,
    key_id: Option<i64>,
    role: String,
    request_id: Option<String>,
    action: String,
    subject: String,
    detail: String,
    lines: i64,
    lines_digest: Option<Vec<u8>>,
    digests: Option<Vec<u8>>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn raw_row(r: &Row<'_>) -> Result<RawEntry> {
    Ok(RawEntry {
        seq: r.i64(0)?,
        at: r.string(1)?,
        actor: r.string(2)?,
        key_id: r.opt_i64(3)?,
        role: r.string(4)?,
        request_id: r.opt_string(5)?,
        action: r.string(6)?,
        subject: r.string(7)?,
        detail: r.string(8)?,
        lines: r.i64(9)?,
        lines_digest: r.opt_blob(10)?.map(<[u8]>::to_vec),
        digests: r.opt_blob(11)?.map(<[u8]>::to_vec),
        prev_hash: r.blob(12)?.to_vec(),
        hash: r.blob(13)?.to_vec(),
    })
}

/// What `Db::verify_audit` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditVerification {
    pub entries: u64,
    /// Lines covered by the entries' digests.
    pub lines: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first entry that breaks the chain, if any.
    pub broken: Option<BrokenEntry>,
    /// Imports whose line digests no entry seals yet: running, or stopped without an end
    /// (a crashed process); their lines are written but not yet in the chain.
    pub unsealed_imports: Vec<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokenEntry {
    pub seq: i64,
    pub reason: String,
}

/// The SQL and arguments of `Db::audit_entries` (`with_digests`: also the inline digests,
/// and only entries that wrote lines).
fn audit_query<'a>(
    org: OrgId,
    f: &'a AuditFilter,
    before: Option<i64>,
    limit: usize,
    with_digests: bool,
) -> (String, Vec<Arg<'a>>) {
    let mut sql = format!(
        "SELECT {} FROM audit_log WHERE org_id = ?1",
        entry_cols(with_digests)
    );
    let mut a: Vec<Arg<'_>> = vec![Arg::Int(org.0)];
    if let Some(b) = before {
        a.push(Arg::Int(b));
        sql += &format!(" AND seq < ?{}", a.len());
    }
    if with_digests {
        sql += " AND lines > 0";
    }
    if let Some(x) = &f.action {
        a.push(Arg::Text(x));
        if x.ends_with('.') {
            // A family: `period.` matches `period.closed` and `period.reopened`.
            sql += &format!(
                " AND substr(action, 1, length(CAST(?{0} AS TEXT))) = CAST(?{0} AS TEXT)",
                a.len()
            );
        } else {
            sql += &format!(" AND action = ?{}", a.len());
        }
    }
    if let Some(s) = &f.subject {
        a.push(Arg::Text(s));
        sql += &format!(" AND subject = ?{}", a.len());
    }
    if let Some(k) = f.key_id {
        a.push(Arg::Int(k));
        sql += &format!(" AND key_id = ?{}", a.len());
    }
    if let Some(s) = &f.since {
        a.push(Arg::Text(s));
        sql += &format!(" AND at >= ?{}", a.len());
    }
    if let Some(u) = &f.until {
        a.push(Arg::Text(u));
        // A date alone covers its whole day (the bound compares with as much of `at`).
        sql += &format!(
            " AND substr(at, 1, length(CAST(?{0} AS TEXT))) <= CAST(?{0} AS TEXT)",
            a.len()
        );
    }
    a.push(Arg::Int(limit as i64));
    sql += &format!(" ORDER BY seq DESC LIMIT ?{}", a.len());
    (sql, a)
}

/// A key's creation or revocation, by `actor`, in `tx`.
pub(crate) fn key_change(
    tx: &Tx<'_>,
    org: OrgId,
    actor: &Actor,
    action: &'static str,
    key_id: i64,
    role: &str,
) -> Result<()> {
    append(
        tx,
        org,
        actor,
        Change::new(
            action,
            key_id.to_string(),
            serde_json::json!({"key_id": key_id, "role": role}),
        ),
    )
    .map(|_| ())
}
