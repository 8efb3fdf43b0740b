//! The embedded ticket store: one SQLite file (`<paths.data>/records.sqlite`) holding every call
//! record (a row per call, replaced as the call progresses) and the export outbox.
//!
//! Tables (schema in [`super::migrations`]):
//! - `calls`: one row per call; `record` is the [`CallRecord`] JSON (the contract), the other
//!   columns are copies for filtering; `finished` is 0 for progress rows (the call runs, or ran
//!   when the engine stopped) and 1 once the record has its `end`.
//! - `outbox`: one row per finished record and export endpoint, added in the same transaction
//!   as the finished row; the exporter (`export.rs`) marks rows delivered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::migrations::{self, MigrateError};
use super::record::{CallRecord, Timestamp};

/// The store's file name inside the data directory.
pub const FILE_NAME: &str = "records.sqlite";

/// How long a statement waits for another connection's write lock before failing with
/// SQLITE_BUSY (the writer then retries with backoff and logs each failure).
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a read-only connection (`hotline records`) waits for a lock.
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The store file for the data directory `data` (`paths.data` in the configuration).
pub fn path_in(data: &Path) -> PathBuf {
    data.join(FILE_NAME)
}

/// What went wrong with the store; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the file could not be created.
    #[error("cannot create the directory {} for the call record store: {source}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `open_read_only` found no file.
    #[error("no call record store at {}: the file does not exist (no engine has written records with this data directory)", .path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be opened or set up (not a database, permissions...).
    #[error("cannot open the call record store {}: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file has no store schema (read-only opens cannot create it).
    #[error("{} is not a call record store (it has no schema)", .path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer engine.
    #[error("the call record store {} has schema version {found}, newer than this engine's {known}; use a newer hotline", .path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// The file's schema version.
        found: u32,
        /// The newest version this engine knows.
        known: u32,
    },
    /// Upgrading the schema failed; the file stays at version `from`.
    #[error("cannot upgrade the call record store {} from schema version {from}: {source}", .path.display())]
    Migrate {
        /// The file.
        path: PathBuf,
        /// The version the file stays at.
        from: u32,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A read or write failed (disk full, SQLITE_BUSY, I/O error...).
    #[error("call record store {}: {source}", .path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored record is not a valid record JSON.
    #[error("call record store {}: record {id} cannot be read: {source}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The row's id.
        id: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the call record writer for {}: {source}", .path.display())]
    Thread {
        /// The store file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record could not be turned into JSON.
    #[error("call record store {}: record {id} cannot be encoded: {source}", .path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The record's id.
        id: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// A connection to the store file.
pub struct Store {
    /// The SQLite connection.
    pub(crate) conn: Connection,
    /// The file, for error messages.
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn millis(at: Timestamp) -> i64 {
    at.timestamp_millis()
}

/// Insert a row, or update it unless that would turn a finished row back into a progress row.
const UPSERT: &str = "
    INSERT INTO calls (id, arrived_ms, ended_ms, dialled, caller, hotline, finished, record)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT(id) DO UPDATE SET
        arrived_ms = excluded.arrived_ms,
        ended_ms = excluded.ended_ms,
        dialled = excluded.dialled,
        caller = excluded.caller,
        hotline = excluded.hotline,
        finished = excluded.finished,
        record = excluded.record
    WHERE calls.finished = 0 OR excluded.finished = 1";

/// One outbox row for a finished record.
const OUTBOX: &str = "
    INSERT INTO outbox (endpoint, record_id, created_ms, attempts, next_attempt_ms)
    VALUES (?1, ?2, ?3, 0, ?3)";

impl Store {
    /// Open (creating it and its directory when missing) the store file at `path` for reading
    /// and writing, and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // WAL: readers (`hotline records`, the exporter) never block the writer and a commit is
        // one append to the -wal file.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                "call record store {}: the file system refused WAL mode (journal mode is {mode})",
                path.display()
            );
        }
        // synchronous=NORMAL in WAL mode: a commit has been written to the -wal file (the OS
        // holds it) when COMMIT returns, so it survives the engine's process crashing or being
        // killed; only an OS crash or power loss can roll back the last commits, and even then
        // the file stays consistent. FULL would add an fsync per commit for that case only.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing store file read-only (for `hotline records`); never changes the file.
    /// An older schema is read as it is (queries only use the columns of schema step 1).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound {
                path: path.to_owned(),
            });
        }
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(READ_BUSY_TIMEOUT).map_err(open_error)?;
        let found = migrations::version(&conn).map_err(open_error)?;
        if found == 0 {
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
            });
        }
        if found > migrations::LATEST {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                known: migrations::LATEST,
            });
        }
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// Frees this connection's page cache (SQLite keeps up to 2 MB of it after a busy hour);
    /// later queries read their pages from the file again.
    pub fn release_memory(&self) {
        if let Err(error) = self.conn.execute_batch("PRAGMA shrink_memory") {
            tracing::debug!(
                "call record store {}: shrink_memory: {error}",
                self.path.display()
            );
        }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::version(&self.conn).map_err(|source| self.sqlite(source))
    }

    /// Apply missing schema steps.
    fn migrate(&mut self) -> Result<(), StoreError> {
        match migrations::migrate(&mut self.conn) {
            Ok(_) => Ok(()),
            Err(MigrateError::TooNew { found }) => Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known: migrations::LATEST,
            }),
            Err(MigrateError::Step { from, source }) => Err(StoreError::Migrate {
                path: self.path.clone(),
                from,
                source,
            }),
        }
    }

    /// Inserts or replaces the row of `record` (progress rows have record.end == None). When the
    /// record is finished, in the SAME transaction adds one outbox row per endpoint name.
    ///
    /// A progress row never replaces a finished row of the same id (it is ignored: the call has
    /// ended). A finished record stored again (e.g. corrected) replaces the row and is queued
    /// for export again; exporters use the record id as the idempotency key.
    pub fn put(&mut self, record: &CallRecord, endpoints: &[String]) -> Result<(), StoreError> {
        self.put_all([record], endpoints)
    }

    /// [`Store::put`] for several records in one transaction: all of them are stored or none.
    pub fn put_all<'a, I>(&mut self, records: I, endpoints: &[String]) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = &'a CallRecord>,
    {
        let path = &self.path;
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let now_ms = millis(Utc::now());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        {
            let mut upsert = tx.prepare_cached(UPSERT).map_err(sqlite)?;
            let mut outbox = tx.prepare_cached(OUTBOX).map_err(sqlite)?;
            for record in records {
                let json = serde_json::to_string(record).map_err(|source| StoreError::Encode {
                    path: path.clone(),
                    id: record.id.clone(),
                    source,
                })?;
                let finished = record.is_finished();
                let changed = upsert
                    .execute(params![
                        record.id,
                        millis(record.times.arrived),
                        record.times.ended.map(millis),
                        record.dialled,
                        record.caller.number,
                        record.hotline,
                        finished,
                        json,
                    ])
                    .map_err(sqlite)?;
                if finished && changed > 0 {
                    for endpoint in endpoints {
                        outbox
                            .execute(params![endpoint, record.id, now_ms])
                            .map_err(sqlite)?;
                    }
                }
            }
        }
        tx.commit().map_err(sqlite)
    }

    /// The record with this id, if stored.
    pub fn get(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT record FROM calls WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|source| self.sqlite(source))?;
        json.map(|json| self.decode(id, &json)).transpose()
    }

    /// Rows left unfinished by a previous run (the engine stopped or crashed while they ran):
    /// returns them; does not change them (they stay visible as unfinished).
    ///
    /// Oldest first. Called at start-up, before new calls are accepted, every unfinished row is
    /// from a previous run.
    pub fn unfinished(&self) -> Result<Vec<CallRecord>, StoreError> {
        self.select(
            "SELECT id, record FROM calls WHERE finished = 0 ORDER BY arrived_ms, id",
            [],
        )
    }

    /// Run `sql` (selecting `id, record`) and decode every row.
    pub(crate) fn select<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(sql)
            .map_err(|source| self.sqlite(source))?;
        let rows = statement
            .query_map(params, |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(|source| self.sqlite(source))?;
        let mut records = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|source| self.sqlite(source))?;
            records.push(self.decode(&id, &json)?);
        }
        Ok(records)
    }

    /// Parse a stored record.
    pub(crate) fn decode(&self, id: &str, json: &str) -> Result<CallRecord, StoreError> {
        serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            id: id.to_owned(),
            source,
        })
    }

    /// Wrap a SQLite error with the file name.
    pub(crate) fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
