//! The monitoring loop end to end, on a time-scaled region (a minute of AWS time is a second):
//! target tracking on ALBRequestCountPerTarget follows a load loop through the ALB; a recovery
//! alarm on StatusCheckFailed_System brings a killed instance back with its id and address;
//! the aws CLI reads the metrics and alarms in AWS's shapes. (CPU-driven scaling is in
//! `tests/scaling`, a test binary of its own, so that no other test shares its CPU.)

use std::time::{Duration, Instant};

use crate::fleet::{Load, Region, Stack, demo_app, watch};
use crate::support::{aws, eventually, http, instances, run};

#[test]
fn target_tracking_on_requests_per_target_follows_a_load_loop() {
    let region = Region::start("60");
    let tracking = r#"
  Tracking:
    Type: AWS::AutoScaling::ScalingPolicy
    Properties:
      AutoScalingGroupName: !Ref Asg
      PolicyType: TargetTrackingScaling
      EstimatedInstanceWarmup: 60
      TargetTrackingConfiguration:
        TargetValue: 20
        PredefinedMetricSpecification:
          PredefinedMetricType: ALBRequestCountPerTarget
          ResourceLabel: !Join ["/", [!GetAtt Alb.LoadBalancerFullName, !GetAtt Tg.TargetGroupFullName]]
"#;
    let stack = Stack { desired: 2, sizes: (2, 4), extra: tracking, ..Stack::default() };
    region.deploy(&stack.render(), &[]);
    let started = Instant::now();
    let mut timeline = Vec::new();
    assert!(
        watch(&region, started, Duration::from_secs(30), &mut timeline, |(d, s)| d == 2 && s == 2)
    );
    // Target tracking made its two alarms, as AWS names them.
    let (ok, out, _) = aws(
        &region.endpoint,
        &["cloudwatch", "describe-alarms", "--alarm-name-prefix", "TargetTracking-web-"],
        region.path(),
    );
    assert!(ok, "{out}");
    assert!(out.contains("-AlarmHigh-") && out.contains("-AlarmLow-"), "{out}");
    // A second of real time is a minute: ~100 requests a second are ~50 per target a minute,
    // over the target of 20.
    let url = region.url();
    let load = Load::start(&url);
    timeline.push(format!("{:>5.1}s load starts", started.elapsed().as_secs_f64()));
    let grew = watch(&region, started, Duration::from_secs(40), &mut timeline, |(d, _)| d > 2);
    let (requests, failures, elapsed) = load.finish();
    timeline.push(format!(
        "{:>5.1}s load stops: {requests} requests in {elapsed:?}, {} failed",
        started.elapsed().as_secs_f64(),
        failures.len()
    ));
    assert!(grew, "the group did not grow under load:\n{}", timeline.join("\n"));
    // Without requests the metric is 0 per target: the low alarm (15 of 15 minutes) scales in.
    let shrank = watch(&region, started, Duration::from_secs(60), &mut timeline, |(d, _)| d == 2);
    let (_, alarms, _) = run(&["alarms", "--endpoint-url", &region.endpoint], region.path());
    println!("capacity timeline:\n{}\n{alarms}", timeline.join("\n"));
    assert!(shrank, "the group did not shrink after the load:\n{}\n{alarms}", timeline.join("\n"));
    region.stop();
}

/// UserData that configures the CloudWatch agent as tutorials do (memory and disk, with the
/// instance's id as the dimension), then runs the demo app.
const AGENT: &str = r#"#!/bin/bash
mkdir -p $HOME/root/opt/aws/amazon-cloudwatch-agent/etc
cat > $HOME/root/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'EOF'
{"metrics": {"append_dimensions": {"InstanceId": "${aws:InstanceId}"},
 "metrics_collected": {"mem": {"measurement": ["mem_used_percent"]},
                       "disk": {"measurement": ["used_percent"], "resources": ["/"]}}}}
EOF
"#;

