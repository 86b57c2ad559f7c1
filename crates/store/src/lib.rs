//! The region's state store: one SQLite database (bundled, WAL) in the data directory.
//!
//! Two shapes of data cover every service:
//! - **documents**: JSON values under a namespace and a key (`cfn/stack` → stack id → record),
//!   read back by key or by key prefix, in key order;
//! - **logs**: append-only JSON records under a log and a stream (`cfn/events` → stack id),
//!   read back in append order (stack events, scaling activities, alarm history).
//!
//! Architecture Invariant: only this crate knows SQL. Services keep their own record types and
//! hand them over as serde values; the data plane never reads the store.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state record {namespace}/{key} is not valid: {source}")]
    Decode { namespace: String, key: String, source: serde_json::Error },
    #[error("cannot encode a state record: {0}")]
    Encode(serde_json::Error),
    #[error("cannot create the data directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
    /// A fault injected with [`Store::inject`] (tests of what callers do when the store fails).
    #[error("state database unavailable: injected {0} fault")]
    Injected(&'static str),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &["CREATE TABLE documents (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID;
    CREATE TABLE logs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        log TEXT NOT NULL,
        stream TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX logs_by_stream ON logs (log, stream, seq);"];

/// The state store. Cheap to share behind an `Arc`; calls are short and serialized.
pub struct Store {
    conn: Mutex<Connection>,
    faults: AtomicU8,
}

/// Which calls fail while a fault is injected ([`Store::inject`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Faults {
    /// Every call works (the normal state).
    #[default]
    None,
    /// Writes (put, delete, append, batches) fail; reads work.
    Writes,
    /// Reads and writes fail.
    All,
}

/// A write transaction: several changes that land together or not at all.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` (`dir/cumulo.db`).
    pub fn open(dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Dir { path: dir.display().to_string(), source })?;
        let conn = Connection::open(dir.join("cumulo.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Store::init(conn)
    }

    /// A store that lives in memory only (tests, `--ephemeral`).
    pub fn in_memory() -> StoreResult<Store> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> StoreResult<Store> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, migration) in
            MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0))
        {
            conn.execute_batch(migration)?;
            conn.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        Ok(Store { conn: Mutex::new(conn), faults: AtomicU8::new(0) })
    }

    /// Makes later calls fail as a broken disk or a locked database would, until
    /// `inject(Faults::None)`. For tests of the callers: a failed write must never be announced
    /// as a change.
    pub fn inject(&self, faults: Faults) {
        let code = match faults {
            Faults::None => 0,
            Faults::Writes => 1,
            Faults::All => 2,
        };
        self.faults.store(code, Ordering::SeqCst);
    }

    fn check_write(&self) -> StoreResult<()> {
        match self.faults.load(Ordering::Relaxed) {
            0 => Ok(()),
            _ => Err(StoreError::Injected("write")),
        }
    }

    fn check_read(&self) -> StoreResult<()> {
        match self.faults.load(Ordering::Relaxed) {
            2 => Err(StoreError::Injected("read")),
            _ => Ok(()),
        }
    }

    /// Stores `value` under `namespace`/`key`, replacing what was there.
    pub fn put<T: Serialize + ?Sized>(
        &self,
        namespace: &str,
        key: &str,
        value: &T,
    ) -> StoreResult<()> {
        self.check_write()?;
        let json = serde_json::to_string(value).map_err(StoreError::Encode)?;
        self.conn.lock().execute(
            "INSERT INTO documents (namespace, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            params![namespace, key, json],
        )?;
        Ok(())
    }

    pub fn get<T: DeserializeOwned>(&self, namespace: &str, key: &str) -> StoreResult<Option<T>> {
        self.check_read()?;
        let json: Option<String> = self
            .conn
            .lock()
            .query_row(
                "SELECT value FROM documents WHERE namespace = ?1 AND key = ?2",
                params![namespace, key],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| decode(namespace, key, &j)).transpose()
    }

    pub fn delete(&self, namespace: &str, key: &str) -> StoreResult<bool> {
        self.check_write()?;
        let n = self.conn.lock().execute(
            "DELETE FROM documents WHERE namespace = ?1 AND key = ?2",
            params![namespace, key],
        )?;
        Ok(n > 0)
    }

    /// Every document of `namespace` whose key starts with `prefix`, in key order.
    pub fn list<T: DeserializeOwned>(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> StoreResult<Vec<(String, T)>> {
        self.check_read()?;
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT key, value FROM documents WHERE namespace = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![namespace, prefix], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, json) = row?;
            let value = decode(namespace, &key, &json)?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Appends a record to `log`/`stream`; returns its sequence number (increasing).
    pub fn append<T: Serialize + ?Sized>(
        &self,
        log: &str,
        stream: &str,
        value: &T,
    ) -> StoreResult<i64> {
        self.check_write()?;
        let json = serde_json::to_string(value).map_err(StoreError::Encode)?;
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO logs (log, stream, value) VALUES (?1, ?2, ?3)",
            params![log, stream, json],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The records of `log`/`stream` after sequence number `after`, oldest first.
    pub fn read_log<T: DeserializeOwned>(
        &self,
        log: &str,
        stream: &str,
        after: i64,
    ) -> StoreResult<Vec<(i64, T)>> {
        self.check_read()?;
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, value FROM logs WHERE log = ?1 AND stream = ?2 AND seq > ?3 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![log, stream, after], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, json) = row?;
            out.push((seq, decode(log, stream, &json)?));
        }
        Ok(out)
    }

    /// Deletes a whole stream of a log.
    pub fn drop_log(&self, log: &str, stream: &str) -> StoreResult<()> {
        self.check_write()?;
        self.conn
            .lock()
            .execute("DELETE FROM logs WHERE log = ?1 AND stream = ?2", params![log, stream])?;
        Ok(())
    }

    /// Runs `f` in one write transaction.
    pub fn batch<R>(&self, f: impl FnOnce(&mut Batch<'_>) -> StoreResult<R>) -> StoreResult<R> {
        self.check_write()?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let mut batch = Batch { tx };
        let out = f(&mut batch)?;
        batch.tx.commit()?;
        Ok(out)
    }
}

