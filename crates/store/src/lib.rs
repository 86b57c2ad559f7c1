//! The region's state store: one SQLite database (bundled, WAL) in the data directory.
//!
//! Two shapes of data cover every service:
//! - **documents**: JSON values under a namespace and a key (`cfn/stack` → stack id → record),
//!   read back by key or by key prefix, in key order;
//! - **logs**: append-only JSON records under a log and a stream (`cfn/events` → stack id),
//!   read back in append order (stack events, scaling activities, alarm history);
//! - **chunks**: compact binary blocks of a time series (CloudWatch's metric points) under a
//!   series and a slot (the block's start), with the resolution of the points inside, read back
//!   by time range and found by age for roll-ups and retention.
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
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE documents (
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
    CREATE INDEX logs_by_stream ON logs (log, stream, seq);",
    "CREATE TABLE chunks (
        series TEXT NOT NULL,
        slot INTEGER NOT NULL,
        resolution INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (series, slot)
    ) WITHOUT ROWID;
    CREATE INDEX chunks_by_age ON chunks (slot, resolution);",
];

/// A stored chunk of a time series: its slot (start), the resolution of its points, its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub series: String,
    pub slot: i64,
    pub resolution: i64,
    pub bytes: Vec<u8>,
}

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

    /// Deletes the records of `log`/`stream` whose numeric member `member` (a top-level key
    /// of the record) is below `below`: a retention pass over records that carry their own
    /// age. Returns how many went.
    pub fn trim_log(
        &self,
        log: &str,
        stream: &str,
        member: &str,
        below: i64,
    ) -> StoreResult<usize> {
        self.check_write()?;
        let path = format!("$.{member}");
        let n = self.conn.lock().execute(
            "DELETE FROM logs WHERE log = ?1 AND stream = ?2 AND json_extract(value, ?3) < ?4",
            params![log, stream, path, below],
        )?;
        Ok(n)
    }

    /// Stores a chunk of `series` at `slot`, replacing what was there.
    pub fn put_chunk(
        &self,
        series: &str,
        slot: i64,
        resolution: i64,
        bytes: &[u8],
    ) -> StoreResult<()> {
        self.check_write()?;
        self.conn.lock().execute(
            "INSERT INTO chunks (series, slot, resolution, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (series, slot) DO UPDATE SET resolution = excluded.resolution, value = excluded.value",
            params![series, slot, resolution, bytes],
        )?;
        Ok(())
    }

    /// The chunks of `series` whose slot is in `from..to`, in slot order.
    pub fn chunks(&self, series: &str, from: i64, to: i64) -> StoreResult<Vec<Chunk>> {
        self.check_read()?;
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT slot, resolution, value FROM chunks WHERE series = ?1 AND slot >= ?2 AND slot < ?3 ORDER BY slot",
        )?;
        let rows = stmt.query_map(params![series, from, to], |r| {
            Ok(Chunk {
                series: series.to_string(),
                slot: r.get(0)?,
                resolution: r.get(1)?,
                bytes: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` chunks (of any series) older than `before` whose resolution is below
    /// `resolution_below`: what a roll-up or a retention pass works on.
    pub fn chunks_older(
        &self,
        before: i64,
        resolution_below: i64,
        limit: usize,
    ) -> StoreResult<Vec<Chunk>> {
        self.check_read()?;
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT series, slot, resolution, value FROM chunks WHERE slot < ?1 AND resolution < ?2 ORDER BY slot LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![before, resolution_below, limit as i64], |r| {
            Ok(Chunk {
                series: r.get(0)?,
                slot: r.get(1)?,
                resolution: r.get(2)?,
                bytes: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes one chunk.
    pub fn delete_chunk(&self, series: &str, slot: i64) -> StoreResult<()> {
        self.check_write()?;
        self.conn
            .lock()
            .execute("DELETE FROM chunks WHERE series = ?1 AND slot = ?2", params![series, slot])?;
        Ok(())
    }

    /// Replaces chunks in one transaction: `delete` goes, `put` lands (a roll-up).
    pub fn replace_chunks(&self, delete: &[(String, i64)], put: &[Chunk]) -> StoreResult<()> {
        self.check_write()?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        for (series, slot) in delete {
            tx.execute(
                "DELETE FROM chunks WHERE series = ?1 AND slot = ?2",
                params![series, slot],
            )?;
        }
        for c in put {
            tx.execute(
                "INSERT INTO chunks (series, slot, resolution, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (series, slot) DO UPDATE SET resolution = excluded.resolution, value = excluded.value",
                params![c.series, c.slot, c.resolution, c.bytes],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The chunks' count and total bytes (what a long run keeps).
    pub fn chunk_usage(&self) -> StoreResult<(u64, u64)> {
        self.check_read()?;
        let (n, bytes): (i64, i64) = self.conn.lock().query_row(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM chunks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n as u64, bytes as u64))
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
