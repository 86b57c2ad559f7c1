//! SNS on the wire (awsQuery, 2010-03-31): a scenario of the calls the aws CLI and SDKs make —
//! CreateTopic, Subscribe, ConfirmSubscription by a GET of the SubscribeURL, Publish,
//! ListSubscriptionsByTopic, GetTopicAttributes, PublishBatch and errors — through
//! `api::server::answer` (what the endpoint runs for `/`), each whole XML response against
//! `tests/golden/sns/<case>.xml` (ids, tokens and timestamps normalized). Element names follow
//! botocore's model (`sns/2010-03-31/service-2.json`). `UPDATE_EXPECT=1 cbw test -p api --test
//! golden_sns` rewrites the files after a deliberate change.

use std::path::PathBuf;
use std::sync::Arc;

use api::registry::Registry;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use http_body_util::BodyExt;

const RID: &str = "11111111-2222-4333-8444-555555555555";

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sns")
}

fn normalize(xml: &str) -> String {
    let rules = [
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{uuid}"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "{time}"),
    ];
    let mut out = xml.to_string();
    for (pattern, replacement) in rules {
        out = fancy_regex::Regex::new(pattern).unwrap().replace_all(&out, replacement).into_owned();
    }
    pretty(&out)
}

fn pretty(xml: &str) -> String {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(e) => writer.write_event(e).unwrap(),
            Err(e) => panic!("bad XML: {e}\n{xml}"),
        }
    }
    String::from_utf8(writer.into_inner()).unwrap() + "\n"
}

struct Region {
    registry: Registry,
    sns: Arc<sns::Sns>,
    credentials: Option<api::sigv4::Credentials>,
}

fn region(credentials: bool) -> Region {
    let store = Arc::new(store::Store::in_memory().unwrap());
    let clock = clock::Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let sns =
        sns::Sns::new(store, clock, aws_ids::Account::default(), "http://127.0.0.1:4566".into());
    let mut registry = Registry::default();
    registry.add(Arc::new(api::sns::Api::new(sns.clone())));
    let credentials = credentials
        .then(|| api::sigv4::Credentials::new([("AKIDEXAMPLE".to_string(), "secret".to_string())]));
    Region { registry, sns, credentials }
}

/// Sends a request as botocore does (`POST /`, a form body, signed for `sns` unless `signed`
/// is false) or a GET of a URL; answers the status and the body.
async fn send(r: &Region, method: Method, target: &str, body: &str) -> (u16, String) {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    if method == Method::POST {
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
    }
    let uri: Uri = target.parse().unwrap();
    let response = api::server::answer(
        &r.registry,
        r.credentials.as_ref(),
        &method,
        &uri,
        &headers,
        body.as_bytes(),
        RID,
    )
    .await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("Version", "2010-03-31");
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml.find(&open).unwrap() + open.len();
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    xml[start..end].replace("&amp;", "&")
}

struct Goldens(Vec<String>);

impl Goldens {
    fn check(&mut self, case: &str, status: u16, xml: &str) {
        let got = format!("<!-- HTTP {status} -->\n{}", normalize(xml));
        let path = golden_dir().join(format!("{case}.xml"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &got).unwrap();
            return;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => self.0.push(format!("{case}: differs\n--- want\n{want}--- got\n{got}")),
            Err(_) => self.0.push(format!("{case}: no golden file (UPDATE_EXPECT=1)\n{got}")),
        }
    }
}

