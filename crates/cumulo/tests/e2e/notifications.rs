//! Alerts reach a person: the widdix seed's 5XX alarm notifies an SNS topic with an HTTP
//! subscriber on loopback (confirmation, then the alarm's JSON, each signature checked against
//! the certificate the region serves) and an email subscription (the local mailbox); the group's
//! launch and termination notifications arrive when it replaces a killed instance; an app's
//! "Error" lines, shipped by its CloudWatch agent, counted by a metric filter, raise an alarm that
//! mails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use crate::fleet::{Region, Stack};
use crate::support::{aws, eventually, http, instances, run};

/// What the subscriber received: each POST's headers (lower-case names) and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A loopback HTTP endpoint that keeps every POST (headers and body) and answers 200; it
/// stops by itself after two minutes.
fn subscriber() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sns", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            keep.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

/// Checks an SNS message's signature as AWS documents it, with the certificate its
/// SigningCertURL serves.
fn verify(m: &serde_json::Value) {
    let (status, pem) = http("GET", m["SigningCertURL"].as_str().unwrap(), &[]);
    assert_eq!(status, 200, "{pem}");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let key = cert.public_key().subject_public_key.data.to_vec();
    let keys: &[&str] = if m["Type"] == "Notification" {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    let text: String = keys
        .iter()
        .filter_map(|k| m.get(*k).and_then(|v| v.as_str()).map(|v| format!("{k}\n{v}\n")))
        .collect();
    let algorithm: &dyn ring::signature::VerificationAlgorithm =
        match m["SignatureVersion"].as_str() {
            Some("1") => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            _ => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        };
    let signature =
        base64::engine::general_purpose::STANDARD.decode(m["Signature"].as_str().unwrap()).unwrap();
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(text.as_bytes(), &signature)
        .expect("the message's signature verifies with the served certificate");
}

#[test]
fn a_5xx_alarm_reaches_an_http_subscriber_and_the_mailbox_and_the_group_reports_its_instances() {
    let region = Region::start("60");
    let (endpoint, seen) = subscriber();
    let extra = format!(
        r#"
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      Subscription:
        - {{Protocol: http, Endpoint: "{endpoint}"}}
        - {{Protocol: email, Endpoint: ops@example.com}}
  Http5xx:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: targets-5xx
      AlarmDescription: Application is returning 5XX errors (widdix)
      Namespace: AWS/ApplicationELB
      MetricName: HTTPCode_Target_5XX_Count
      Dimensions:
        - {{Name: LoadBalancer, Value: !GetAtt Alb.LoadBalancerFullName}}
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref Alerts]
"#
    );
    let stack = Stack { desired: 2, sizes: (2, 4), extra: &extra, ..Stack::default() };
    region.deploy(&stack.render(), &[]);
    // The subscriber is asked to confirm, and confirms by GET of the SubscribeURL.
    eventually("a subscription confirmation", Duration::from_secs(20), || {
        seen.lock().unwrap().iter().any(|(_, b)| b.contains("SubscriptionConfirmation"))
    });
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert!(
        headers.contains(&("x-amz-sns-message-type".into(), "SubscriptionConfirmation".into())),
        "{headers:?}"
    );
    let confirmation: serde_json::Value = serde_json::from_str(&body).unwrap();
    verify(&confirmation);
    let (status, answer) = http("GET", confirmation["SubscribeURL"].as_str().unwrap(), &[]);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("<SubscriptionArn>arn:aws:sns:"), "{answer}");
    // The email subscription's confirmation link is in the mailbox; following it confirms.
    let (_, mail, _) = run(&["mail", "--endpoint-url", &region.endpoint], region.path());
    assert!(mail.contains("AWS Notification - Subscription Confirmation"), "{mail}");
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("Action=ConfirmSubscription"))
        .unwrap_or_else(|| panic!("{mail}"))
        .to_string();
    assert_eq!(http("GET", &link, &[]).0, 200);
    // Auto Scaling tells the topic of launches and terminations.
    let topic = confirmation["TopicArn"].as_str().unwrap().to_string();
    let (ok, out, err) = aws(
        &region.endpoint,
        &[
            "autoscaling",
            "put-notification-configuration",
            "--auto-scaling-group-name",
            "web",
            "--topic-arn",
            &topic,
            "--notification-types",
            "autoscaling:EC2_INSTANCE_LAUNCH",
            "autoscaling:EC2_INSTANCE_TERMINATE",
        ],
        region.path(),
    );
    assert!(ok, "{out}{err}");
    // An app starts failing: its 5XXs through the ALB raise the alarm.
    let all = instances(&region.endpoint);
    let sick = all.iter().find(|i| i["state"] == "running").unwrap();
    let port = sick["ports"][0]["host"].as_u64().unwrap();
    assert_eq!(http("GET", &format!("http://127.0.0.1:{port}/fail"), &[]).0, 200);
    let url = region.url();
    for _ in 0..20 {
        let _ = http("GET", &format!("{url}index.html"), &[]);
    }
    eventually("the alarm's notification at the subscriber", Duration::from_secs(30), || {
        seen.lock().unwrap().iter().any(|(_, b)| b.contains("targets-5xx"))
    });
    let (headers, body) =
        seen.lock().unwrap().iter().find(|(_, b)| b.contains("targets-5xx")).cloned().unwrap();
    assert!(
        headers.contains(&("x-amz-sns-message-type".into(), "Notification".into())),
        "{headers:?}"
    );
    let note: serde_json::Value = serde_json::from_str(&body).unwrap();
    verify(&note);
    assert_eq!(note["Subject"], "ALARM: \"targets-5xx\" in US East (N. Virginia)");
    let alarm: serde_json::Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
    assert_eq!(alarm["NewStateValue"], "ALARM");
    assert_eq!(alarm["Trigger"]["MetricName"], "HTTPCode_Target_5XX_Count");
    assert_eq!(alarm["Trigger"]["Statistic"], "SUM");
    // The same alarm in the mailbox (the email subscription is confirmed).
    eventually("the alarm mail", Duration::from_secs(20), || {
        let (_, mail, _) = run(&["mail", "--endpoint-url", &region.endpoint], region.path());
        mail.contains("ALARM: \"targets-5xx\"")
    });
    // The failing instance is replaced (ELB health checks): launch and termination notices.
    eventually("the group's notifications", Duration::from_secs(60), || {
        let seen = seen.lock().unwrap();
        seen.iter().any(|(_, b)| b.contains("autoscaling:EC2_INSTANCE_TERMINATE"))
            && seen.iter().any(|(_, b)| b.contains("autoscaling:EC2_INSTANCE_LAUNCH"))
    });
    region.stop();
}

