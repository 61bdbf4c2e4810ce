//! The store's error: each variant says what kind of failure happened, decided where the
//! error is made (a driver error is classified by its SQLSTATE, SQLite result code or Rust
//! type, never by the text of its message), so that callers branch on the variant: the API
//! answers invalid input 400, not found 404, a conflict 409, unavailable and timeout 503,
//! and everything else a generic 500.
//!
//! Messages are safe to show: SQL text never reaches them.

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller's input is wrong: `field` names what (a JSON path, a column, a setting;
    /// empty when the input as a whole is at fault).
    #[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Invalid { field: String, message: String },
    /// The thing named does not exist (for this organization).
    #[error("{0} not found")]
    NotFound(String),
    /// The write collides with stored data or with a concurrent transaction (a unique key,
    /// a serialization failure, a deadlock). `sqlstate` is the server's code, if any.
    #[error("conflict: {message}")]
    Conflict {
        message: String,
        sqlstate: Option<String>,
    },
    /// The write would change a closed reporting period (the year named); a reopen, or a
    /// restatement, comes first.
    #[error("{message}")]
    PeriodClosed { year: u16, message: String },
    /// The database cannot be reached or went away (a restart, a broken connection, too
    /// many connections, SQLite's lock held too long): the request may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement ran past the configured statement timeout.
    #[error("database timeout: {0}")]
    Timeout(String),
    /// Stored data cannot be read back (a corrupt body, an unexpected NULL, a file that is
    /// not a database).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Reading or writing a file or stream of the caller's (an upload, a rejects file).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A fault of ours or of the database that retrying will not fix (a broken invariant,
    /// SQL the server refused, no randomness).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a write into a closed period is refused.
pub fn period_closed_message(year: u16) -> String {
    format!(
        "the {year} reporting period is closed: its disclosed figures cannot change \
         (an admin may reopen it with a reason)"
    )
}

impl StoreError {
    /// A write refused because the `year` period is closed.
    pub fn period_closed(year: u16) -> StoreError {
        StoreError::PeriodClosed {
            year,
            message: period_closed_message(year),
        }
    }

    /// Invalid input in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A broken invariant or another fault of ours.
    pub fn internal(message: impl Into<String>) -> StoreError {
        StoreError::Internal(message.into())
    }

    /// Stored data that cannot be read back.
    pub fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::Corrupt(message.into())
    }

    /// The database could not be reached or went away: answered 503, worth a retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// A statement ran past the configured statement timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, StoreError::Timeout(_))
    }

    /// A deadlock or serialization failure: the transaction can be retried as a whole.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict { sqlstate: Some(c), .. } if matches!(c.as_str(), "40P01" | "40001"))
    }

    /// A unique key refused a row (PostgreSQL's 23505, SQLite's unique constraint).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Conflict { sqlstate: Some(c), .. } if c == "23505")
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        use std::error::Error as _;
        let Some(db) = e.as_db_error() else {
            // No SQLSTATE: the server did not answer with an error. A closed connection, an
            // I/O error (connect, read, write, a connect timeout) or a protocol failure (no
            // cause) is the connection's; a cause of another type is a value that did not
            // convert to or from SQL, ours.
            let connection = e.is_closed() || e.source().is_none_or(|s| s.is::<std::io::Error>());
            return if connection {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Internal(format!("database value conversion: {e}"))
            };
        };
        let code = db.code().code();
        let message = format!("{} ({code})", db.message());
        match code {
            // Statement timeout (query_canceled).
            "57014" => StoreError::Timeout(message),
            // Class 08 connection exceptions; admin/crash shutdown, cannot connect now; too
            // many connections.
            c if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300") => {
                StoreError::Unavailable(message)
            }
            // Integrity violations, serialization failure, deadlock.
            c if c.starts_with("23") || matches!(c, "40001" | "40P01") => StoreError::Conflict {
                message,
                sqlstate: Some(code.to_owned()),
            },
            "XX001" | "XX002" => StoreError::Corrupt(message),
            _ => StoreError::Internal(format!("database error: {message}")),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode as C;
        let rusqlite::Error::SqliteFailure(f, _) = &e else {
            // Column types and conversions: ours, or data not as the schema says.
            return match e {
                rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
                other => StoreError::Internal(format!("database error: {other}")),
            };
        };
        match f.code {
            C::DatabaseBusy | C::DatabaseLocked => StoreError::Unavailable(e.to_string()),
            C::ConstraintViolation => StoreError::Conflict {
                message: e.to_string(),
                // A unique key's refusal, as PostgreSQL codes it.
                sqlstate: matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
                .then(|| "23505".to_owned()),
            },
            C::DatabaseCorrupt | C::NotADatabase => StoreError::Corrupt(e.to_string()),
            C::CannotOpen | C::SystemIoFailure | C::DiskFull => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Internal(format!("database error: {e}")),
        }
    }
}
