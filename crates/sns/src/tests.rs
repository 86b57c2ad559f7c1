//! SNS as a subscriber sees it: an HTTP endpoint on loopback that receives the handshake and
//! the notifications and checks each signature with the certificate SNS serves; retries on
//! paused time; raw delivery; filter policies; the mailbox.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::*;

fn sns() -> (Arc<Sns>, Arc<Store>, Clock) {
    let store = Arc::new(Store::in_memory().unwrap());
    let clock = Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let sns =
        Sns::new(store.clone(), clock.clone(), Account::default(), "http://127.0.0.1:4566".into());
    (sns, store, clock)
}

/// What the endpoint received.
#[derive(Debug)]
struct Received {
    headers: BTreeMap<String, String>,
    body: String,
    /// AWS time since the endpoint started.
    at: Duration,
}

impl Received {
    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An HTTP endpoint on loopback answering each request with the next status of `script` (200
/// once it runs out).
async fn endpoint(clock: Clock, script: &[u16]) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let script =
        Arc::new(parking_lot::Mutex::new(script.iter().copied().collect::<VecDeque<u16>>()));
    let start = clock.instant();
    tokio::spawn(async move {
        for _ in 0..1000 {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (tx, script, clock) = (tx.clone(), script.clone(), clock.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (tx, script, clock) = (tx.clone(), script.clone(), clock.clone());
                        async move {
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let _ = tx.send(Received {
                                headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                                at: clock.elapsed_aws(start),
                            });
                            let status = script.lock().pop_front().unwrap_or(200);
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(600), rx.recv())
        .await
        .expect("a delivery")
        .expect("the endpoint runs")
}

/// The string to sign, written from AWS's documentation ("Verifying the signatures of Amazon
/// SNS messages"), apart from the crate's own.
fn documented_string_to_sign(m: &Json) -> String {
    let keys: &[&str] = if m["Type"] == "Notification" {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    keys.iter()
        .filter_map(|k| m.get(*k).and_then(Json::as_str).map(|v| format!("{k}\n{v}\n")))
        .collect()
}

/// Checks a message's signature against the certificate SNS serves.
fn verify(sns: &Sns, m: &Json) {
    let pem = sns.signing_cert_pem().unwrap();
    assert_eq!(m["SigningCertURL"], sns.signing_cert_url());
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let key = cert.public_key().subject_public_key.data.to_vec();
    let algorithm: &dyn ring::signature::VerificationAlgorithm =
        match m["SignatureVersion"].as_str() {
            Some("1") => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Some("2") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            other => panic!("SignatureVersion {other:?}"),
        };
    let signature =
        base64::engine::general_purpose::STANDARD.decode(m["Signature"].as_str().unwrap()).unwrap();
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(documented_string_to_sign(m).as_bytes(), &signature)
        .expect("the signature verifies with the served certificate");
}

fn keys(m: &Json) -> Vec<&str> {
    m.as_object().unwrap().keys().map(String::as_str).collect()
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).unwrap().1.into_owned()
}

#[tokio::test]
async fn an_http_subscriber_confirms_then_receives_signed_notifications() {
    let (sns, _, clock) = sns();
    let (url, mut rx) = endpoint(clock, &[]).await;
    let topic = sns.create_topic("alerts", &BTreeMap::new(), &[]).unwrap();
    let sub = sns.subscribe(&topic.arn, "http", &url, &BTreeMap::new()).unwrap();
    assert!(sub.pending);

    let confirmation = next(&mut rx).await;
    let h = &confirmation.headers;
    assert_eq!(h["x-amz-sns-message-type"], "SubscriptionConfirmation");
    assert_eq!(h["x-amz-sns-topic-arn"], topic.arn);
    assert_eq!(h["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(h["user-agent"], "Amazon Simple Notification Service Agent");
    assert!(!h.contains_key("x-amz-sns-subscription-arn"));
    let m = confirmation.json();
    assert_eq!(
        keys(&m),
        [
            "Type",
            "MessageId",
            "Token",
            "TopicArn",
            "Message",
            "SubscribeURL",
            "Timestamp",
            "SignatureVersion",
            "Signature",
            "SigningCertURL"
        ]
    );
    assert_eq!(h["x-amz-sns-message-id"], m["MessageId"].as_str().unwrap());
    assert_eq!(
        m["Message"],
        "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:000000000000:alerts.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    );
    assert_eq!(m["Timestamp"].as_str().unwrap().len(), "2026-01-01T00:00:00.000Z".len());
    verify(&sns, &m);
    let subscribe_url = m["SubscribeURL"].as_str().unwrap();
    assert!(
        subscribe_url.starts_with("http://127.0.0.1:4566/?Action=ConfirmSubscription&TopicArn=")
    );
    assert_eq!(query_param(subscribe_url, "TopicArn"), topic.arn);

    // Nothing is delivered while pending.
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: "early".into(),
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(sns.unsubscribe(&sub.arn, true), Err(SnsError::InvalidParameter(_))));

    let confirmed =
        sns.confirm_subscription(&topic.arn, &query_param(subscribe_url, "Token"), false).unwrap();
    assert_eq!(confirmed.arn, sub.arn);
    assert!(!confirmed.pending);
    assert!(matches!(
        sns.confirm_subscription(&topic.arn, "wrong", false),
        Err(SnsError::InvalidParameter(_))
    ));

    let mut attributes = BTreeMap::new();
    attributes.insert(
        "severity".to_string(),
        MessageAttribute {
            data_type: "String".into(),
            string_value: Some("high".into()),
            binary_value: None,
        },
    );
    let published = sns
        .publish(&PublishInput {
            topic_arn: topic.arn.clone(),
            message: "CPU above 90%".into(),
            subject: Some("ALARM: cpu".into()),
            attributes,
            ..Default::default()
        })
        .unwrap();
    let n = next(&mut rx).await;
    assert_eq!(n.headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(n.headers["x-amz-sns-subscription-arn"], sub.arn);
    assert_eq!(n.headers["x-amz-sns-message-id"], published.message_id);
    let m = n.json();
    assert_eq!(
        keys(&m),
        [
            "Type",
            "MessageId",
            "TopicArn",
            "Subject",
            "Message",
            "Timestamp",
            "SignatureVersion",
            "Signature",
            "SigningCertURL",
            "UnsubscribeURL",
            "MessageAttributes"
        ]
    );
    assert_eq!(m["Message"], "CPU above 90%");
    assert_eq!(m["Subject"], "ALARM: cpu");
    assert_eq!(m["SignatureVersion"], "1");
    assert_eq!(
        m["MessageAttributes"],
        serde_json::json!({"severity": {"Type": "String", "Value": "high"}})
    );
    assert_eq!(
        m["UnsubscribeURL"],
        format!("http://127.0.0.1:4566/?Action=Unsubscribe&SubscriptionArn={}", sub.arn)
    );
    verify(&sns, &m);

    // SignatureVersion 2: SHA256withRSA; no subject, no Subject member.
    sns.set_topic_attribute(&topic.arn, "SignatureVersion", "2").unwrap();
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: "second".into(),
        ..Default::default()
    })
    .unwrap();
    let m = next(&mut rx).await.json();
    assert_eq!(m["SignatureVersion"], "2");
    assert!(m.get("Subject").is_none());
    verify(&sns, &m);

    // Unsubscribing tells the endpoint, with a link that would restore the subscription.
    sns.unsubscribe(&sub.arn, true).unwrap();
    let u = next(&mut rx).await;
    assert_eq!(u.headers["x-amz-sns-message-type"], "UnsubscribeConfirmation");
    assert_eq!(u.headers["x-amz-sns-subscription-arn"], sub.arn);
    verify(&sns, &u.json());
    assert!(matches!(sns.subscription(&sub.arn), Err(SnsError::NotFound(_))));
    sns.idle().await;
    assert!(rx.try_recv().is_err(), "nothing more");
}

async fn confirmed_http(
    sns: &Sns,
    topic: &str,
    url: &str,
    rx: &mut mpsc::UnboundedReceiver<Received>,
) -> Subscription {
    sns.subscribe(topic, "http", url, &BTreeMap::new()).unwrap();
    let m = next(rx).await.json();
    sns.confirm_subscription(topic, m["Token"].as_str().unwrap(), false).unwrap()
}

#[tokio::test(start_paused = true)]
async fn failed_deliveries_are_retried_by_the_delivery_policy_then_dropped() {
    let (sns, _, clock) = sns();
    // The confirmation goes through; the notification fails twice, then is taken.
    let (url, mut rx) = endpoint(clock.clone(), &[200, 500, 503, 200]).await;
    let topic = sns.create_topic("retries", &BTreeMap::new(), &[]).unwrap();
    let first = confirmed_http(&sns, &topic.arn, &url, &mut rx).await;
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: "m".into(),
        ..Default::default()
    })
    .unwrap();
    let tries: Vec<Received> = vec![next(&mut rx).await, next(&mut rx).await, next(&mut rx).await];
    let ids: Vec<&str> = tries.iter().map(|r| r.headers["x-amz-sns-message-id"].as_str()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "retries reuse the MessageId");
    let gaps: Vec<u64> = tries.windows(2).map(|w| (w[1].at - w[0].at).as_secs()).collect();
    assert_eq!(gaps, [20, 20], "AWS's default: 20 s apart");
    sns.idle().await;
    assert!(rx.try_recv().is_err());

    // A policy of two retries 5 s apart, every attempt failing: three tries, then dropped.
    let policy = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":5,"numRetries":2}}}"#;
    sns.set_topic_attribute(&topic.arn, "DeliveryPolicy", policy).unwrap();
    let (url2, mut rx2) = endpoint(clock.clone(), &[200, 500, 500, 500, 500]).await;
    sns.unsubscribe(&first.arn, true).unwrap();
    next(&mut rx).await; // the UnsubscribeConfirmation
    confirmed_http(&sns, &topic.arn, &url2, &mut rx2).await;
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: "m".into(),
        ..Default::default()
    })
    .unwrap();
    let tries = [next(&mut rx2).await, next(&mut rx2).await, next(&mut rx2).await];
    let gaps: Vec<u64> = tries.windows(2).map(|w| (w[1].at - w[0].at).as_secs()).collect();
    assert_eq!(gaps, [5, 5]);
    sns.idle().await;
    assert!(rx2.try_recv().is_err(), "dropped after the last retry");

    // An endpoint that does not answer within 15 s is a failure too: a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let sub = sns.subscribe(&topic.arn, "http", &closed, &BTreeMap::new()).unwrap();
    sns.idle().await;
    assert!(sub.pending);
}

#[tokio::test]
async fn raw_delivery_sends_the_message_alone() {
    let (sns, _, clock) = sns();
    let (url, mut rx) = endpoint(clock, &[]).await;
    let topic = sns.create_topic("raw", &BTreeMap::new(), &[]).unwrap();
    let sub = confirmed_http(&sns, &topic.arn, &url, &mut rx).await;
    sns.set_subscription_attribute(&sub.arn, "RawMessageDelivery", "true").unwrap();
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: "{\"a\":1}".into(),
        subject: Some("s".into()),
        ..Default::default()
    })
    .unwrap();
    let r = next(&mut rx).await;
    assert_eq!(r.body, "{\"a\":1}");
    assert_eq!(r.headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(r.headers["x-amz-sns-rawdelivery"], "true");
    // Email cannot be raw.
    let mail = sns.subscribe(&topic.arn, "email", "a@example.com", &BTreeMap::new()).unwrap();
    assert!(matches!(
        sns.set_subscription_attribute(&mail.arn, "RawMessageDelivery", "true"),
        Err(SnsError::InvalidParameter(_))
    ));
}

#[tokio::test]
async fn email_goes_to_the_mailbox_with_a_confirmation_link_that_works() {
    let (sns, _, _) = sns();
    let topic = sns.create_topic("mail", &BTreeMap::new(), &[]).unwrap();
    let sub = sns.subscribe(&topic.arn, "email", "ops@example.com", &BTreeMap::new()).unwrap();
    let json_sub =
        sns.subscribe(&topic.arn, "email-json", "bot@example.com", &BTreeMap::new()).unwrap();
    let mails = sns.mailbox(0).unwrap();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].to, "ops@example.com");
    assert_eq!(mails[0].subject, "AWS Notification - Subscription Confirmation");
    let link = mails[0].body.lines().find(|l| l.starts_with("http://")).unwrap();
    assert!(mails[0].body.starts_with(
        "You have chosen to subscribe to the topic: \narn:aws:sns:us-east-1:000000000000:mail\n"
    ));
    sns.confirm_subscription(&query_param(link, "TopicArn"), &query_param(link, "Token"), false)
        .unwrap();
    let m: Json = serde_json::from_str(&mails[1].body).unwrap();
    assert_eq!(m["Type"], "SubscriptionConfirmation");
    verify(&sns, &m);
    sns.confirm_subscription(&topic.arn, m["Token"].as_str().unwrap(), false).unwrap();

    let sqs = sns
        .subscribe(&topic.arn, "sqs", "arn:aws:sqs:us-east-1:000000000000:q", &BTreeMap::new())
        .unwrap();
    let lambda = sns
        .subscribe(
            &topic.arn,
            "lambda",
            "arn:aws:lambda:us-east-1:000000000000:function:f",
            &BTreeMap::new(),
        )
        .unwrap();
    assert!(!sqs.pending && !lambda.pending, "sqs and lambda are confirmed at once");

    let seen = mails.last().unwrap().id;
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: "disk full".into(),
        subject: Some("ALARM: disk".into()),
        ..Default::default()
    })
    .unwrap();
    let new = sns.mailbox(seen).unwrap();
    let mut summary: Vec<(&str, &str, &str)> =
        new.iter().map(|m| (m.to.as_str(), m.protocol.as_str(), m.subject.as_str())).collect();
    summary.sort();
    let by = |p: &str| new.iter().find(|m| m.protocol == p).unwrap();
    assert_eq!(
        summary,
        [
            (
                "arn:aws:lambda:us-east-1:000000000000:function:f",
                "lambda",
                "not delivered: no local Lambda"
            ),
            ("arn:aws:sqs:us-east-1:000000000000:q", "sqs", "not delivered: no local SQS"),
            ("bot@example.com", "email-json", "ALARM: disk"),
            ("ops@example.com", "email", "ALARM: disk"),
        ]
    );
    assert!(by("email").body.starts_with(
        "disk full\n\n--\nIf you wish to stop receiving notifications from this topic"
    ));
    assert!(by("email").body.contains(&format!("?Action=Unsubscribe&SubscriptionArn={}", sub.arn)));
    let j: Json = serde_json::from_str(&by("email-json").body).unwrap();
    assert_eq!(
        (j["Type"].as_str(), j["Message"].as_str()),
        (Some("Notification"), Some("disk full"))
    );
    verify(&sns, &j);
    let _ = json_sub;
    assert!(new.iter().all(|m| m.topic_arn == topic.arn));
}

