//! The metric store: every metric's points as CloudWatch keeps them.
//!
//! Recent points live in memory (1-minute cells for [`MEMORY_WINDOW`], 1-second cells of
//! high-resolution metrics for three hours). Closed hours go to the state store as compact
//! chunks (one per metric and hour, a few bytes per point), so a restart keeps them and memory
//! stays bounded however long a region runs. A compaction pass rolls chunks up as AWS does:
//! 1-minute points older than 15 days become 5-minute points (one chunk per day), those older
//! than 63 days hourly points, and those older than 455 days go.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use store::{Chunk, Store};

use crate::metric::{Cell, MetricId};

const METRICS: &str = "cloudwatch/metric";
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
/// How long 1-minute points stay in memory (a day's window plus some).
pub const MEMORY_WINDOW: i64 = 26 * HOUR;
/// How long 1-second points are kept.
pub const HIGH_RES_RETENTION: i64 = 3 * HOUR;
/// AWS's retention by resolution: (resolution, kept for).
pub const RETENTION: [(i64, i64); 3] = [(60, 15 * DAY), (300, 63 * DAY), (3_600, 455 * DAY)];

/// A metric as ListMetrics knows it (a document per metric, so a restart lists it again).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MetricMeta {
    id: MetricId,
    unit: Option<String>,
    /// The newest point's time (epoch seconds).
    last: i64,
}

struct Series {
    meta: MetricMeta,
    key: String,
    minutes: BTreeMap<i64, Cell>,
    seconds: BTreeMap<i64, Cell>,
    /// Hours whose chunk must be (re)written.
    dirty: BTreeSet<i64>,
    /// Whether the chunks of the memory window were read back (after a restart).
    loaded: bool,
    /// Whether the metric's document must be (re)written.
    meta_dirty: bool,
    /// The newest point's time and the unit the stored document has.
    saved: (i64, Option<String>),
    /// Counts the points recorded, so that a flush clears only what it wrote.
    version: u64,
}

/// Every metric of a region.
pub struct Metrics {
    store: Arc<Store>,
    series: RwLock<HashMap<MetricId, Arc<Mutex<Series>>>>,
}

impl Metrics {
    /// The metrics a previous run left (their points are read back when first used).
    pub fn open(store: Arc<Store>) -> Result<Metrics, store::StoreError> {
        let mut series = HashMap::new();
        for (_, meta) in store.list::<MetricMeta>(METRICS, "")? {
            let key = meta.id.key();
            let saved = (meta.last, meta.unit.clone());
            series.insert(
                meta.id.clone(),
                Arc::new(Mutex::new(Series {
                    meta,
                    key,
                    minutes: BTreeMap::new(),
                    seconds: BTreeMap::new(),
                    dirty: BTreeSet::new(),
                    loaded: false,
                    meta_dirty: false,
                    saved,
                    version: 0,
                })),
            );
        }
        Ok(Metrics { store, series: RwLock::new(series) })
    }

    fn series(&self, id: &MetricId) -> Option<Arc<Mutex<Series>>> {
        self.series.read().get(id).cloned()
    }