#[test]
fn a_recovery_alarm_brings_a_killed_instance_back_with_its_id_and_address() {
    let region = Region::start("60");
    let template = format!(
        r#"
Resources:
  Server:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
      InstanceType: t2.micro
      UserData: {{"Fn::Base64": {user_data:?}}}
  RecoveryAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: Recover the server when its host fails (AWS in Action, chapter 13)
      Namespace: AWS/EC2
      MetricName: StatusCheckFailed_System
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 5
      ComparisonOperator: GreaterThanThreshold
      Threshold: 0
      AlarmActions: [!Sub "arn:aws:automate:${{AWS::Region}}:ec2:recover"]
      Dimensions: [{{Name: InstanceId, Value: !Ref Server}}]
"#,
        user_data = AGENT.to_string() + demo_app("v1").trim_start_matches("#!/bin/bash\n")
    );
    region.deploy(&template, &[]);
    let server = || {
        instances(&region.endpoint)
            .into_iter()
            .find(|i| i["state"] == "running")
            .unwrap_or_default()
    };
    let before = server();
    let id = before["instanceId"].as_str().unwrap().to_string();
    let ip = before["privateIp"].as_str().unwrap().to_string();
    let machine = before["machinePid"].as_u64();
    let port = before["ports"][0]["host"].as_u64().unwrap();
    let app = format!("http://127.0.0.1:{port}/");
    let answers = || {
        std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_ok()
            && http("GET", &app, &[]).0 == 200
    };
    eventually("the app to answer", Duration::from_secs(20), answers);
    // A few minutes of healthy status checks, then the host dies.
    std::thread::sleep(Duration::from_secs(3));
    let (ok, out, err) =
        run(&["chaos", "kill-instance", &id, "--endpoint-url", &region.endpoint], region.path());
    assert!(ok, "{out}{err}");
    eventually("the app to be gone with its machine", Duration::from_secs(10), || !answers());
    // Still running, impaired: EC2's status says so.
    let (ok, status, _) = aws(
        &region.endpoint,
        &["ec2", "describe-instance-status", "--instance-ids", &id],
        region.path(),
    );
    assert!(ok && status.contains("impaired"), "{status}");
    eventually("the alarm to recover the instance", Duration::from_secs(30), || {
        let now = server();
        now["instanceId"] == id.as_str()
            && now["machinePid"].as_u64().is_some()
            && now["machinePid"].as_u64() != machine
            && answers()
    });
    let after = server();
    assert_eq!(after["privateIp"].as_str(), Some(ip.as_str()), "same private address");
    let (ok, out, _) = aws(
        &region.endpoint,
        &["cloudwatch", "describe-alarm-history", "--history-item-type", "Action"],
        region.path(),
    );
    assert!(ok && out.contains("Successfully executed action arn:aws:automate:"), "{out}");
    // The metric as `aws cloudwatch get-metric-statistics` gives it (over RPCv2-CBOR, as
    // botocore speaks it): 1 while the host was down, in the region's AWS time.
    let (_, clock) = http("GET", &format!("{}/_cumulo/clock", region.endpoint), &[]);
    let now = serde_json::from_str::<serde_json::Value>(&clock).unwrap()["now"].as_f64().unwrap();
    let (ok, out, err) = aws(
        &region.endpoint,
        &[
            "cloudwatch",
            "get-metric-statistics",
            "--namespace",
            "AWS/EC2",
            "--metric-name",
            "StatusCheckFailed_System",
            "--dimensions",
            &format!("Name=InstanceId,Value={id}"),
            "--start-time",
            &format!("{}", now as i64 - 3_600),
            "--end-time",
            &format!("{}", now as i64 + 60),
            "--period",
            "60",
            "--statistics",
            "Maximum",
        ],
        region.path(),
    );
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Label"], "StatusCheckFailed_System");
    // The agent's memory and disk metrics, as its configuration asks.
    let (ok, out, _) = aws(
        &region.endpoint,
        &["cloudwatch", "list-metrics", "--namespace", "CWAgent"],
        region.path(),
    );
    assert!(ok && out.contains("mem_used_percent") && out.contains("disk_used_percent"), "{out}");
    assert!(out.contains(&id), "{out}");
    let maxima: Vec<f64> =
        v["Datapoints"].as_array().unwrap().iter().filter_map(|d| d["Maximum"].as_f64()).collect();
    assert!(maxima.contains(&1.0) && maxima.contains(&0.0), "{out}");
    region.stop();
}