#[tokio::test]
async fn filter_policies_choose_the_subscribers() {
    let (sns, _, _) = sns();
    let topic = sns.create_topic("orders", &BTreeMap::new(), &[]).unwrap();
    // (queue, scope, policy)
    let subscribers = [
        ("all", None, None),
        ("paid", None, Some(r#"{"status":["paid"]}"#)),
        ("big", None, Some(r#"{"total":[{"numeric":[">=",100]}]}"#)),
        ("eu", Some("MessageBody"), Some(r#"{"region":[{"prefix":"eu-"}]}"#)),
    ];
    for (q, scope, policy) in subscribers {
        let mut attrs = BTreeMap::new();
        if let Some(s) = scope {
            attrs.insert("FilterPolicyScope".to_string(), s.to_string());
        }
        if let Some(p) = policy {
            attrs.insert("FilterPolicy".to_string(), p.to_string());
        }
        sns.subscribe(
            &topic.arn,
            "sqs",
            &format!("arn:aws:sqs:us-east-1:000000000000:{q}"),
            &attrs,
        )
        .unwrap();
    }
    let attr = |ty: &str, v: &str| MessageAttribute {
        data_type: ty.into(),
        string_value: Some(v.into()),
        binary_value: None,
    };
    // (message, attributes, who gets it)
    type Case<'a> = (&'a str, Vec<(&'a str, MessageAttribute)>, &'a [&'a str]);
    let cases: [Case<'_>; 4] = [
        ("{}", vec![], &["all"]),
        ("{}", vec![("status", attr("String", "paid"))], &["all", "paid"]),
        (
            "{}",
            vec![("status", attr("String", "open")), ("total", attr("Number", "250"))],
            &["all", "big"],
        ),
        (r#"{"region":"eu-west-1"}"#, vec![("total", attr("Number", "99.5"))], &["all", "eu"]),
    ];
    for (message, attributes, expected) in cases {
        let seen = sns.mailbox(0).unwrap().last().map_or(0, |m| m.id);
        sns.publish(&PublishInput {
            topic_arn: topic.arn.clone(),
            message: message.into(),
            attributes: attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ..Default::default()
        })
        .unwrap();
        let got: Vec<String> = sns
            .mailbox(seen)
            .unwrap()
            .iter()
            .map(|m| m.to.rsplit(':').next().unwrap().to_string())
            .collect();
        let mut got = got;
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{message}");
    }
    let sub = sns.list_subscriptions_by_topic(&topic.arn, None).unwrap().items[0].clone();
    assert!(matches!(
        sns.set_subscription_attribute(&sub.arn, "FilterPolicy", r#"{"a":"not a list"}"#),
        Err(SnsError::InvalidParameter(_))
    ));
}

#[tokio::test]
async fn publish_checks_messages_as_sns_does() {
    let (sns, _, _) = sns();
    let topic = sns.create_topic("checks", &BTreeMap::new(), &[]).unwrap();
    let publish = |f: &dyn Fn(&mut PublishInput)| {
        let mut input = PublishInput {
            topic_arn: topic.arn.clone(),
            message: "m".into(),
            ..Default::default()
        };
        f(&mut input);
        match sns.publish(&input) {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{} {}", e.code(), e),
        }
    };
    let cases: Vec<(String, &str)> = vec![
        (publish(&|_| {}), "ok"),
        (publish(&|i| i.message.clear()), "InvalidParameter Invalid parameter: Empty message"),
        (
            publish(&|i| i.subject = Some("x".repeat(100))),
            "InvalidParameter Invalid parameter: Subject",
        ),
        (
            publish(&|i| i.subject = Some("a\nb".into())),
            "InvalidParameter Invalid parameter: Subject",
        ),
        (
            publish(&|i| i.message = "x".repeat(262_145)),
            "InvalidParameter Invalid parameter: Message too long",
        ),
        (
            publish(&|i| {
                i.message_structure = Some("json".into());
                i.message = r#"{"email":"e"}"#.into();
            }),
            "InvalidParameter Invalid parameter: Message Structure - No default entry in JSON message body",
        ),
        (
            publish(&|i| {
                i.attributes.insert(
                    "n".into(),
                    MessageAttribute {
                        data_type: "Number".into(),
                        string_value: Some("ten".into()),
                        binary_value: None,
                    },
                );
            }),
            "ParameterValueInvalid The message attribute 'n' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.",
        ),
        (publish(&|i| i.topic_arn.push('x')), "NotFound Topic does not exist"),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    assert_eq!(
        Notifier::publish(&*sns, "arn:aws:sns:us-east-1:000000000000:nope", None, "m"),
        Err("NotFound: Topic does not exist".to_string())
    );
    assert!(Notifier::publish(&*sns, &topic.arn, Some("s"), "m").is_ok());
}

#[tokio::test]
async fn a_json_message_structure_sends_each_protocol_its_own_message() {
    let (sns, _, _) = sns();
    let topic = sns.create_topic("structured", &BTreeMap::new(), &[]).unwrap();
    sns.subscribe(&topic.arn, "sqs", "arn:aws:sqs:us-east-1:000000000000:q", &BTreeMap::new())
        .unwrap();
    sns.subscribe(
        &topic.arn,
        "lambda",
        "arn:aws:lambda:us-east-1:000000000000:function:f",
        &BTreeMap::new(),
    )
    .unwrap();
    sns.publish(&PublishInput {
        topic_arn: topic.arn.clone(),
        message: r#"{"default":"plain","sqs":"for the queue"}"#.into(),
        message_structure: Some("json".into()),
        ..Default::default()
    })
    .unwrap();
    let messages: Vec<String> = sns
        .mailbox(0)
        .unwrap()
        .iter()
        .map(|m| {
            serde_json::from_str::<Json>(&m.body).unwrap()["Message"].as_str().unwrap().to_string()
        })
        .collect();
    let mut messages = messages;
    messages.sort();
    assert_eq!(messages, ["for the queue", "plain"]);
}

#[test]
fn topics_subscriptions_and_paging() {
    let store = Arc::new(Store::in_memory().unwrap());
    let sns =
        Sns::new(store.clone(), Clock::real(), Account::default(), "http://127.0.0.1:4566".into());
    let cases = [
        ("", "InvalidParameter"),
        ("has space", "InvalidParameter"),
        ("a.fifo", "InvalidParameter"), // .fifo without FifoTopic
        (&*"x".repeat(257), "InvalidParameter"),
    ];
    for (name, code) in cases {
        assert_eq!(
            sns.create_topic(name, &BTreeMap::new(), &[]).unwrap_err().code(),
            code,
            "{name}"
        );
    }
    let fifo: BTreeMap<String, String> = [("FifoTopic".to_string(), "true".to_string())].into();
    let t = sns.create_topic("orders.fifo", &fifo, &[]).unwrap();
    assert!(t.fifo);
    assert_eq!(sns.topic_attributes(&t.arn).unwrap()["FifoTopic"], "true");
    let no_group = sns.publish(&PublishInput {
        topic_arn: t.arn.clone(),
        message: "m".into(),
        ..Default::default()
    });
    assert!(matches!(no_group, Err(SnsError::InvalidParameter(_))));
    let ok = sns
        .publish(&PublishInput {
            topic_arn: t.arn.clone(),
            message: "m".into(),
            group_id: Some("g".into()),
            deduplication_id: Some("d".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ok.sequence_number.map(|s| s.len()), Some(20));

    for i in 0..249 {
        sns.create_topic(&format!("t{i:03}"), &BTreeMap::new(), &[]).unwrap();
    }
    let mut pages = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = sns.list_topics(token.as_deref()).unwrap();
        pages.push(page.items.len());
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, [100, 100, 50]);
    assert_eq!(sns.list_topics(Some("!!")).unwrap_err().code(), "InvalidParameter");

    // Same name, same attributes: the same topic; different attributes: refused.
    let display: BTreeMap<String, String> = [("DisplayName".to_string(), "A".to_string())].into();
    let a = sns.create_topic("named", &display, &[("k".into(), "v".into())]).unwrap();
    assert_eq!(sns.create_topic("named", &display, &[]).unwrap().arn, a.arn);
    let other: BTreeMap<String, String> = [("DisplayName".to_string(), "B".to_string())].into();
    assert_eq!(sns.create_topic("named", &other, &[]).unwrap_err().code(), "InvalidParameter");
    assert_eq!(sns.tags(&a.arn).unwrap(), [("k".to_string(), "v".to_string())]);
    sns.tag(&a.arn, &[("k".into(), "w".into()), ("j".into(), "x".into())]).unwrap();
    sns.untag(&a.arn, &["j".into()]).unwrap();
    assert_eq!(sns.tags(&a.arn).unwrap(), [("k".to_string(), "w".to_string())]);
    assert_eq!(sns.tags(&format!("{}x", a.arn)).unwrap_err().code(), "ResourceNotFound");
    assert_eq!(
        sns.set_topic_attribute(&a.arn, "Bogus", "1").unwrap_err().code(),
        "InvalidParameter"
    );
    assert_eq!(
        sns.set_topic_attribute(&a.arn, "SignatureVersion", "3").unwrap_err().code(),
        "InvalidParameter"
    );

    // Protocols and endpoints.
    let sub = |protocol: &str, endpoint: &str| match sns.subscribe(
        &a.arn,
        protocol,
        endpoint,
        &BTreeMap::new(),
    ) {
        Ok(s) => if s.pending { "pending" } else { "confirmed" }.to_string(),
        Err(e) => e.code().to_string(),
    };
    assert_eq!(sub("sqs", "arn:aws:sqs:us-east-1:000000000000:q"), "confirmed");
    assert_eq!(sub("sms", "+15555550100"), "InvalidParameter");
    assert_eq!(sub("http", "https://example.com"), "InvalidParameter");
    assert_eq!(sub("email", "nobody"), "InvalidParameter");
    assert_eq!(sub("lambda", "arn:aws:sqs:us-east-1:000000000000:q"), "InvalidParameter");
    assert_eq!(sns.list_subscriptions(None).unwrap().items.len(), 1);
    let attrs = sns.topic_attributes(&a.arn).unwrap();
    assert_eq!(
        (attrs["SubscriptionsConfirmed"].as_str(), attrs["DisplayName"].as_str()),
        ("1", "A")
    );

    // Deleting the topic takes its subscriptions.
    sns.delete_topic(&a.arn).unwrap();
    assert!(sns.list_subscriptions(None).unwrap().items.is_empty());
    sns.delete_topic(&a.arn).unwrap();

    // A store that fails is an InternalError (500), never "not found".
    store.inject(store::Faults::All);
    let e = sns.topic_attributes(&t.arn).unwrap_err();
    assert_eq!((e.code(), e.status()), ("InternalError", 500));
    store.inject(store::Faults::Writes);
    let e = sns.create_topic("more", &BTreeMap::new(), &[]).unwrap_err();
    assert_eq!((e.code(), e.status()), ("InternalError", 500));
}

#[tokio::test(start_paused = true)]
async fn unconfirmed_subscriptions_expire_after_48_hours() {
    let (sns, _, _) = sns();
    let topic = sns.create_topic("expiry", &BTreeMap::new(), &[]).unwrap();
    let pending = sns.subscribe(&topic.arn, "email", "a@example.com", &BTreeMap::new()).unwrap();
    let confirmed = sns
        .subscribe(&topic.arn, "sqs", "arn:aws:sqs:us-east-1:000000000000:q", &BTreeMap::new())
        .unwrap();
    tokio::time::advance(Duration::from_secs(47 * 3600)).await;
    assert_eq!(sns.list_subscriptions_by_topic(&topic.arn, None).unwrap().items.len(), 2);
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    let left: Vec<String> = sns
        .list_subscriptions_by_topic(&topic.arn, None)
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.arn)
        .collect();
    assert_eq!(left, [confirmed.arn]);
    assert!(matches!(sns.subscription(&pending.arn), Err(SnsError::NotFound(_))));
}

#[test]
fn batches_are_checked_as_sns_checks_them() {
    let (sns, _, _) = sns();
    let topic = sns.create_topic("batch", &BTreeMap::new(), &[]).unwrap();
    let entry = |id: &str, message: &str| BatchEntry {
        id: id.into(),
        input: PublishInput { message: message.into(), ..Default::default() },
    };
    let r = sns.publish_batch(&topic.arn, &[entry("a", "1"), entry("b", "")]).unwrap();
    assert_eq!(r.successful.len(), 1);
    assert_eq!(r.failed[0].id, "b");
    assert_eq!(r.failed[0].code, "InvalidParameter");
    assert!(r.failed[0].sender_fault);
    let code = |entries: &[BatchEntry]| sns.publish_batch(&topic.arn, entries).unwrap_err().code();
    assert_eq!(code(&[]), "EmptyBatchRequest");
    assert_eq!(code(&[entry("a", "1"), entry("a", "2")]), "BatchEntryIdsNotDistinct");
    assert_eq!(code(&[entry("a b", "1")]), "InvalidBatchEntryId");
    let eleven: Vec<BatchEntry> = (0..11).map(|i| entry(&format!("e{i}"), "m")).collect();
    assert_eq!(code(&eleven), "TooManyEntriesInBatchRequest");
}