    fn series_or_new(&self, id: &MetricId) -> Arc<Mutex<Series>> {
        if let Some(s) = self.series(id) {
            return s;
        }
        self.series
            .write()
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Series {
                    meta: MetricMeta { id: id.clone(), unit: None, last: i64::MIN },
                    key: id.key(),
                    minutes: BTreeMap::new(),
                    seconds: BTreeMap::new(),
                    dirty: BTreeSet::new(),
                    loaded: true,
                    meta_dirty: true,
                    saved: (i64::MIN, None),
                    version: 0,
                }))
            })
            .clone()
    }

    /// Records one point (or a statistic set) at `timestamp` (epoch seconds). `now` decides
    /// what is still in memory; a point older than that is merged into its stored chunk.
    pub fn record(
        &self,
        id: &MetricId,
        timestamp: i64,
        cell: &Cell,
        unit: Option<&str>,
        high_resolution: bool,
        now: i64,
    ) -> Result<(), store::StoreError> {
        let series = self.series_or_new(id);
        let mut s = series.lock();
        self.ensure_loaded(&mut s, now)?;
        s.version += 1;
        let minute = timestamp - timestamp.rem_euclid(60);
        if minute < now - MEMORY_WINDOW {
            // Late data (AWS takes points two weeks back): into its chunk directly.
            let hour = minute - minute.rem_euclid(HOUR);
            let mut cells = self.read_hour(&s.key, hour)?;
            cells.entry(minute).and_modify(|c| c.merge(cell)).or_insert_with(|| cell.clone());
            self.store.put_chunk(&s.key, hour, 60, &encode(hour, 60, &cells))?;
        } else {
            s.minutes.entry(minute).and_modify(|c| c.merge(cell)).or_insert_with(|| cell.clone());
            s.dirty.insert(minute - minute.rem_euclid(HOUR));
        }
        if high_resolution && timestamp >= now - HIGH_RES_RETENTION {
            s.seconds
                .entry(timestamp)
                .and_modify(|c| c.merge(cell))
                .or_insert_with(|| cell.clone());
        }
        if let Some(u) = unit
            && s.meta.unit.as_deref() != Some(u)
        {
            s.meta.unit = Some(u.to_string());
            s.meta_dirty = true;
        }
        if timestamp > s.meta.last {
            // The document is rewritten at flush time, not per point.
            s.meta.last = timestamp;
            s.meta_dirty = true;
        }
        Ok(())
    }

    fn ensure_loaded(&self, s: &mut Series, now: i64) -> Result<(), store::StoreError> {
        if s.loaded {
            return Ok(());
        }
        let from = now - MEMORY_WINDOW;
        let from = from - from.rem_euclid(HOUR);
        for chunk in self.store.chunks(&s.key, from, i64::MAX)? {
            if chunk.resolution == 60 {
                for (t, c) in decode(chunk.slot, &chunk.bytes) {
                    s.minutes.entry(t).and_modify(|m| m.merge(&c)).or_insert(c);
                }
            }
        }
        s.loaded = true;
        Ok(())
    }

    fn read_hour(&self, key: &str, hour: i64) -> Result<BTreeMap<i64, Cell>, store::StoreError> {
        let mut cells = BTreeMap::new();
        for chunk in self.store.chunks(key, hour, hour + 1)? {
            cells.extend(decode(chunk.slot, &chunk.bytes));
        }
        Ok(cells)
    }

    /// The cells of `id` in `start..end` at a resolution no coarser than `period` (1-second
    /// cells for periods under a minute), oldest first.
    pub fn cells(
        &self,
        id: &MetricId,
        start: i64,
        end: i64,
        period: i64,
        now: i64,
    ) -> Result<Vec<(i64, Cell)>, store::StoreError> {
        let Some(series) = self.series(id) else { return Ok(Vec::new()) };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut s = series.lock();
        self.ensure_loaded(&mut s, now)?;
        if period < 60 {
            return Ok(s.seconds.range(start..end).map(|(t, c)| (*t, c.clone())).collect());
        }
        let memory_from = now - MEMORY_WINDOW;
        let memory_from = memory_from - memory_from.rem_euclid(60);
        let mut out = Vec::new();
        if start < memory_from {
            // Older points: from the chunks (day chunks start up to a day earlier).
            for chunk in self.store.chunks(&s.key, start - DAY, end.min(memory_from))? {
                if chunk.resolution > period {
                    continue;
                }
                out.extend(
                    decode(chunk.slot, &chunk.bytes)
                        .into_iter()
                        .filter(|(t, _)| (start..end.min(memory_from)).contains(t)),
                );
            }
        }
        if start.max(memory_from) < end {
            out.extend(s.minutes.range(start.max(memory_from)..end).map(|(t, c)| (*t, c.clone())));
        }
        Ok(out)
    }

    /// The unit a metric was last published with (`None`: no such metric; `Some(None)`: no
    /// unit given).
    pub fn unit(&self, id: &MetricId) -> Option<Option<String>> {
        self.series(id).map(|s| s.lock().meta.unit.clone())
    }

    /// Every metric with a point since `since`, with its unit.
    pub fn list(&self, since: i64) -> Vec<(MetricId, Option<String>)> {
        let mut out: Vec<(MetricId, Option<String>)> = self
            .series
            .read()
            .values()
            .filter_map(|s| {
                let s = s.lock();
                (s.meta.last >= since).then(|| (s.meta.id.clone(), s.meta.unit.clone()))
            })
            .collect();
        out.sort();
        out
    }

    /// Writes what changed to the store (in one transaction) and lets go of what memory no
    /// longer keeps.
    pub fn flush(&self, now: i64) -> Result<(), store::StoreError> {
        let all: Vec<Arc<Mutex<Series>>> = self.series.read().values().cloned().collect();
        let mut chunks = Vec::new();
        let mut metas = Vec::new();
        let mut versions = Vec::with_capacity(all.len());
        for series in &all {
            let s = series.lock();
            versions.push(s.version);
            for &hour in &s.dirty {
                let cells: BTreeMap<i64, Cell> =
                    s.minutes.range(hour..hour + HOUR).map(|(t, c)| (*t, c.clone())).collect();
                chunks.push(Chunk {
                    series: s.key.clone(),
                    slot: hour,
                    resolution: 60,
                    bytes: encode(hour, 60, &cells),
                });
            }
            // ListMetrics after a restart needs the newest point to the hour, not the minute.
            let (last, unit) = &s.saved;
            if s.meta_dirty && (s.meta.last.saturating_sub(*last) >= HOUR || *unit != s.meta.unit) {
                metas.push((s.key.clone(), s.meta.clone()));
            }
        }
        self.store.replace_chunks(&[], &chunks)?;
        self.store.batch(|b| {
            for (key, meta) in &metas {
                b.put(METRICS, key, meta)?;
            }
            Ok(())
        })?;
        let keep = now - MEMORY_WINDOW;
        let keep = keep - keep.rem_euclid(60);
        for (series, version) in all.into_iter().zip(versions) {
            let mut s = series.lock();
            // A point recorded meanwhile keeps its hour dirty for the next flush.
            if s.version == version {
                s.dirty.clear();
            }
            if let Some((_, meta)) = metas.iter().find(|(k, _)| *k == s.key) {
                s.saved = (meta.last, meta.unit.clone());
                s.meta_dirty = s.meta.last != meta.last || s.meta.unit != meta.unit;
            }
            s.minutes = s.minutes.split_off(&keep);
            s.seconds = s.seconds.split_off(&(now - HIGH_RES_RETENTION));
        }
        Ok(())
    }

    /// Rolls old chunks up and drops expired ones (at most `budget` chunks per call, so a pass
    /// is short; call it again while it returns `true`).
    pub fn compact(&self, now: i64, budget: usize) -> Result<bool, store::StoreError> {
        let mut more = false;
        for (i, &(resolution, kept)) in RETENTION.iter().enumerate() {
            let cutoff = now - kept;
            let cutoff = cutoff - cutoff.rem_euclid(DAY);
            let old = self.store.chunks_older(cutoff, resolution + 1, budget)?;
            more |= old.len() == budget;
            let days: BTreeSet<(String, i64)> =
                old.iter().map(|c| (c.series.clone(), c.slot - c.slot.rem_euclid(DAY))).collect();
            for (series, day) in days {
                let chunks: Vec<Chunk> = self
                    .store
                    .chunks(&series, day, day + DAY)?
                    .into_iter()
                    .filter(|c| c.resolution == resolution)
                    .collect();
                let delete: Vec<(String, i64)> =
                    chunks.iter().map(|c| (series.clone(), c.slot)).collect();
                let put = match RETENTION.get(i + 1) {
                    None => Vec::new(),
                    Some(&(coarser, _)) => {
                        let mut rolled: BTreeMap<i64, Cell> = BTreeMap::new();
                        for c in &chunks {
                            for (t, cell) in decode(c.slot, &c.bytes) {
                                rolled
                                    .entry(t - t.rem_euclid(coarser))
                                    .and_modify(|r| r.merge(&cell))
                                    .or_insert(cell);
                            }
                        }
                        vec![Chunk {
                            series: series.clone(),
                            slot: day,
                            resolution: coarser,
                            bytes: encode(day, coarser, &rolled),
                        }]
                    }
                };
                self.store.replace_chunks(&delete, &put)?;
            }
        }
        // Metrics with nothing kept any more are forgotten.
        let expired = now - RETENTION[2].1;
        let gone: Vec<(MetricId, String)> = self
            .series
            .read()
            .iter()
            .filter_map(|(id, s)| {
                let s = s.lock();
                (s.meta.last < expired && s.meta.last != i64::MIN)
                    .then(|| (id.clone(), s.key.clone()))
            })
            .collect();
        for (id, key) in gone {
            self.store.delete(METRICS, &key)?;
            self.series.write().remove(&id);
        }
        Ok(more)
    }

    /// How many metrics there are.
    pub fn len(&self) -> usize {
        self.series.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// Chunk format: a version byte (2) and the resolution of the cells (u32 LE, seconds), then per
// cell its slot within the chunk (u16 LE, in resolutions from the chunk's start) and a kind
// byte: 0 a single value (f64), 3 a single value equal to the cell before's (nothing more: a
// status check that stays 0 costs three bytes a minute), 1 a statistic set (count, sum, min,
// max), 2 a statistic set with its values (u16 n, then n × (value f64, count f64)).

fn encode(slot: i64, resolution: i64, cells: &BTreeMap<i64, Cell>) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + cells.len() * 11);
    out.push(2u8);
    out.extend_from_slice(&u32::try_from(resolution).unwrap_or(60).to_le_bytes());
    let mut previous: Option<f64> = None;
    for (t, c) in cells {
        let index = u16::try_from((t - slot) / resolution.max(1)).unwrap_or(u16::MAX);
        out.extend_from_slice(&index.to_le_bytes());
        if c.count == 1.0 && c.values.len() == 1 {
            if previous == Some(c.sum) {
                out.push(3);
            } else {
                out.push(0);
                out.extend_from_slice(&c.sum.to_le_bytes());
                previous = Some(c.sum);
            }
            continue;
        }
        previous = None;
        let with_values = c.has_values();
        out.push(if with_values { 2 } else { 1 });
        for v in [c.count, c.sum, c.min, c.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if with_values {
            let n = c.values.len().min(usize::from(u16::MAX));
            out.extend_from_slice(&(n as u16).to_le_bytes());
            for (v, k) in &c.values[..n] {
                out.extend_from_slice(&v.to_le_bytes());
                out.extend_from_slice(&k.to_le_bytes());
            }
        }
    }
    out
}

