//! The ticket store's schema as an ordered list of steps. `PRAGMA user_version` holds the number
//! of steps applied; opening a store applies the missing ones, each in its own transaction, so an
//! older file is upgraded in place and a step that fails leaves the file at the previous version.
//!
//! Steps are only ever appended: a released step is never edited, or files written by an older
//! engine would no longer match the list.

use rusqlite::{Connection, TransactionBehavior};

/// One schema step: applied once, in its own transaction, to go from `version - 1` to `version`.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The schema version after this step (its position in [`STEPS`], from 1).
    pub version: u32,
    /// What the step does, for logs and errors.
    pub description: &'static str,
    /// The SQL run (one or more statements).
    pub sql: &'static str,
}

/// Every step, in order; `STEPS[i].version == i + 1`.
pub const STEPS: &[Step] = &[
    Step {
        version: 1,
        description: "calls and outbox tables",
        sql: "
            CREATE TABLE calls (
                id TEXT PRIMARY KEY,
                arrived_ms INTEGER NOT NULL,
                ended_ms INTEGER,
                dialled TEXT NOT NULL,
                caller TEXT NOT NULL,
                hotline TEXT,
                finished INTEGER NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX calls_arrived ON calls(arrived_ms);
            CREATE INDEX calls_caller ON calls(caller);
            CREATE TABLE outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                endpoint TEXT NOT NULL,
                record_id TEXT NOT NULL,
                created_ms INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_ms INTEGER NOT NULL,
                delivered_ms INTEGER,
                last_error TEXT
            );
            CREATE INDEX outbox_pending ON outbox(endpoint, delivered_ms, seq);
        ",
    },
    Step {
        version: 2,
        description: "indexes for number filters and unfinished calls",
        sql: "
            CREATE INDEX calls_dialled ON calls(dialled);
            CREATE INDEX calls_unfinished ON calls(arrived_ms) WHERE finished = 0;
        ",
    },
];

/// The schema version this engine writes (the number of steps).
pub const LATEST: u32 = STEPS.len() as u32;

/// Why a migration failed.
#[derive(Debug)]
pub enum MigrateError {
    /// The file was written by a newer engine (more steps than this one knows).
    TooNew {
        /// The file's `user_version`.
        found: u32,
    },
    /// A step (or reading the version) failed; the file stays at `from`.
    Step {
        /// The version the file was at.
        from: u32,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

/// The file's schema version (`PRAGMA user_version`).
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get::<_, u32>(0))
}

/// Bring the file up to [`LATEST`]; returns the version it was at before.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrateError> {
    migrate_with(conn, STEPS)
}

/// Apply the missing steps of `steps` (a prefix of [`STEPS`] in tests, to build an older file).
///
/// Each step runs in a `BEGIN IMMEDIATE` transaction that re-reads the version first, so two
/// processes opening the same new file do not apply a step twice.
pub(crate) fn migrate_with(conn: &mut Connection, steps: &[Step]) -> Result<u32, MigrateError> {
    let before = version(conn).map_err(|source| MigrateError::Step { from: 0, source })?;
    if before as usize > STEPS.len() {
        return Err(MigrateError::TooNew { found: before });
    }
    for step in steps {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| MigrateError::Step {
                from: step.version - 1,
                source,
            })?;
        let current = version(&tx).map_err(|source| MigrateError::Step {
            from: step.version - 1,
            source,
        })?;
        if current >= step.version {
            continue;
        }
        let applied = tx
            .execute_batch(step.sql)
            .and_then(|()| tx.pragma_update(None, "user_version", step.version))
            .and_then(|()| tx.commit());
        if let Err(source) = applied {
            return Err(MigrateError::Step {
                from: current,
                source,
            });
        }
        if before < step.version {
            tracing::info!(
                "call record store: schema step {} applied ({})",
                step.version,
                step.description
            );
        }
    }
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order() {
        for (i, step) in STEPS.iter().enumerate() {
            assert_eq!(step.version as usize, i + 1, "{}", step.description);
        }
    }

    #[test]
    fn new_file_gets_every_step_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(version(&conn).unwrap(), LATEST);
        assert_eq!(migrate(&mut conn).unwrap(), LATEST);
        assert_eq!(version(&conn).unwrap(), LATEST);
    }

    #[test]
    fn failing_step_leaves_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, &STEPS[..1]).unwrap();
        // Make step 2 fail half-way: its second index already exists.
        conn.execute_batch("CREATE INDEX calls_unfinished ON calls(id)")
            .unwrap();
        match migrate(&mut conn) {
            Err(MigrateError::Step { from: 1, .. }) => {}
            other => panic!("expected step 2 to fail, got {other:?}"),
        }
        assert_eq!(version(&conn).unwrap(), 1);
        // The first statement of step 2 was rolled back with the rest.
        let dialled: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'calls_dialled'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(dialled, 0);
    }

    #[test]
    fn newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrateError::TooNew { found }) if found == LATEST + 1
        ));
    }
}
