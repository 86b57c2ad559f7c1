//! The filter-pattern conformance table: every example of AWS's "Filter pattern syntax for
//! metric filters, subscription filters, filter log events, and Live Tail" pages (unstructured,
//! JSON and space-delimited events, regex) against the documentation's sample events, and the
//! events each is documented to match; then the edges the documentation states in prose.
//!
//! `check(pattern, events, expect)` lists which events match (`+`) and which do not (`-`);
//! `UPDATE_EXPECT=1` rewrites the expectations after a deliberate change.

use expect_test::{Expect, expect};
use logs::FilterPattern;

fn check(pattern: &str, events: &[&str], expect: Expect) {
    let p = match FilterPattern::parse(pattern) {
        Ok(p) => p,
        Err(e) => {
            expect.assert_eq(&format!("error: {e}\n"));
            return;
        }
    };
    let mut out = String::new();
    for e in events {
        out.push_str(&format!("{} {e}\n", if p.matches(e) { "+" } else { "-" }));
    }
    expect.assert_eq(&out);
}

/// The value a metric transformation reads from an event the pattern matches.
fn field(pattern: &str, event: &str, selector: &str) -> Option<String> {
    FilterPattern::parse(pattern).ok()?.evaluate(event)?.field(selector)
}

/// The unstructured events of the documentation's examples.
const UNSTRUCTURED: &[&str] = &[
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[ERROR 500] INTERNAL SERVER ERROR",
    "[SUCCESS 200] AUTHORIZED REQUEST",
];