impl Batch<'_> {
    pub fn put<T: Serialize + ?Sized>(
        &mut self,
        namespace: &str,
        key: &str,
        value: &T,
    ) -> StoreResult<()> {
        let json = serde_json::to_string(value).map_err(StoreError::Encode)?;
        self.tx.execute(
            "INSERT INTO documents (namespace, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            params![namespace, key, json],
        )?;
        Ok(())
    }

    pub fn delete(&mut self, namespace: &str, key: &str) -> StoreResult<()> {
        self.tx.execute(
            "DELETE FROM documents WHERE namespace = ?1 AND key = ?2",
            params![namespace, key],
        )?;
        Ok(())
    }

    pub fn append<T: Serialize + ?Sized>(
        &mut self,
        log: &str,
        stream: &str,
        value: &T,
    ) -> StoreResult<i64> {
        let json = serde_json::to_string(value).map_err(StoreError::Encode)?;
        self.tx.execute(
            "INSERT INTO logs (log, stream, value) VALUES (?1, ?2, ?3)",
            params![log, stream, json],
        )?;
        Ok(self.tx.last_insert_rowid())
    }
}

fn decode<T: DeserializeOwned>(namespace: &str, key: &str, json: &str) -> StoreResult<T> {
    serde_json::from_str(json).map_err(|source| StoreError::Decode {
        namespace: namespace.into(),
        key: key.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_logs_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.put("cfn/stack", "a", &serde_json::json!({"name": "a"})).unwrap();
            store.put("cfn/stack", "b", &serde_json::json!({"name": "b"})).unwrap();
            store.put("cfn/resource", "a/Vpc", &1).unwrap();
            store.append("cfn/events", "a", &"created").unwrap();
            store
                .batch(|b| {
                    b.put("cfn/resource", "a/Subnet", &2)?;
                    b.append("cfn/events", "a", &"subnet")?;
                    Ok(())
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let stacks: Vec<(String, serde_json::Value)> = store.list("cfn/stack", "").unwrap();
        assert_eq!(stacks.len(), 2);
        let resources: Vec<(String, i32)> = store.list("cfn/resource", "a/").unwrap();
        assert_eq!(resources, vec![("a/Subnet".to_string(), 2), ("a/Vpc".to_string(), 1)]);
        let events: Vec<(i64, String)> = store.read_log("cfn/events", "a", 0).unwrap();
        assert_eq!(
            events.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
            ["created", "subnet"]
        );
        assert!(store.delete("cfn/stack", "a").unwrap());
        assert_eq!(store.get::<serde_json::Value>("cfn/stack", "a").unwrap(), None);
    }

    #[test]
    fn prefix_listing_is_literal() {
        let store = Store::in_memory().unwrap();
        store.put("n", "a%b/1", &1).unwrap();
        store.put("n", "axb/2", &2).unwrap();
        let found: Vec<(String, i32)> = store.list("n", "a%b/").unwrap();
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn injected_faults_fail_calls_until_cleared() {
        let store = Store::in_memory().unwrap();
        store.put("n", "k", &1).unwrap();
        store.inject(Faults::Writes);
        assert!(matches!(store.put("n", "k", &2), Err(StoreError::Injected("write"))));
        assert!(store.append("l", "s", &1).is_err());
        assert!(store.batch(|b| b.put("n", "k", &3)).is_err());
        assert_eq!(store.get::<i32>("n", "k").unwrap(), Some(1), "reads still work");
        store.inject(Faults::All);
        assert!(matches!(store.get::<i32>("n", "k"), Err(StoreError::Injected("read"))));
        store.inject(Faults::None);
        assert_eq!(store.get::<i32>("n", "k").unwrap(), Some(1), "nothing was written meanwhile");
    }

    #[test]
    fn failed_batch_changes_nothing() {
        let store = Store::in_memory().unwrap();
        let result: StoreResult<()> = store.batch(|b| {
            b.put("n", "k", &1)?;
            Err(StoreError::Encode(serde_json::from_str::<i32>("x").unwrap_err()))
        });
        assert!(result.is_err());
        assert_eq!(store.get::<i32>("n", "k").unwrap(), None);
    }
}
