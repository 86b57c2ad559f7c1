//! Log ingestion and search at fleet scale, on an on-disk store: STREAMS streams (instances)
//! each sending PutLogEvents batches of BATCH lines (as the CloudWatch agent does every few
//! seconds) until LINES lines are stored, with an "ERROR" metric filter on the group (1 % of
//! lines match); then FilterLogEvents for "ERROR" over all of it, paged to the end, and one
//! GetLogEvents of the last page of a stream.
//!
//!     cargo bench -p logs --bench ingest [-- LINES STREAMS BATCH]
//!
//! Prints lines per second into the store, the database's bytes per line, and the search
//! times.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logs::{CreateGroup, FilterInput, GetInput, InputEvent, Logs, Transformation};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let lines: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let streams: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let batch: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(run(lines, streams, batch, dir.path()));
}

async fn run(lines: usize, streams: usize, batch: usize, dir: &std::path::Path) {
    let start = jiff::Timestamp::from_second(1_800_000_000).expect("a time");
    let store = Arc::new(store::Store::open(dir).expect("a store"));
    let clock = clock::Clock::starting_at(1.0, start);
    let logs = Logs::new(store, clock, aws_ids::Account::default());
    logs.create_group(CreateGroup { name: "/fleet/app".into(), ..CreateGroup::default() })
        .expect("group");
    logs.put_metric_filter(
        "/fleet/app",
        "errors",
        "ERROR",
        vec![Transformation {
            metric_name: "Errors".into(),
            namespace: "App".into(),
            value: "1".into(),
            ..Transformation::default()
        }],
    )
    .expect("metric filter");
    let names: Vec<String> = (0..streams).map(|i| format!("i-{i:017x}")).collect();
    for n in &names {
        logs.create_stream("/fleet/app", n).expect("stream");
    }
    let t0 = start.as_millisecond();
    let rounds = lines.div_ceil(streams * batch);
    let began = Instant::now();
    let mut sent = 0usize;
    for round in 0..rounds {
        for (s, name) in names.iter().enumerate() {
            let events: Vec<InputEvent> = (0..batch)
                .map(|k| {
                    let n = (round * batch + k) * streams + s;
                    let level = if n.is_multiple_of(100) { "ERROR" } else { "INFO" };
                    InputEvent {
                        timestamp: t0 + (round * batch + k) as i64 * 10,
                        message: format!(
                            "2027-01-15T08:00:00Z {level} [worker-{s}] request {n} served in {} ms from 10.0.{}.{}",
                            n % 250,
                            s % 256,
                            k % 256
                        ),
                    }
                })
                .collect();
            logs.put_events("/fleet/app", name, &events).expect("put");
            sent += events.len();
        }
        tokio::time::advance(Duration::from_secs(5)).await;
    }
    let ingest = began.elapsed();
    let db: u64 = std::fs::read_dir(dir)
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!(
        "ingest: {sent} lines from {streams} streams in batches of {batch}: {:.2} s, {:.0} lines/s; database {:.1} MB, {:.0} bytes/line",
        ingest.as_secs_f64(),
        sent as f64 / ingest.as_secs_f64(),
        db as f64 / 1e6,
        db as f64 / sent as f64
    );
    let began = Instant::now();
    let mut token = None;
    let mut found = 0;
    let mut pages = 0;
    let mut first_page = None;
    loop {
        let page = logs
            .filter_events(&FilterInput {
                group: "/fleet/app".into(),
                pattern: Some("ERROR".into()),
                token: token.clone(),
                ..FilterInput::default()
            })
            .expect("filter");
        first_page.get_or_insert(began.elapsed());
        found += page.events.len();
        pages += 1;
        match page.next_token {
            Some(t) if pages < 1_000 => token = Some(t),
            _ => break,
        }
    }
    println!(
        "FilterLogEvents ERROR over {sent} lines: first page {:.2} s, all {found} matches in {pages} pages {:.2} s",
        first_page.unwrap_or_default().as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    let began = Instant::now();
    let tail = logs
        .get_events(&GetInput {
            group: "/fleet/app".into(),
            stream: names[0].clone(),
            limit: Some(100),
            ..GetInput::default()
        })
        .expect("get");
    println!(
        "GetLogEvents (last 100 of {} lines in a stream): {:.3} s",
        sent / streams,
        began.elapsed().as_secs_f64(),
    );
    assert_eq!(tail.events.len(), 100.min(sent / streams));
}