#[test]
fn unstructured_terms() {
    // A single term.
    check(
        "ERROR",
        UNSTRUCTURED,
        expect![[r#"
            + [ERROR 400] BAD REQUEST
            + [ERROR 401] UNAUTHORIZED REQUEST
            + [ERROR 419] MISSING ARGUMENTS
            + [ERROR 420] INVALID ARGUMENTS
            + [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    // Multiple terms: all must appear.
    check(
        "ERROR ARGUMENTS",
        UNSTRUCTURED,
        expect![[r#"
            - [ERROR 400] BAD REQUEST
            - [ERROR 401] UNAUTHORIZED REQUEST
            + [ERROR 419] MISSING ARGUMENTS
            + [ERROR 420] INVALID ARGUMENTS
            - [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    // Optional terms: any one.
    check(
        "?ERROR ?ARGUMENTS",
        UNSTRUCTURED,
        expect![[r#"
            + [ERROR 400] BAD REQUEST
            + [ERROR 401] UNAUTHORIZED REQUEST
            + [ERROR 419] MISSING ARGUMENTS
            + [ERROR 420] INVALID ARGUMENTS
            + [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    check(
        "?ARGUMENTS ?SUCCESS",
        UNSTRUCTURED,
        expect![[r#"
            - [ERROR 400] BAD REQUEST
            - [ERROR 401] UNAUTHORIZED REQUEST
            + [ERROR 419] MISSING ARGUMENTS
            + [ERROR 420] INVALID ARGUMENTS
            - [ERROR 500] INTERNAL SERVER ERROR
            + [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    // An exact phrase.
    check(
        "\"INTERNAL SERVER ERROR\"",
        UNSTRUCTURED,
        expect![[r#"
            - [ERROR 400] BAD REQUEST
            - [ERROR 401] UNAUTHORIZED REQUEST
            - [ERROR 419] MISSING ARGUMENTS
            - [ERROR 420] INVALID ARGUMENTS
            + [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    // Terms excluded.
    check(
        "ERROR -ARGUMENTS",
        UNSTRUCTURED,
        expect![[r#"
            + [ERROR 400] BAD REQUEST
            + [ERROR 401] UNAUTHORIZED REQUEST
            - [ERROR 419] MISSING ARGUMENTS
            - [ERROR 420] INVALID ARGUMENTS
            + [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    // Everything: an empty pattern, `""` and `" "`.
    for all in ["", "\"\"", "\" \""] {
        check(
            all,
            &UNSTRUCTURED[..2],
            expect![[r#"
                + [ERROR 400] BAD REQUEST
                + [ERROR 401] UNAUTHORIZED REQUEST
            "#]],
        );
    }
    // Case-sensitive, and terms are whole words: AUTHORIZED is not in UNAUTHORIZED.
    check(
        "AUTHORIZED",
        UNSTRUCTURED,
        expect![[r#"
            - [ERROR 400] BAD REQUEST
            - [ERROR 401] UNAUTHORIZED REQUEST
            - [ERROR 419] MISSING ARGUMENTS
            - [ERROR 420] INVALID ARGUMENTS
            - [ERROR 500] INTERNAL SERVER ERROR
            + [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    check(
        "error",
        &UNSTRUCTURED[..1],
        expect![[r#"
        - [ERROR 400] BAD REQUEST
    "#]],
    );
    // Non-alphanumeric characters belong in quotes.
    check(
        "\"[ERROR 500]\"",
        UNSTRUCTURED,
        expect![[r#"
            - [ERROR 400] BAD REQUEST
            - [ERROR 401] UNAUTHORIZED REQUEST
            - [ERROR 419] MISSING ARGUMENTS
            - [ERROR 420] INVALID ARGUMENTS
            + [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    check(
        "Exception",
        &["java.lang.NullPointerException at X", "Exception: boom", "ExceptionHandler"],
        expect![[r#"
            - java.lang.NullPointerException at X
            + Exception: boom
            - ExceptionHandler
        "#]],
    );
}

#[test]
fn regex_terms() {
    // The documentation's regex example: AUTHORIZED anywhere, UNAUTHORIZED included.
    check(
        "%AUTHORIZED%",
        UNSTRUCTURED,
        expect![[r#"
            - [ERROR 400] BAD REQUEST
            + [ERROR 401] UNAUTHORIZED REQUEST
            - [ERROR 419] MISSING ARGUMENTS
            - [ERROR 420] INVALID ARGUMENTS
            - [ERROR 500] INTERNAL SERVER ERROR
            + [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    check(
        "%ERROR 4[0-9]{2}%",
        UNSTRUCTURED,
        expect![[r#"
            + [ERROR 400] BAD REQUEST
            + [ERROR 401] UNAUTHORIZED REQUEST
            + [ERROR 419] MISSING ARGUMENTS
            + [ERROR 420] INVALID ARGUMENTS
            - [ERROR 500] INTERNAL SERVER ERROR
            - [SUCCESS 200] AUTHORIZED REQUEST
        "#]],
    );
    // Parentheses are not supported in regex patterns.
    check(
        "%(ERROR|WARN)%",
        &[],
        expect![[r#"
            error: Invalid filter pattern: parentheses are not supported in regular expressions
        "#]],
    );
    check(
        "%a% %b% %c%",
        &[],
        expect![[r#"
            error: Invalid filter pattern: at most 2 regular expressions are allowed in a pattern
        "#]],
    );
}

/// The documentation's JSON event.
const JSON_EVENT: &str = r#"{
  "eventType": "UpdateTrail",
  "sourceIPAddress": "111.111.111.111",
  "arrayKey": ["value", "another value"],
  "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
  "SomeObject": null,
  "cluster.name": "c",
  "ThisFlag": true,
  "latency": 65
}"#;

/// The documentation's compound-expression event.
const COMPOUND_EVENT: &str = r#"{
  "user": {"id": 1, "email": "John.Stiles@example.com"},
  "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
  "actions": ["GET", "PUT", "DELETE"],
  "coordinates": [[0, 1], [2, 3]]
}"#;

#[test]
fn json_patterns() {
    let cases: &[(&str, bool)] = &[
        // Strings.
        (r#"{ $.eventType = "UpdateTrail" }"#, true),
        (r#"{ $.eventType = UpdateTrail }"#, true),
        (r#"{ $.eventType != "UpdateTrail" }"#, false),
        (r#"{ $.eventType = "Update*" }"#, true),
        (r#"{ $.eventType = "*Trail" }"#, true),
        (r#"{ $.eventType = "Delete*" }"#, false),
        (r#"{ $.eventType = * }"#, true),
        // The documentation's IP examples.
        ("{ $.sourceIPAddress != 123.123.* }", true),
        ("{ $.sourceIPAddress = 111.111.* }", true),
        // Arrays.
        (r#"{ $.arrayKey[0] = "value" }"#, true),
        (r#"{ $.arrayKey[1] = "another value" }"#, true),
        (r#"{ $.arrayKey[2] = "value" }"#, false),
        (r#"{ $.objectList[1].id = 2 }"#, true),
        (r#"{ $.objectList[0].name = "b" }"#, false),
        (r#"{ $.objectList[*].name = "b" }"#, true),
        // A selector reaching an object or an array never matches.
        (r#"{ $.arrayKey = "value" }"#, false),
        (r#"{ $.objectList[0] != "x" }"#, false),
        // IS NULL, NOT EXISTS, IS TRUE / FALSE.
        ("{ $.SomeObject IS NULL }", true),
        ("{ $.eventType IS NULL }", false),
        ("{ $.SomeOtherObject NOT EXISTS }", true),
        ("{ $.SomeObject NOT EXISTS }", false),
        ("{ $.ThisFlag IS TRUE }", true),
        ("{ $.ThisFlag IS FALSE }", false),
        // Keys with dots.
        (r#"{ $.['cluster.name'] = "c" }"#, true),
        // Numbers.
        ("{ $.latency > 50 }", true),
        ("{ $.latency >= 65 }", true),
        ("{ $.latency < 65 }", false),
        ("{ $.latency <= 65 }", true),
        ("{ $.latency = 65 }", true),
        ("{ $.latency != 65 }", false),
        ("{ $.latency = 6.5e1 }", true),
        ("{ $.missing > 0 }", false),
        // Regex values.
        ("{ $.eventType = %Update[A-Z]% }", true),
        ("{ $.eventType != %^Delete% }", true),
        // Compound expressions and parentheses.
        (r#"{ ($.eventType = "UpdateTrail") && ($.sourceIPAddress != 123.123.*) }"#, true),
        (r#"{ $.eventType = "X" || $.latency > 60 }"#, true),
        (r#"{ $.eventType = "X" && $.latency > 60 }"#, false),
    ];
    let mut out = String::new();
    for (pattern, want) in cases {
        let p = FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let got = p.matches(JSON_EVENT);
        out.push_str(&format!("{} {pattern}\n", if got { "+" } else { "-" }));
        assert_eq!(got, *want, "{pattern}");
    }
    // The documentation's compound examples: && binds tighter than ||.
    check(
        r#"{ ($.user.id = 2 && $.users[0].email = "John.Doe@example.com") || $.actions[2] = "GET" }"#,
        &[COMPOUND_EVENT],
        expect![[r#"
            - {
              "user": {"id": 1, "email": "John.Stiles@example.com"},
              "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
              "actions": ["GET", "PUT", "DELETE"],
              "coordinates": [[0, 1], [2, 3]]
            }
        "#]],
    );
    let compound = |p: &str| FilterPattern::parse(p).unwrap().matches(COMPOUND_EVENT);
    assert!(compound(
        r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }"#
    ));
    assert!(!compound(
        r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }"#
    ));
    assert!(compound(r#"{ $.users[1].email = "Jane.Doe@example.com" }"#));
    assert!(compound("{ $.coordinates[1][0] = 2 }"));
    assert!(compound(r#"{ $.user.id = 1 && $.actions[0] = "GET" }"#));
    // A JSON pattern never matches an event that is not JSON.
    check(
        r#"{ $.eventType = "UpdateTrail" }"#,
        &["eventType UpdateTrail"],
        expect![[r#"
        - eventType UpdateTrail
    "#]],
    );
    // Malformed patterns.
    check(
        "{ $.a = ",
        &[],
        expect![[r#"
        error: Invalid filter pattern: a JSON pattern must end with }
    "#]],
    );
    check(
        "{ $.a > \"x\" }",
        &[],
        expect![[r#"
        error: Invalid filter pattern: < > <= >= compare numbers only
    "#]],
    );
    check(
        "{ $.a IS MAYBE }",
        &[],
        expect![[r#"
        error: Invalid filter pattern: expected NULL, TRUE or FALSE after IS, found Some(Word("MAYBE"))
    "#]],
    );
    check(
        "{ ($.a = 1 }",
        &[],
        expect![[r#"
        error: Invalid filter pattern: a parenthesis is not closed
    "#]],
    );
    expect![[r#"
        + { $.eventType = "UpdateTrail" }
        + { $.eventType = UpdateTrail }
        - { $.eventType != "UpdateTrail" }
        + { $.eventType = "Update*" }
        + { $.eventType = "*Trail" }
        - { $.eventType = "Delete*" }
        + { $.eventType = * }
        + { $.sourceIPAddress != 123.123.* }
        + { $.sourceIPAddress = 111.111.* }
        + { $.arrayKey[0] = "value" }
        + { $.arrayKey[1] = "another value" }
        - { $.arrayKey[2] = "value" }
        + { $.objectList[1].id = 2 }
        - { $.objectList[0].name = "b" }
        + { $.objectList[*].name = "b" }
        - { $.arrayKey = "value" }
        - { $.objectList[0] != "x" }
        + { $.SomeObject IS NULL }
        - { $.eventType IS NULL }
        + { $.SomeOtherObject NOT EXISTS }
        - { $.SomeObject NOT EXISTS }
        + { $.ThisFlag IS TRUE }
        - { $.ThisFlag IS FALSE }
        + { $.['cluster.name'] = "c" }
        + { $.latency > 50 }
        + { $.latency >= 65 }
        - { $.latency < 65 }
        + { $.latency <= 65 }
        + { $.latency = 65 }
        - { $.latency != 65 }
        + { $.latency = 6.5e1 }
        - { $.missing > 0 }
        + { $.eventType = %Update[A-Z]% }
        + { $.eventType != %^Delete% }
        + { ($.eventType = "UpdateTrail") && ($.sourceIPAddress != 123.123.*) }
        + { $.eventType = "X" || $.latency > 60 }
        - { $.eventType = "X" && $.latency > 60 }
    "#]]
    .assert_eq(&out);
}

/// The documentation's space-delimited events (Apache common log format).
const DELIMITED: &[&str] = &[
    r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#,
    r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324"#,
    r#"127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355"#,
    r#"10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312"#,
];

#[test]
fn space_delimited_patterns() {
    check(
        "[ip, user, username, timestamp, request, status_code, bytes]",
        DELIMITED,
        expect![[r#"
            + 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            + 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            + 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    // The spec's example: wildcards on the request and the status code.
    check(
        "[ip, user, username, timestamp, request = *.html*, status_code = 4*, bytes]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            - 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            - 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    // Numeric conditions.
    check(
        "[ip, user, username, timestamp, request, status_code, bytes > 4000]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            + 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            + 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            - 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    check(
        "[ip, user, username, timestamp, request, status_code != 200, bytes]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            + 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            - 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    // `||` and `&&` inside a field, and naming other fields.
    check(
        "[ip, user, username, timestamp, request, status_code = 4* || status_code = 5*, bytes]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            + 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            - 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    check(
        "[ip, user, username, timestamp, request, status_code = 200 && bytes > 2000, bytes]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            - 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            + 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            - 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    // `...` stands for any number of fields.
    check(
        "[..., status_code = 404, bytes]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            - 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            - 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    check(
        "[ip = 10.*, ...]",
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            - 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            - 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    // Without `...` the field count must agree.
    check(
        "[ip, user, username, timestamp, request, status_code]",
        &DELIMITED[..1],
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
        "#]],
    );
    // The documentation's regex example inside a delimited pattern.
    check(
        r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request, status_code, bytes]",
        DELIMITED,
        expect![[r#"
            + 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            + 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            + 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            - 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    // `[...]` and `"..."` are single fields.
    check(
        r#"[ip, user, username, timestamp = "10/Oct/2000:13:55*", request = "GET /index.html*", ...]"#,
        DELIMITED,
        expect![[r#"
            - 127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
            - 127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324
            - 127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355
            + 10.0.0.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 404 312
        "#]],
    );
    check(
        "[ip, user",
        &[],
        expect![[r#"
        error: Invalid filter pattern: a space-delimited pattern must end with ]
    "#]],
    );
}

#[test]
fn metric_values_come_from_fields() {
    let apache = "[ip, user, username, timestamp, request, status_code, bytes]";
    assert_eq!(field(apache, DELIMITED[1], "$status_code").as_deref(), Some("500"));
    assert_eq!(field(apache, DELIMITED[1], "$bytes").as_deref(), Some("5324"));
    assert_eq!(
        field(apache, DELIMITED[1], "$request").as_deref(),
        Some("GET /apache_pb.gif HTTP/1.0")
    );
    assert_eq!(field(apache, DELIMITED[1], "$nope"), None);
    let json = "{ $.latency > 0 }";
    assert_eq!(field(json, JSON_EVENT, "$.latency").as_deref(), Some("65"));
    assert_eq!(field(json, JSON_EVENT, "$.objectList[1].name").as_deref(), Some("b"));
    // An object is no value.
    assert_eq!(field(json, JSON_EVENT, "$.objectList[1]"), None);
    // A pattern that does not match yields nothing.
    assert_eq!(field("{ $.latency > 100 }", JSON_EVENT, "$.latency"), None);
}

/// Every FilterPattern of the repository's template corpus parses, and the CloudTrail ones
/// match the CloudTrail events they are written for.
#[test]
fn corpus_patterns_parse_and_match_cloudtrail_events() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut patterns = Vec::new();
    let mut stack = vec![root.join("tests/corpus"), root.join("examples")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    if let Some((_, p)) = line.split_once("FilterPattern: ") {
                        patterns.push(p.trim().trim_matches('\'').to_string());
                    }
                }
            }
        }
    }
    assert!(patterns.len() >= 14, "{} patterns found", patterns.len());
    for p in &patterns {
        assert!(FilterPattern::parse(p).is_ok(), "{p}: {:?}", FilterPattern::parse(p).err());
    }
    let root_login = r#"{"eventName": "ConsoleLogin", "userIdentity": {"type": "Root"}, "eventType": "AwsConsoleSignIn", "additionalEventData": {"MFAUsed": "No"}}"#;
    let check = |p: &str, e: &str| FilterPattern::parse(p).unwrap().matches(e);
    assert!(check(
        r#"{$.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent"}"#,
        root_login
    ));
    assert!(check(
        r#"{($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes")}"#,
        root_login
    ));
    assert!(!check(
        r#"{($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication")}"#,
        root_login
    ));
    assert!(check(
        r#"{($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")}"#,
        r#"{"errorCode": "Client.UnauthorizedOperation"}"#
    ));
    assert!(check(
        "{($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}",
        r#"{"eventSource": "kms.amazonaws.com", "eventName": "ScheduleKeyDeletion"}"#
    ));
}