/// Reads a chunk back; a damaged tail is dropped, never a panic.
fn decode(slot: i64, bytes: &[u8]) -> Vec<(i64, Cell)> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
            let (head, rest) = self.0.split_first_chunk::<N>()?;
            self.0 = rest;
            Some(*head)
        }
        fn f64(&mut self) -> Option<f64> {
            self.take::<8>().map(f64::from_le_bytes)
        }
    }
    let mut out = Vec::new();
    let Some((&2, body)) = bytes.split_first() else { return out };
    let mut r = Reader(body);
    let Some(resolution) = r.take::<4>().map(|b| i64::from(u32::from_le_bytes(b))) else {
        return out;
    };
    let mut previous: Option<f64> = None;
    let mut cell = |r: &mut Reader<'_>| -> Option<(i64, Cell)> {
        let index = i64::from(u16::from_le_bytes(r.take::<2>()?));
        let kind = r.take::<1>()?[0];
        let cell = match kind {
            0 => {
                let v = r.f64()?;
                previous = Some(v);
                Cell::single(v)
            }
            3 => Cell::single(previous?),
            1 | 2 => {
                previous = None;
                let mut c = Cell::statistic_set(r.f64()?, r.f64()?, r.f64()?, r.f64()?);
                if kind == 2 {
                    let n = u16::from_le_bytes(r.take::<2>()?);
                    for _ in 0..n {
                        let v = r.f64()?;
                        let k = r.f64()?;
                        c.values.push((v, k));
                    }
                }
                c
            }
            _ => return None,
        };
        Some((slot + index * resolution, cell))
    };
    while !r.0.is_empty() {
        match cell(&mut r) {
            Some(c) => out.push(c),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> MetricId {
        MetricId::new("App", name, [("Host", "a")])
    }

    #[test]
    fn chunks_read_back_what_was_written() {
        let mut cells = BTreeMap::new();
        cells.insert(3_600, Cell::single(1.5));
        cells.insert(3_660, Cell::statistic_set(3.0, 6.0, 1.0, 3.0));
        let mut with_values = Cell::single(1.0);
        with_values.add_value(2.0, 3.0);
        cells.insert(3_720, with_values);
        cells.insert(3_780, Cell::single(1.5));
        cells.insert(3_840, Cell::single(1.5));
        let bytes = encode(3_600, 60, &cells);
        assert_eq!(decode(3_600, &bytes), cells.into_iter().collect::<Vec<_>>());
        // Damage never panics.
        for n in 0..bytes.len() {
            let _ = decode(0, &bytes[..n]);
        }
    }

    #[test]
    fn points_survive_a_restart_and_memory_stays_bounded() {
        let store = Arc::new(Store::in_memory().unwrap());
        let m = Metrics::open(store.clone()).unwrap();
        let now = 100 * DAY;
        for i in 0..(30 * 60) {
            let t = now - 30 * HOUR + i * 60;
            m.record(&id("Latency"), t, &Cell::single(i as f64), Some("Seconds"), false, now)
                .unwrap();
        }
        m.flush(now).unwrap();
        let kept = m.series(&id("Latency")).unwrap().lock().minutes.len() as i64;
        assert_eq!(kept, MEMORY_WINDOW / 60);
        // A new process on the same store: the points of the last 30 hours are all there.
        let again = Metrics::open(store).unwrap();
        let cells = again.cells(&id("Latency"), now - 30 * HOUR, now, 60, now).unwrap();
        assert_eq!(cells.len(), 30 * 60);
        assert_eq!(again.list(now - DAY), vec![(id("Latency"), Some("Seconds".into()))]);
    }

    #[test]
    fn old_points_roll_up_then_expire() {
        let store = Arc::new(Store::in_memory().unwrap());
        let m = Metrics::open(store.clone()).unwrap();
        let start = 10 * DAY;
        for i in 0..(24 * 60) {
            let t = start + i * 60;
            m.record(&id("Count"), t, &Cell::single(1.0), None, false, t).unwrap();
            if i % 60 == 59 {
                m.flush(t).unwrap();
            }
        }
        m.flush(start + DAY).unwrap();
        assert_eq!(store.chunk_usage().unwrap().0, 24);
        // 16 days later: one chunk of 5-minute points for the day.
        let now = start + 16 * DAY + HOUR;
        while m.compact(now, 10).unwrap() {}
        let (n, bytes) = store.chunk_usage().unwrap();
        assert_eq!(n, 1);
        let cells = m.cells(&id("Count"), start, start + DAY, 300, now).unwrap();
        assert_eq!(cells.len(), 288);
        assert_eq!(cells[0].1.count, 5.0);
        // A 1-minute period cannot be answered from 5-minute points.
        assert!(m.cells(&id("Count"), start, start + DAY, 60, now).unwrap().is_empty());
        // 64 days: hourly; 456 days: gone, metric and all.
        m.compact(start + 64 * DAY, 10).unwrap();
        assert_eq!(
            m.cells(&id("Count"), start, start + DAY, 3_600, start + 64 * DAY).unwrap().len(),
            24
        );
        assert!(bytes > store.chunk_usage().unwrap().1);
        m.compact(start + 457 * DAY, 10).unwrap();
        assert_eq!(store.chunk_usage().unwrap(), (0, 0));
        assert!(m.is_empty());
    }
}