#[tokio::test]
async fn sns_responses_match_their_goldens() {
    let r = region(false);
    let mut g = Goldens(Vec::new());
    let topic = "arn:aws:sns:us-east-1:000000000000:alerts";

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "CreateTopic"),
            ("Name", "alerts"),
            ("Attributes.entry.1.key", "DisplayName"),
            ("Attributes.entry.1.value", "Alerts"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "ops"),
        ]),
    )
    .await;
    g.check("CreateTopic", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "Subscribe"),
            ("TopicArn", topic),
            ("Protocol", "email"),
            ("Endpoint", "ops@example.com"),
        ]),
    )
    .await;
    g.check("Subscribe-pending", status, &xml);
    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "Subscribe"),
            ("TopicArn", topic),
            ("Protocol", "sqs"),
            ("Endpoint", "arn:aws:sqs:us-east-1:000000000000:queue"),
            ("Attributes.entry.1.key", "RawMessageDelivery"),
            ("Attributes.entry.1.value", "true"),
        ]),
    )
    .await;
    g.check("Subscribe-confirmed", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[("Action", "ListSubscriptionsByTopic"), ("TopicArn", topic)]),
    )
    .await;
    g.check("ListSubscriptionsByTopic-pending", status, &xml);

    // The confirmation mail's link, as a browser follows it: an unsigned GET.
    let mail = r.sns.mailbox(0).unwrap();
    let link = mail[0].body.lines().find(|l| l.starts_with("http://127.0.0.1:4566/?")).unwrap();
    let (status, xml) =
        send(&r, Method::GET, link.strip_prefix("http://127.0.0.1:4566").unwrap(), "").await;
    g.check("ConfirmSubscription-GET", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "Publish"),
            ("TopicArn", topic),
            ("Subject", "ALARM: cpu"),
            ("Message", "CPU above 90%"),
            ("MessageAttributes.entry.1.Name", "severity"),
            ("MessageAttributes.entry.1.Value.DataType", "String"),
            ("MessageAttributes.entry.1.Value.StringValue", "high"),
        ]),
    )
    .await;
    g.check("Publish", status, &xml);
    let delivered: Vec<(String, String)> =
        r.sns.mailbox(mail[0].id).unwrap().into_iter().map(|m| (m.to, m.subject)).collect();
    assert_eq!(delivered.len(), 2, "{delivered:?}");

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[("Action", "ListSubscriptionsByTopic"), ("TopicArn", topic)]),
    )
    .await;
    g.check("ListSubscriptionsByTopic", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[("Action", "GetTopicAttributes"), ("TopicArn", topic)]),
    )
    .await;
    g.check("GetTopicAttributes", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "PublishBatch"),
            ("TopicArn", topic),
            ("PublishBatchRequestEntries.member.1.Id", "one"),
            ("PublishBatchRequestEntries.member.1.Message", "first"),
            ("PublishBatchRequestEntries.member.2.Id", "two"),
            ("PublishBatchRequestEntries.member.2.Message", "second"),
            ("PublishBatchRequestEntries.member.2.Subject", ""),
        ]),
    )
    .await;
    g.check("PublishBatch", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[("Action", "ListTagsForResource"), ("ResourceArn", topic)]),
    )
    .await;
    g.check("ListTagsForResource", status, &xml);

    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "GetTopicAttributes"),
            ("TopicArn", "arn:aws:sns:us-east-1:000000000000:nope"),
        ]),
    )
    .await;
    g.check("Error-NotFound", status, &xml);
    let (status, xml) = send(
        &r,
        Method::POST,
        "/",
        &form(&[
            ("Action", "Subscribe"),
            ("TopicArn", topic),
            ("Protocol", "sms"),
            ("Endpoint", "+15555550100"),
        ]),
    )
    .await;
    g.check("Error-InvalidParameter", status, &xml);

    assert!(g.0.is_empty(), "{}", g.0.join("\n"));
}

#[tokio::test]
async fn links_in_messages_work_unsigned_when_the_region_checks_signatures() {
    let r = region(true);
    let topic = r.sns.create_topic("t", &Default::default(), &[]).unwrap();
    let sub = r.sns.subscribe(&topic.arn, "email", "a@example.com", &Default::default()).unwrap();
    let mail = r.sns.mailbox(0).unwrap();
    let link = mail[0].body.lines().find(|l| l.starts_with("http://127.0.0.1:4566/?")).unwrap();
    let path = link.strip_prefix("http://127.0.0.1:4566").unwrap();

    // Other actions still need a signature.
    let (status, xml) = send(&r, Method::GET, "/?Action=ListTopics&Version=2010-03-31", "").await;
    assert_eq!((status, element(&xml, "Code")), (403, "MissingAuthenticationToken".to_string()));
    // A wrong token is refused by SNS itself.
    let wrong = format!("/?Action=ConfirmSubscription&TopicArn={}&Token=00", topic.arn);
    let (status, xml) = send(&r, Method::GET, &wrong, "").await;
    assert_eq!((status, element(&xml, "Code")), (400, "InvalidParameter".to_string()));

    let (status, xml) = send(&r, Method::GET, path, "").await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(element(&xml, "SubscriptionArn"), sub.arn);
    assert!(!r.sns.subscription(&sub.arn).unwrap().pending);

    // The UnsubscribeURL of a notification mail.
    r.sns
        .publish(&sns::PublishInput {
            topic_arn: topic.arn.clone(),
            message: "m".into(),
            ..Default::default()
        })
        .unwrap();
    let note = r.sns.mailbox(mail[0].id).unwrap();
    let unsubscribe = note[0].body.lines().find(|l| l.contains("Action=Unsubscribe")).unwrap();
    let (status, xml) =
        send(&r, Method::GET, unsubscribe.strip_prefix("http://127.0.0.1:4566").unwrap(), "").await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.starts_with("<UnsubscribeResponse"), "{xml}");
    assert!(r.sns.subscription(&sub.arn).is_err());
}