/// The widdix seed's log pipeline: an app writes lines to a file its CloudWatch agent ships,
/// a metric filter counts the "Error" ones, and the alarm on that count notifies.
const LOGGING_APP: &str = r#"#!/bin/bash
mkdir -p $HOME/root/opt/aws/amazon-cloudwatch-agent/etc $HOME/root/var/log/app
cat > $HOME/root/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'EOF'
{"logs": {"logs_collected": {"files": {"collect_list": [
  {"file_path": "/var/log/app/app.log", "log_group_name": "app-logs", "log_stream_name": "{instance_id}"}
]}}}}
EOF
for i in $(seq 1 400); do
  echo "request $i ok" >> $HOME/root/var/log/app/app.log
  echo "Error: request $i failed" >> $HOME/root/var/log/app/app.log
  sleep 0.05
done
exec sleep 600
"#;

#[test]
fn error_lines_in_an_app_log_are_counted_by_a_metric_filter_and_alarm() {
    let region = Region::start("60");
    let template = format!(
        r#"
Resources:
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      Subscription: [{{Protocol: email, Endpoint: ops@example.com}}]
  AppLogs:
    Type: AWS::Logs::LogGroup
    Properties: {{LogGroupName: app-logs, RetentionInDays: 14}}
  ErrorFilter:
    Type: AWS::Logs::MetricFilter
    Properties:
      LogGroupName: !Ref AppLogs
      FilterPattern: Error
      MetricTransformations:
        - {{MetricName: AppErrors, MetricNamespace: App, MetricValue: "1"}}
  ErrorAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: app-errors
      Namespace: App
      MetricName: AppErrors
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 5
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions: [!Ref Alerts]
  Server:
    Type: AWS::EC2::Instance
    DependsOn: ErrorFilter
    Properties:
      ImageId: ami-12345678
      UserData: {{"Fn::Base64": {user_data:?}}}
"#,
        user_data = LOGGING_APP
    );
    region.deploy(&template, &[]);
    // The subscriber confirms from the confirmation mail.
    let (_, mail, _) = run(&["mail", "--endpoint-url", &region.endpoint], region.path());
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("Action=ConfirmSubscription"))
        .unwrap_or_else(|| panic!("{mail}"))
        .to_string();
    assert_eq!(http("GET", &link, &[]).0, 200);
    // The lines reach the group, searchable by pattern.
    eventually("the app's lines in the log group", Duration::from_secs(30), || {
        let (ok, out, _) = aws(
            &region.endpoint,
            &[
                "logs",
                "filter-log-events",
                "--log-group-name",
                "app-logs",
                "--filter-pattern",
                "Error",
                "--limit",
                "5",
            ],
            region.path(),
        );
        ok && out.contains("Error: request")
    });
    let (ok, out, _) = aws(
        &region.endpoint,
        &[
            "logs",
            "filter-log-events",
            "--log-group-name",
            "app-logs",
            "--filter-pattern",
            "Error",
            "--limit",
            "5",
        ],
        region.path(),
    );
    assert!(ok && !out.contains("request 1 ok"), "only the Error lines: {out}");
    let (ok, shown, err) = run(
        &["logs", "--group", "app-logs", "--filter", "Error", "--endpoint-url", &region.endpoint],
        region.path(),
    );
    assert!(
        ok && shown.contains("Error: request 1 failed") && !shown.contains(" ok"),
        "{shown}{err}"
    );
    // The metric filter's count raises the alarm, which mails the topic's subscriber.
    eventually("the alarm on the error count", Duration::from_secs(40), || {
        let (_, alarms, _) =
            run(&["alarms", "--output", "json", "--endpoint-url", &region.endpoint], region.path());
        alarms.contains("\"state\":\"ALARM\"")
    });
    let (ok, stats, _) =
        aws(&region.endpoint, &["cloudwatch", "list-metrics", "--namespace", "App"], region.path());
    assert!(ok && stats.contains("AppErrors"), "{stats}");
    eventually("the alarm's mail", Duration::from_secs(20), || {
        let (_, mail, _) = run(&["mail", "--endpoint-url", &region.endpoint], region.path());
        mail.contains("ALARM: \"app-errors\"")
    });
    region.stop();
}
