//! CloudWatch Logs' behaviour on a paused clock: PutLogEvents' batch rules and rejections,
//! GetLogEvents' and FilterLogEvents' paging, retention in AWS time, metric filters' minutes
//! (DefaultValue, dimensions, values from fields), Logs Insights, and the store failing.

use std::sync::Arc;
use std::time::Duration;

use expect_test::expect;
use logs::insights::StartQuery;
use logs::{
    CreateGroup, FilterInput, GetInput, InputEvent, Logs, LogsError, MetricSink, StreamOrder,
    Transformation,
};
use parking_lot::Mutex;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn region() -> (Arc<Logs>, Arc<store::Store>) {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let clock = clock::Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    (Logs::new(store.clone(), clock, aws_ids::Account::default()), store)
}

fn group(logs: &Logs, name: &str) {
    logs.create_group(CreateGroup { name: name.into(), ..CreateGroup::default() }).unwrap();
}

fn ev(ts: i64, m: &str) -> InputEvent {
    InputEvent { timestamp: ts, message: m.into() }
}

fn code(r: Result<impl std::fmt::Debug, LogsError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("{}: {e}", e.code()),
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn put_log_events_follows_aws_batch_rules() {
    let (logs, _) = region();
    group(&logs, "/app");
    logs.create_stream("/app", "a").unwrap();
    let out = [
        code(logs.put_events("/app", "a", &[])),
        code(logs.put_events("/app", "a", &[ev(T0, "b"), ev(T0 - 1, "a")])),
        code(logs.put_events("/app", "a", &[ev(T0 - 86_400_001, "a"), ev(T0, "b")])),
        code(logs.put_events("/app", "a", &vec![ev(T0, "x"); 10_001])),
        code(logs.put_events("/app", "a", &[ev(T0, &"x".repeat(1_048_576 - 26 + 1))])),
        code(logs.put_events("/app", "nope", &[ev(T0, "x")])),
        code(logs.put_events("/nope", "a", &[ev(T0, "x")])),
        code(logs.put_events("/app", "a", &[ev(T0, "")])),
    ]
    .join("\n");
    expect![[r#"
        InvalidParameterException: 1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1
        InvalidParameterException: Log events in a single PutLogEvents request must be in chronological order.
        InvalidParameterException: The batch of log events in a single PutLogEvents request cannot span more than 24 hours.
        InvalidParameterException: 1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000
        InvalidParameterException: Upload too large: 1048577 bytes exceeds limit of 1048576
        ResourceNotFoundException: The specified log stream does not exist.
        ResourceNotFoundException: The specified log group does not exist.
        InvalidParameterException: 1 validation error detected: Value '' at 'logEvents.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1"#]]
    .assert_eq(&out);
    // Exactly at the limits it is accepted: 10,000 events, 1,048,576 bytes with the overhead.
    assert!(logs.put_events("/app", "a", &vec![ev(T0, "x"); 10_000]).is_ok());
    assert!(logs.put_events("/app", "a", &[ev(T0, &"x".repeat(1_048_576 - 26))]).is_ok());

    // Too old (> 14 days), too new (> 2 h ahead): reported by index, the rest kept.
    logs.create_stream("/app", "b").unwrap();
    let day = 86_400_000;
    let r = logs
        .put_events(
            "/app",
            "b",
            &[ev(T0 - 14 * day - 1, "old"), ev(T0, "now"), ev(T0 + 2 * 3_600_000 + 1, "new")],
        )
        .unwrap_err();
    // ...but that batch spans more than 24 h, so it is refused whole; split as AWS needs.
    assert_eq!(r.code(), "InvalidParameterException");
    let old = logs
        .put_events("/app", "b", &[ev(T0 - 14 * day - 2, "old"), ev(T0 - 14 * day - 1, "old")])
        .unwrap();
    let new = logs
        .put_events("/app", "b", &[ev(T0 + 1, "now"), ev(T0 + 2 * 3_600_000 + 1, "new")])
        .unwrap();
    expect![[r#"
        Some(Rejected { too_new_start: None, too_old_end: Some(1), expired_end: None })
        Some(Rejected { too_new_start: Some(1), too_old_end: None, expired_end: None })"#]]
    .assert_eq(&format!("{:?}\n{:?}", old.rejected, new.rejected));
    let page = logs
        .get_events(&GetInput {
            group: "/app".into(),
            stream: "b".into(),
            start_from_head: true,
            ..GetInput::default()
        })
        .unwrap();
    assert_eq!(page.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["now"]);

    // With a retention policy, events older than it are "expired".
    logs.put_retention("/app", 1).unwrap();
    let r = logs
        .put_events("/app", "b", &[ev(T0 - day - 1000, "expired"), ev(T0 - day / 2, "kept")])
        .unwrap();
    assert_eq!(
        format!("{:?}", r.rejected),
        "Some(Rejected { too_new_start: None, too_old_end: None, expired_end: Some(0) })"
    );
    let s = logs.stream("/app", "b").unwrap();
    assert_eq!((s.first_event_ms, s.last_event_ms), (Some(T0 - day / 2), Some(T0 + 1)));
    assert_eq!(s.last_ingestion_ms, Some(T0));
    assert_eq!(
        code(logs.put_retention("/app", 2)).lines().next().unwrap().split(':').next(),
        Some("InvalidParameterException")
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn get_log_events_pages_forward_and_backward() {
    let (logs, _) = region();
    group(&logs, "/app");
    logs.create_stream("/app", "s").unwrap();
    // Two batches whose timestamps interleave: reads come back in timestamp order.
    let odd: Vec<InputEvent> =
        (0..5).map(|i| ev(T0 + 2 * i + 1, &format!("e{}", 2 * i + 1))).collect();
    let even: Vec<InputEvent> = (0..5).map(|i| ev(T0 + 2 * i, &format!("e{}", 2 * i))).collect();
    logs.put_events("/app", "s", &odd).unwrap();
    logs.put_events("/app", "s", &even).unwrap();
    let get = |token: Option<String>, head: bool| {
        logs.get_events(&GetInput {
            group: "/app".into(),
            stream: "s".into(),
            token,
            limit: Some(4),
            start_from_head: head,
            ..GetInput::default()
        })
        .unwrap()
    };
    let names = |p: &logs::EventsPage| {
        p.events.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ")
    };
    let mut out = Vec::new();
    let p = get(None, true);
    out.push(format!("head: {}", names(&p)));
    let p = get(Some(p.next_forward_token.clone()), true);
    out.push(format!("forward: {}", names(&p)));
    let p2 = get(Some(p.next_forward_token.clone()), true);
    out.push(format!("forward: {}", names(&p2)));
    let p3 = get(Some(p2.next_forward_token.clone()), true);
    out.push(format!(
        "end: [{}] same token: {}",
        names(&p3),
        p3.next_forward_token == p2.next_forward_token
    ));
    let back = get(Some(p2.next_backward_token.clone()), true);
    out.push(format!("backward: {}", names(&back)));
    let tail = get(None, false);
    out.push(format!("tail: {}", names(&tail)));
    let before = get(Some(tail.next_backward_token.clone()), false);
    out.push(format!("before tail: {}", names(&before)));
    out.push(format!("token shape: {}", &tail.next_forward_token[..2]));
    out.push(format!("token digits: {}", tail.next_forward_token.len() - 2));
    // A time window: start inclusive, end exclusive.
    let w = logs
        .get_events(&GetInput {
            group: "/app".into(),
            stream: "s".into(),
            start_time: Some(T0 + 3),
            end_time: Some(T0 + 6),
            start_from_head: true,
            ..GetInput::default()
        })
        .unwrap();
    out.push(format!("window: {}", names(&w)));
    out.push(code(logs.get_events(&GetInput {
        group: "/app".into(),
        stream: "s".into(),
        token: Some("x/123".into()),
        ..GetInput::default()
    })));
    expect![[r#"
        head: e0 e1 e2 e3
        forward: e4 e5 e6 e7
        forward: e8 e9
        end: [] same token: true
        backward: e4 e5 e6 e7
        tail: e6 e7 e8 e9
        before tail: e2 e3 e4 e5
        token shape: f/
        token digits: 56
        window: e3 e4 e5
        InvalidParameterException: The specified nextToken is invalid."#]]
    .assert_eq(&out.join("\n"));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn filter_log_events_interleaves_streams_and_pages() {
    let (logs, _) = region();
    group(&logs, "/web");
    for s in ["web-1", "web-2", "worker-1"] {
        logs.create_stream("/web", s).unwrap();
    }
    logs.put_events(
        "/web",
        "web-1",
        &[ev(T0, "GET /a 200"), ev(T0 + 20, "GET /b 500 ERROR"), ev(T0 + 40, "GET /c 200")],
    )
    .unwrap();
    logs.put_events("/web", "web-2", &[ev(T0 + 10, "GET /d 500 ERROR"), ev(T0 + 30, "GET /e 200")])
        .unwrap();
    logs.put_events("/web", "worker-1", &[ev(T0 + 5, "job ERROR"), ev(T0 + 50, "job done")])
        .unwrap();
    let filter = |f: FilterInput| {
        let p = logs.filter_events(&FilterInput { group: "/web".into(), ..f }).unwrap();
        let lines: Vec<String> = p
            .events
            .iter()
            .map(|e| format!("{} {} {}", e.timestamp - T0, e.stream, e.message))
            .collect();
        (lines.join(" | "), p.next_token)
    };
    let mut out = vec![
        filter(FilterInput::default()).0,
        filter(FilterInput { pattern: Some("ERROR".into()), ..FilterInput::default() }).0,
        filter(FilterInput {
            stream_prefix: Some("web-".into()),
            pattern: Some("?500 ?done".into()),
            ..FilterInput::default()
        })
        .0,
        filter(FilterInput {
            stream_names: vec!["worker-1".into(), "web-2".into()],
            ..FilterInput::default()
        })
        .0,
        filter(FilterInput {
            start_time: Some(T0 + 10),
            end_time: Some(T0 + 30),
            ..FilterInput::default()
        })
        .0,
    ];
    // Paging: two at a time until no token comes back.
    let mut token = None;
    let mut pages = Vec::new();
    for _ in 0..10 {
        let (lines, next) =
            filter(FilterInput { limit: Some(2), token: token.clone(), ..FilterInput::default() });
        pages.push(lines);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    out.push(format!("{} pages: {}", pages.len(), pages.join(" // ")));
    out.push(code(logs.filter_events(&FilterInput {
        group: "/web".into(),
        stream_names: vec!["web-1".into()],
        stream_prefix: Some("w".into()),
        ..FilterInput::default()
    })));
    out.push(code(logs.filter_events(&FilterInput {
        group: "/web".into(),
        pattern: Some("{ $.a = ".into()),
        ..FilterInput::default()
    })));
    expect![[r#"
        0 web-1 GET /a 200 | 5 worker-1 job ERROR | 10 web-2 GET /d 500 ERROR | 20 web-1 GET /b 500 ERROR | 30 web-2 GET /e 200 | 40 web-1 GET /c 200 | 50 worker-1 job done
        5 worker-1 job ERROR | 10 web-2 GET /d 500 ERROR | 20 web-1 GET /b 500 ERROR
        10 web-2 GET /d 500 ERROR | 20 web-1 GET /b 500 ERROR
        5 worker-1 job ERROR | 10 web-2 GET /d 500 ERROR | 30 web-2 GET /e 200 | 50 worker-1 job done
        10 web-2 GET /d 500 ERROR | 20 web-1 GET /b 500 ERROR | 30 web-2 GET /e 200
        4 pages: 0 web-1 GET /a 200 | 5 worker-1 job ERROR // 10 web-2 GET /d 500 ERROR | 20 web-1 GET /b 500 ERROR // 30 web-2 GET /e 200 | 40 web-1 GET /c 200 // 50 worker-1 job done
        InvalidParameterException: logStreamNames and logStreamNamePrefix are mutually exclusive parameters.
        InvalidParameterException: Invalid filter pattern: a JSON pattern must end with }"#]]
    .assert_eq(&out.join("\n"));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn describe_calls_filter_order_and_page() {
    let (logs, _) = region();
    for g in ["/aws/ec2/console", "/app/web", "/app/worker"] {
        group(&logs, g);
    }
    let names = |p: &logs::Page<logs::LogGroup>| {
        p.items.iter().map(|g| g.name.clone()).collect::<Vec<_>>().join(" ")
    };
    let all = logs.describe_groups(None, None, 50, None).unwrap();
    let prefix = logs.describe_groups(Some("/app"), None, 50, None).unwrap();
    let pattern = logs.describe_groups(None, Some("WORK"), 50, None).unwrap();
    let p1 = logs.describe_groups(None, None, 2, None).unwrap();
    let p2 = logs.describe_groups(None, None, 2, p1.next_token.as_deref()).unwrap();
    assert_eq!(
        code(logs.create_group(CreateGroup { name: "/app/web".into(), ..CreateGroup::default() })),
        "ResourceAlreadyExistsException: The specified log group already exists"
    );
    assert!(
        code(logs.create_group(CreateGroup { name: "bad name".into(), ..CreateGroup::default() }))
            .starts_with("InvalidParameterException")
    );
    // Streams by name or by last event time.
    for (s, t) in [("c", 30), ("a", 20), ("b", 10)] {
        logs.create_stream("/app/web", s).unwrap();
        logs.put_events("/app/web", s, &[ev(T0 + t, "x")]).unwrap();
    }
    let streams = |order, desc| {
        logs.describe_streams("/app/web", None, order, desc, 50, None)
            .unwrap()
            .items
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join("")
    };
    expect![[r#"
        /app/web /app/worker /aws/ec2/console
        /app/web /app/worker
        /app/worker
        /app/web /app/worker | /aws/ec2/console (token o/2, then None)
        abc cba bac cab
        InvalidParameterException: Cannot order by LastEventTime with a logStreamNamePrefix."#]]
    .assert_eq(&format!(
        "{}\n{}\n{}\n{} | {} (token {}, then {:?})\n{} {} {} {}\n{}",
        names(&all),
        names(&prefix),
        names(&pattern),
        names(&p1),
        names(&p2),
        p1.next_token.as_deref().unwrap_or("-"),
        p2.next_token,
        streams(StreamOrder::LogStreamName, false),
        streams(StreamOrder::LogStreamName, true),
        streams(StreamOrder::LastEventTime, false),
        streams(StreamOrder::LastEventTime, true),
        code(logs.describe_streams(
            "/app/web",
            Some("a"),
            StreamOrder::LastEventTime,
            false,
            50,
            None
        )),
    ));
    // Deleting a group takes its streams and events; a new group of that name is empty.
    logs.delete_group("/app/web").unwrap();
    group(&logs, "/app/web");
    assert!(
        logs.describe_streams("/app/web", None, StreamOrder::LogStreamName, false, 50, None)
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        code(logs.delete_group("/nope")),
        "ResourceNotFoundException: The specified log group does not exist."
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn retention_is_enforced_in_aws_time() {
    let (logs, store) = region();
    group(&logs, "/short");
    group(&logs, "/forever");
    for g in ["/short", "/forever"] {
        logs.create_stream(g, "s").unwrap();
        logs.put_events(g, "s", &[ev(T0 - 3_600_000, "an hour ago"), ev(T0, "now")]).unwrap();
    }
    logs.put_retention("/short", 1).unwrap();
    let count = |g: &str| {
        logs.get_events(&GetInput {
            group: g.into(),
            stream: "s".into(),
            start_from_head: true,
            ..GetInput::default()
        })
        .unwrap()
        .events
        .len()
    };
    // 23 h later: both still there.
    tokio::time::advance(Duration::from_secs(23 * 3600)).await;
    assert_eq!(logs.expire().unwrap(), 0);
    assert_eq!((count("/short"), count("/forever")), (2, 2));
    // 23.5 h: the older event is past retention and no read returns it; its batch (whose
    // newest event is not) stays until that one expires too.
    tokio::time::advance(Duration::from_secs(1800)).await;
    assert_eq!(logs.expire().unwrap(), 0);
    assert_eq!((count("/short"), count("/forever")), (1, 2));
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(logs.expire().unwrap(), 1);
    assert_eq!((count("/short"), count("/forever")), (0, 2));
    let left: Vec<(i64, serde_json::Value)> = store.read_log("logs/events", "/short:s", 0).unwrap();
    assert!(left.is_empty(), "the batch is gone from the store");
    // The retention pass runs on the clock with `run`.
    let cancel = tokio_util::sync::CancellationToken::new();
    logs.put_retention("/forever", 1).unwrap();
    let task = tokio::spawn(logs.clone().run(cancel.clone()));
    tokio::time::advance(Duration::from_secs(11 * 60)).await;
    tokio::task::yield_now().await;
    assert_eq!(count("/forever"), 0);
    cancel.cancel();
    task.await.unwrap();
}

/// What the region's CloudWatch would receive.
#[derive(Default)]
struct Sink(Mutex<Vec<String>>);

impl MetricSink for Sink {
    fn put(
        &self,
        ns: &str,
        name: &str,
        dims: &[(String, String)],
        ts: i64,
        value: f64,
        unit: Option<&str>,
    ) -> Result<(), String> {
        let dims: Vec<String> = dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.0.lock().push(format!(
            "{ns}/{name} [{}] +{}s {value} {}",
            dims.join(","),
            (ts - T0) / 1000,
            unit.unwrap_or("-")
        ));
        Ok(())
    }
}

fn transformation(name: &str, value: &str) -> Transformation {
    Transformation {
        metric_name: name.into(),
        namespace: "App".into(),
        value: value.into(),
        ..Transformation::default()
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn metric_filters_publish_per_minute_when_it_closes() {
    let (logs, _) = region();
    let sink = Arc::new(Sink::default());
    logs.set_metric_sink(sink.clone());
    group(&logs, "/app");
    logs.create_stream("/app", "s").unwrap();
    // Lines before the filter exists are not counted.
    logs.put_events("/app", "s", &[ev(T0, "Error early")]).unwrap();
    logs.put_metric_filter(
        "/app",
        "errors",
        "Error",
        vec![Transformation {
            default_value: Some(0.0),
            unit: Some("Count".into()),
            ..transformation("Errors", "1")
        }],
    )
    .unwrap();
    logs.put_metric_filter(
        "/app",
        "latency",
        "{ $.latency > 0 }",
        vec![Transformation {
            dimensions: [("Path".to_string(), "$.path".to_string())].into(),
            unit: Some("Milliseconds".into()),
            ..transformation("Latency", "$.latency")
        }],
    )
    .unwrap();
    logs.put_metric_filter(
        "/app",
        "bytes",
        "[ip, status = 5*, bytes]",
        vec![transformation("Bytes5xx", "$bytes")],
    )
    .unwrap();
    // Minute 0: two errors, two latencies on /a and one on /b, a 5xx of 300 bytes.
    logs.put_events(
        "/app",
        "s",
        &[
            ev(T0 + 1_000, "Error one"),
            ev(T0 + 2_000, r#"{"latency": 20, "path": "/a"}"#),
            ev(T0 + 3_000, r#"{"latency": 30, "path": "/a"}"#),
            ev(T0 + 4_000, r#"{"latency": 5, "path": "/b"}"#),
            ev(T0 + 5_000, "Error two"),
            ev(T0 + 6_000, "10.0.0.1 503 300"),
            ev(T0 + 7_000, "10.0.0.1 200 999"),
        ],
    )
    .unwrap();
    // The minute has not closed: nothing yet.
    assert_eq!(logs.flush_metrics(), 0);
    // Minute 1: logs but no error: the errors filter's DefaultValue (0).
    tokio::time::advance(Duration::from_secs(60)).await;
    logs.put_events("/app", "s", &[ev(T0 + 61_000, "all good")]).unwrap();
    assert_eq!(logs.flush_metrics(), 4);
    // Minute 2: no logs at all: no value, not even the default.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(logs.flush_metrics(), 1);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(logs.flush_metrics(), 0);
    expect![[r#"
        App/Bytes5xx [] +0s 300 -
        App/Errors [] +0s 2 Count
        App/Latency [Path=/a] +0s 50 Milliseconds
        App/Latency [Path=/b] +0s 5 Milliseconds
        App/Errors [] +60s 0 Count"#]]
    .assert_eq(&sink.0.lock().join("\n"));
    // The rules of a transformation.
    let bad = [
        code(logs.put_metric_filter(
            "/app",
            "x",
            "Error",
            vec![Transformation {
                default_value: Some(0.0),
                dimensions: [("A".to_string(), "$a".to_string())].into(),
                ..transformation("M", "1")
            }],
        )),
        code(logs.put_metric_filter(
            "/app",
            "x",
            "Error",
            vec![Transformation {
                dimensions: (0..4).map(|i| (format!("D{i}"), "$a".to_string())).collect(),
                ..transformation("M", "1")
            }],
        )),
        code(logs.put_metric_filter("/app", "x", "Error", vec![transformation("M", "one")])),
        code(logs.put_metric_filter(
            "/app",
            "x",
            "Error",
            vec![Transformation { unit: Some("Apples".into()), ..transformation("M", "1") }],
        )),
        code(logs.put_metric_filter("/app", "x", "{ $.a = ", vec![transformation("M", "1")])),
        code(logs.put_metric_filter("/nope", "x", "Error", vec![transformation("M", "1")])),
        code(logs.delete_metric_filter("/app", "nope")),
    ];
    expect![[r#"
        InvalidParameterException: Dimensions and DefaultValue cannot be used together in a metric filter.
        InvalidParameterException: A metric transformation can have at most 3 dimensions.
        InvalidParameterException: Invalid metric value: one. The metric value must be a number or a $field reference.
        InvalidParameterException: Invalid unit: Apples
        InvalidParameterException: Invalid filter pattern: a JSON pattern must end with }
        ResourceNotFoundException: The specified log group does not exist.
        ResourceNotFoundException: The specified metric filter does not exist."#]]
    .assert_eq(&bad.join("\n"));
    let described =
        logs.describe_metric_filters(None, None, Some(("App", "Latency")), 50, None).unwrap();
    assert_eq!(described.items.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["latency"]);
    let tested = logs
        .test_metric_filter(
            "[ip, status = 5*, bytes]",
            &["1.2.3.4 503 10".into(), "1.2.3.4 200 10".into()],
        )
        .unwrap();
    assert_eq!(
        format!("{tested:?}"),
        r#"[TestMatch { event_number: 1, message: "1.2.3.4 503 10", extracted: [("$ip", "1.2.3.4"), ("$status", "503"), ("$bytes", "10")] }]"#
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn insights_runs_the_common_commands() {
    let (logs, _) = region();
    group(&logs, "/api");
    logs.create_stream("/api", "i-1").unwrap();
    logs.create_stream("/api", "i-2").unwrap();
    let line = |status: i64, ms: i64, path: &str| {
        format!(r#"{{"status": {status}, "latency": {ms}, "path": "{path}"}}"#)
    };
    logs.put_events(
        "/api",
        "i-1",
        &[
            ev(T0, &line(200, 10, "/a")),
            ev(T0 + 60_000, &line(500, 90, "/b")),
            ev(T0 + 400_000, &line(200, 30, "/a")),
        ],
    )
    .unwrap();
    logs.put_events(
        "/api",
        "i-2",
        &[ev(T0 + 1_000, &line(404, 20, "/c")), ev(T0 + 2_000, "plain text ERROR line")],
    )
    .unwrap();
    let run = |q: &str| -> String {
        let id = match logs.start_query(&StartQuery {
            groups: vec!["/api".into()],
            start_time: T0 / 1000,
            end_time: T0 / 1000 + 3600,
            query: q.into(),
            limit: None,
        }) {
            Ok(id) => id,
            Err(e) => return format!("{}: {e}", e.code()),
        };
        let r = logs.query_results(&id).unwrap();
        r.rows
            .iter()
            .map(|row| {
                row.iter()
                    .filter(|(k, _)| k != "@ptr")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cases = [
        "fields @timestamp, status | sort @timestamp asc | limit 3",
        "filter status >= 400 | fields path, status, @logStream",
        "filter status = 200 and path != \"/b\" | stats count(*) as n",
        "filter @message like /ERROR/ | fields @message",
        "filter @message like \"plain\" or status = 500 | fields @timestamp | sort @timestamp desc",
        "stats count(*), avg(latency), sum(latency), min(latency), max(latency) by path | sort path",
        "filter ispresent(status) | stats count(*) as requests by bin(5m)",
        "filter ispresent(status) and not status in [200, 404] | display path",
        "parse @message \"plain * line\" as what | filter ispresent(what) | fields what",
        "fields status | dedup status",
        "stats pct(latency, 99)",
        "filter status = ",
    ];
    let out: Vec<String> = cases.iter().map(|q| format!("> {q}\n{}", run(q))).collect();
    expect![[r#"
        > fields @timestamp, status | sort @timestamp asc | limit 3
        @timestamp=2026-01-01 00:00:00.000 status=200
        @timestamp=2026-01-01 00:00:01.000 status=404
        @timestamp=2026-01-01 00:00:02.000
        > filter status >= 400 | fields path, status, @logStream
        path=/b status=500 @logStream=i-1
        path=/c status=404 @logStream=i-2
        > filter status = 200 and path != "/b" | stats count(*) as n
        n=2
        > filter @message like /ERROR/ | fields @message
        @message=plain text ERROR line
        > filter @message like "plain" or status = 500 | fields @timestamp | sort @timestamp desc
        @timestamp=2026-01-01 00:01:00.000
        @timestamp=2026-01-01 00:00:02.000
        > stats count(*), avg(latency), sum(latency), min(latency), max(latency) by path | sort path
        path=/a count(*)=2 avg(latency)=20 sum(latency)=40 min(latency)=10 max(latency)=30
        path=/b count(*)=1 avg(latency)=90 sum(latency)=90 min(latency)=90 max(latency)=90
        path=/c count(*)=1 avg(latency)=20 sum(latency)=20 min(latency)=20 max(latency)=20
        count(*)=1
        > filter ispresent(status) | stats count(*) as requests by bin(5m)
        bin(5m)=2026-01-01 00:00:00.000 requests=3
        bin(5m)=2026-01-01 00:05:00.000 requests=1
        > filter ispresent(status) and not status in [200, 404] | display path
        path=/b
        > parse @message "plain * line" as what | filter ispresent(what) | fields what
        what=text ERROR
        > fields status | dedup status
        MalformedQueryException: unexpected symbol found dedup at line 1: the command dedup is not supported locally (fields, display, filter, stats, sort, limit, parse are)
        > stats pct(latency, 99)
        MalformedQueryException: the aggregation pct is not supported locally (count, count_distinct, avg, sum, min, max are)
        > filter status = 
        MalformedQueryException: expected a field or a value, found None"#]]
    .assert_eq(&out.join("\n"));
    assert_eq!(
        code(logs.query_results("nope")),
        "ResourceNotFoundException: Query does not exist: nope"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_store_is_a_server_error_never_not_found() {
    let (logs, store) = region();
    group(&logs, "/app");
    logs.create_stream("/app", "s").unwrap();
    store.inject(store::Faults::Writes);
    let e = logs.put_events("/app", "s", &[ev(T0, "x")]).unwrap_err();
    assert_eq!((e.code(), e.status()), ("ServiceUnavailableException", 500));
    store.inject(store::Faults::All);
    let e = logs.describe_groups(None, None, 50, None).unwrap_err();
    assert_eq!((e.code(), e.status()), ("ServiceUnavailableException", 500));
    let e = logs.group("/app").unwrap_err();
    assert_eq!(e.code(), "ServiceUnavailableException");
    store.inject(store::Faults::None);
    // Nothing half-written: the stream has no events and no last-event time.
    assert_eq!(logs.stream("/app", "s").unwrap().last_event_ms, None);
}
