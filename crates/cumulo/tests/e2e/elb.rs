//! The load balancer with real instances and real HTTP: the edX lab (two instances in two
//! zones behind an ALB; one fails its health check, traffic moves to the other, it comes
//! back), draining on deregistration, HTTPS with the local CA and HTTP/2, and the elbv2 API.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::{Running, aws, eventually, http, instances, run};

/// The edX lab's architecture: two instances in two zones, an ALB on port 80 health-checking
/// `/health` every 5 s (2 checks to change state), an HTTPS listener with an ACM certificate.
const EDX_LAB: &str = r##"
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, AvailabilityZone: !Select [0, !GetAZs ""]}
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24, AvailabilityZone: !Select [1, !GetAZs ""]}
  WebServerSg:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: Allow SSH and HTTP traffic
      VpcId: !Ref Vpc
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: 80, ToPort: 80, CidrIp: 0.0.0.0/0}
        - {IpProtocol: tcp, FromPort: 22, ToPort: 22, CidrIp: 0.0.0.0/0}
  WebServer1:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
      InstanceType: t2.micro
      SubnetId: !Ref SubnetA
      SecurityGroupIds: [!Ref WebServerSg]
      UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80\n"}
      Tags: [{Key: Name, Value: WebServer1}]
  WebServer2:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
      InstanceType: t2.micro
      SubnetId: !Ref SubnetB
      SecurityGroupIds: [!Ref WebServerSg]
      UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80\n"}
      Tags: [{Key: Name, Value: WebServer2}]
  PhotosAlb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties:
      Name: photos-alb
      Subnets: [!Ref SubnetA, !Ref SubnetB]
      SecurityGroups: [!Ref WebServerSg]
  PhotosTg:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      Name: photos-tg
      VpcId: !Ref Vpc
      Protocol: HTTP
      Port: 80
      HealthCheckPath: /health
      HealthCheckIntervalSeconds: 5
      HealthCheckTimeoutSeconds: 2
      HealthyThresholdCount: 2
      UnhealthyThresholdCount: 2
      TargetGroupAttributes:
        - {Key: deregistration_delay.timeout_seconds, Value: "20"}
      Targets: [{Id: !Ref WebServer1}, {Id: !Ref WebServer2}]
  Http:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref PhotosAlb
      Port: 80
      Protocol: HTTP
      DefaultActions: [{Type: forward, TargetGroupArn: !Ref PhotosTg}]
  Https:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref PhotosAlb
      Port: 443
      Protocol: HTTPS
      Certificates: [{CertificateArn: arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012}]
      DefaultActions: [{Type: forward, TargetGroupArn: !Ref PhotosTg}]
  Maintenance:
    Type: AWS::ElasticLoadBalancingV2::ListenerRule
    Properties:
      ListenerArn: !Ref Http
      Priority: 10
      Conditions: [{Field: path-pattern, PathPatternConfig: {Values: [/maintenance*]}}]
      Actions: [{Type: fixed-response, FixedResponseConfig: {StatusCode: "503", ContentType: text/plain, MessageBody: down for maintenance}}]
Outputs:
  Url: {Value: !Sub "http://${PhotosAlb.DNSName}/"}
  SecureUrl: {Value: !Sub "https://${PhotosAlb.DNSName}/"}
  TargetGroup: {Value: !Ref PhotosTg}
"##;

/// The instance ids that answered `n` requests to `url`.
fn answering(url: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| {
            let (status, body) = http("GET", url, &[]);
            (status == 200).then(|| body.split_whitespace().nth(2).unwrap_or_default().to_string())
        })
        .collect()
}

/// Waits (bounded) until every instance of `ids` answers through `url`.
fn wait_for_all(url: &str, ids: &BTreeSet<String>) {
    let mut seen = BTreeSet::new();
    let started = Instant::now();
    while &seen != ids {
        let probe: Vec<(u16, String)> = (0..2).map(|_| http("GET", url, &[])).collect();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "every instance answers through {url}: {seen:?} vs {ids:?}; last: {probe:?}"
        );
        seen = answering(url, 6);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output(outputs: &str, key: &str) -> String {
    let line = outputs
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no {key} in {outputs}"));
    line.split_whitespace()
        .find(|w| w.starts_with("http") || w.starts_with("arn:"))
        .unwrap()
        .to_string()
}

/// Starts `cumulo serve ARGS` in `dir`, deploys `template` as stack `photos` and returns the
/// server, its endpoint and what `cumulo outputs photos` prints.
fn deploy_lab(dir: &std::path::Path, template: &str, args: &[&str]) -> (Running, String, String) {
    deploy_lab_with(dir, template, args, &[])
}

/// [`deploy_lab`] with extra environment variables for the server.
fn deploy_lab_with(
    dir: &std::path::Path,
    template: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Running, String, String) {
    std::fs::write(dir.join("photos.yaml"), template).unwrap();
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut server = Running::start_with(&all, dir, env);
    let endpoint = server.endpoint();
    let (ok, out, err) = run(&["deploy", "photos.yaml", "--endpoint-url", &endpoint], dir);
    assert!(ok, "{out}{err}");
    let (_, outputs, _) = run(&["outputs", "photos", "--endpoint-url", &endpoint], dir);
    (server, endpoint, outputs)
}

#[test]
fn edx_lab_traffic_leaves_a_failing_instance_and_returns_when_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // 5 s health checks at time scale 5: one check a second.
    let (mut server, endpoint, outputs) =
        deploy_lab(dir.path(), EDX_LAB, &["--ephemeral", "--time-scale", "5"]);
    let url = output(&outputs, "Url");
    assert!(url.starts_with("http://127.0.1."), "the URL answers on a loopback address: {outputs}");
    let target_group = output(&outputs, "TargetGroup");

    // Both instances take traffic once their first check passed.
    let list = instances(&endpoint);
    let ids: BTreeSet<String> =
        list.iter().map(|i| i["instanceId"].as_str().unwrap().to_string()).collect();
    wait_for_all(&url, &ids);

    // A rule answers by itself.
    let (status, body) = http("GET", &format!("{url}maintenance/now"), &[]);
    assert_eq!((status, body.as_str()), (503, "down for maintenance"));

    // Metrics with AWS/ApplicationELB names and dimensions.
    let (status, body) = http("GET", &format!("{endpoint}/_cumulo/metrics"), &[]);
    assert_eq!(status, 200, "{body}");
    let samples: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let find = |name: &str, dims: usize| {
        samples
            .iter()
            .find(|s| s["metricName"] == name && s["dimensions"].as_object().unwrap().len() == dims)
            .unwrap_or_else(|| panic!("{name} with {dims} dimensions in {body}"))
            .clone()
    };
    let healthy = find("HealthyHostCount", 2);
    assert_eq!(healthy["value"], 2.0, "{healthy}");
    assert!(
        healthy["dimensions"]["TargetGroup"]
            .as_str()
            .unwrap()
            .starts_with("targetgroup/photos-tg/")
    );
    assert!(find("RequestCount", 1)["value"].as_f64().unwrap() >= 6.0, "{body}");
    assert_eq!(find("HTTP_Fixed_Response_Count", 1)["value"], 1.0, "{body}");

    // WebServer1 fails its health check: after 2 failed checks (2 x 5 s = 2 s here) every
    // request goes to WebServer2.
    let one = list.iter().find(|i| i["tags"]["Name"] == "WebServer1").unwrap();
    let one_id = one["instanceId"].as_str().unwrap().to_string();
    let (status, _) =
        http("GET", &format!("http://127.0.0.1:{}/fail", one["ports"][0]["host"]), &[]);
    assert_eq!(status, 200);
    let failed_at = Instant::now();
    eventually("traffic to leave WebServer1", Duration::from_secs(20), || {
        !answering(&url, 6).contains(&one_id)
    });
    let moved = failed_at.elapsed();
    eprintln!(
        "traffic left the failing instance after {moved:?} (2 checks x 5 s at scale 5 = 2 s)"
    );
    assert!(moved < Duration::from_secs(10), "{moved:?}");
    for _ in 0..20 {
        let (status, body) = http("GET", &url, &[]);
        assert_eq!(status, 200);
        assert!(!body.contains(&one_id), "no request reaches the unhealthy instance: {body}");
    }
    let (ok, health, err) = aws(
        &endpoint,
        &["elbv2", "describe-target-health", "--target-group-arn", &target_group],
        dir.path(),
    );
    assert!(ok, "{err}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let of = |id: &str| {
        health["TargetHealthDescriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["Target"]["Id"] == id)
            .unwrap()["TargetHealth"]
            .clone()
    };
    assert_eq!(of(&one_id)["State"], "unhealthy");
    assert_eq!(of(&one_id)["Reason"], "Target.ResponseCodeMismatch");
    assert_eq!(of(&one_id)["Description"], "Health checks failed with these codes: [503]");

    // It recovers and rejoins after 2 good checks.
    http("GET", &format!("http://127.0.0.1:{}/recover", one["ports"][0]["host"]), &[]);
    let recovered_at = Instant::now();
    eventually("WebServer1 to rejoin", Duration::from_secs(20), || {
        answering(&url, 6).contains(&one_id)
    });
    eprintln!("the recovered instance rejoined after {:?}", recovered_at.elapsed());

    // HTTPS with a certificate from the local CA, HTTP/2 by ALPN.
    let ca = local_ca(dir.path(), &endpoint);
    let secure = output(&outputs, "SecureUrl");
    let curl = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--http2",
            "--cacert",
            ca.to_str().unwrap(),
            "-w",
            "\n%{http_version}",
            &secure,
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&curl.stdout);
    assert!(
        text.contains("Hello from i-") && text.trim_end().ends_with('2'),
        "HTTPS + HTTP/2: {text} {}",
        String::from_utf8_lossy(&curl.stderr)
    );

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

#[test]
fn deregistered_targets_drain_in_flight_requests_and_take_no_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, endpoint, outputs) =
        deploy_lab(dir.path(), EDX_LAB, &["--ephemeral", "--time-scale", "5"]);
    let (url, target_group) = (output(&outputs, "Url"), output(&outputs, "TargetGroup"));
    let list = instances(&endpoint);
    let ids: BTreeSet<String> =
        list.iter().map(|i| i["instanceId"].as_str().unwrap().to_string()).collect();
    wait_for_all(&url, &ids);
    let two = list.iter().find(|i| i["tags"]["Name"] == "WebServer2").unwrap()["instanceId"]
        .as_str()
        .unwrap()
        .to_string();

    // Slow requests in flight on both instances (round robin).
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let url = format!("{url}slow?ms=2500");
            std::thread::spawn(move || http("GET", &url, &[]))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Deregister WebServer2: draining for 20 s (4 s here).
    let (ok, _, err) = aws(
        &endpoint,
        &[
            "elbv2",
            "deregister-targets",
            "--target-group-arn",
            &target_group,
            "--targets",
            &format!("Id={two}"),
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let (_, health, _) = aws(
        &endpoint,
        &["elbv2", "describe-target-health", "--target-group-arn", &target_group],
        dir.path(),
    );
    assert!(
        health.contains("\"draining\"") && health.contains("Target.DeregistrationInProgress"),
        "{health}"
    );
    for _ in 0..10 {
        let (status, body) = http("GET", &url, &[]);
        assert_eq!(status, 200);
        assert!(!body.contains(&two), "no new request reaches a draining target: {body}");
    }
    let answers: Vec<(u16, String)> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|(s, _)| *s == 200), "in-flight requests complete: {answers:?}");
    assert!(
        answers.iter().any(|(_, b)| b.contains(&two)),
        "one of them was on the draining target: {answers:?}"
    );
    // After the delay the target is gone.
    eventually("the drain to end", Duration::from_secs(15), || {
        let (_, health, _) = aws(
            &endpoint,
            &["elbv2", "describe-target-health", "--target-group-arn", &target_group],
            dir.path(),
        );
        !health.contains(&two)
    });
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

/// With Cumulo's two opt-in attributes (retry idempotent requests on another target, passive
/// outlier ejection), an app killed from outside costs no client request; access logs on
/// the load balancer record every request in ALB's format under the data directory.
#[test]
fn an_app_killed_under_load_costs_no_request_with_retry_and_outlier_ejection() {
    let dir = tempfile::tempdir().unwrap();
    let template = EDX_LAB
        .replace(
            "      SecurityGroups: [!Ref WebServerSg]\n",
            "      SecurityGroups: [!Ref WebServerSg]\n      LoadBalancerAttributes:\n        - {Key: access_logs.s3.enabled, Value: \"true\"}\n        - {Key: access_logs.s3.bucket, Value: photos-logs}\n        - {Key: cumulo.routing.retry_idempotent.enabled, Value: \"true\"}\n",
        )
        .replace(
            "        - {Key: deregistration_delay.timeout_seconds, Value: \"20\"}\n",
            "        - {Key: deregistration_delay.timeout_seconds, Value: \"20\"}\n        - {Key: cumulo.outlier_ejection.enabled, Value: \"true\"}\n",
        );
    assert!(template.contains("access_logs") && template.contains("outlier"));
    let data = dir.path().join("data");
    let (mut server, endpoint, outputs) =
        deploy_lab(dir.path(), &template, &["--data-dir", data.to_str().unwrap()]);
    let url = output(&outputs, "Url");
    let list = instances(&endpoint);
    let ids: BTreeSet<String> =
        list.iter().map(|i| i["instanceId"].as_str().unwrap().to_string()).collect();
    wait_for_all(&url, &ids);
    let victim = ids.iter().next().unwrap().clone();

    // A bounded client loop; the victim's app is killed (kill -9) in the middle of it.
    let loop_url = url.clone();
    let client = std::thread::spawn(move || {
        let started = Instant::now();
        let mut statuses = Vec::new();
        while started.elapsed() < Duration::from_secs(3) {
            statuses.push(http("GET", &loop_url, &[]).0);
            std::thread::sleep(Duration::from_millis(5));
        }
        statuses
    });
    std::thread::sleep(Duration::from_millis(800));
    let (ok, out, err) =
        run(&["chaos", "kill-app", &victim, "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    let statuses = client.join().unwrap();
    let failed: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    eprintln!("kill-app report: {} requests, {} failed", statuses.len(), failed.len());
    assert!(statuses.len() > 100, "the loop ran: {}", statuses.len());
    assert!(failed.is_empty(), "every request got a 200: {failed:?}");
    // Only the survivor answers now.
    let answering_now = answering(&url, 6);
    assert!(!answering_now.contains(&victim), "{answering_now:?}");

    // One request over HTTPS and HTTP/2: its line names the TLS session.
    let ca = local_ca(dir.path(), &endpoint);
    let secure = output(&outputs, "SecureUrl");
    let curl = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--http2"])
        .args(["--cacert", ca.to_str().unwrap(), &secure])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");
    // And one that names a server (SNI), which the line's domain_name field gives back.
    let authority = secure.trim_start_matches("https://").trim_end_matches('/');
    let (ip, port) = authority.split_once(':').unwrap_or((authority, "443"));
    let curl = std::process::Command::new("curl")
        .args(["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"])
        .args(["--resolve", &format!("photos.example.test:{port}:{ip}")])
        .arg(format!("https://photos.example.test:{port}/"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");

    // The access log: one line per request, in ALB's layout.
    let logs = data.join("elb-access-logs/photos-logs/AWSLogs");
    let mut lines = Vec::new();
    eventually("access log lines", Duration::from_secs(10), || {
        lines = walk(&logs)
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        // Every request's line, and the SNI request's (lines are written as they come, so
        // a count alone can be reached before the last request's line is there).
        lines.len() >= statuses.len() + 2
            && lines.iter().any(|l| l.starts_with("h2 ") && l.contains("\"photos.example.test\""))
    });
    let tls = lines
        .iter()
        .find(|l| l.starts_with("h2 ") && l.contains("\"photos.example.test\""))
        .expect("the line of the HTTPS request with SNI");
    let fields: Vec<&str> = tls.split(' ').collect();
    // The request field is three words, the user agent (curl) one.
    assert!(fields[16].starts_with("TLS_") && fields[17] == "TLSv1.3", "{tls}");
    let forwarded =
        lines.iter().find(|l| l.contains("\"forward\"") && l.contains(" 200 200 ")).unwrap();
    let fields: Vec<&str> = forwarded.split(' ').collect();
    assert_eq!(fields[0], "http", "{forwarded}");
    assert!(fields[2].starts_with("app/photos-alb/"), "{forwarded}");
    assert!(forwarded.contains(":targetgroup/photos-tg/"), "{forwarded}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

/// The region's CA certificate, exported with `cumulo ca` into `dir/ca.pem`.
/// The loopback ports a region's instances answer on.
fn host_ports(endpoint: &str) -> BTreeSet<u64> {
    instances(endpoint)
        .iter()
        .flat_map(|i| i["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["host"].as_u64())
        .collect()
}

/// Two regions on one machine, made to search the same instance ports: region A's app dies
/// (its port is free to bind again), then region B launches. B's instances never get A's
/// ports, so A's health checks and traffic never reach B's apps: everything that answers
/// through A's load balancer is one of A's instances.
#[test]
fn two_regions_side_by_side_never_answer_for_each_other() {
    let start = (20_000 + std::process::id() % 10_000).to_string();
    let env = [("CUMULO_INSTANCE_PORT_START", start.as_str())];
    let scale = ["--ephemeral", "--time-scale", "10"];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_a, endpoint_a, outputs_a) = deploy_lab_with(dir_a.path(), EDX_LAB, &scale, &env);
    let url_a = output(&outputs_a, "Url");
    let ids_a: BTreeSet<String> = instances(&endpoint_a)
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap().to_string())
        .collect();
    wait_for_all(&url_a, &ids_a);
    let ports_a = host_ports(&endpoint_a);
    let victim = ids_a.iter().next().unwrap().clone();
    let (ok, out, err) =
        run(&["chaos", "kill-app", &victim, "--endpoint-url", &endpoint_a], dir_a.path());
    assert!(ok, "{out}{err}");

    let (_b, endpoint_b, outputs_b) = deploy_lab_with(dir_b.path(), EDX_LAB, &scale, &env);
    let url_b = output(&outputs_b, "Url");
    let ids_b: BTreeSet<String> = instances(&endpoint_b)
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap().to_string())
        .collect();
    wait_for_all(&url_b, &ids_b);
    let ports_b = host_ports(&endpoint_b);
    assert!(
        ports_a.is_disjoint(&ports_b),
        "region B was given region A's ports: {ports_a:?} and {ports_b:?}"
    );
    // Time for A's health checks (every 0.5 s at this scale) to pass on anything answering
    // at the dead app's port, as they would have if B's app had it.
    std::thread::sleep(Duration::from_secs(3));
    let answered = answering(&url_a, 20);
    assert!(!answered.is_empty(), "A's other instance still answers");
    assert!(
        answered.is_subset(&ids_a) && !answered.contains(&victim),
        "only A's live instance answers through A: {answered:?} (A: {ids_a:?}, B: {ids_b:?})"
    );
}

fn local_ca(dir: &std::path::Path, endpoint: &str) -> std::path::PathBuf {
    let ca = dir.join("ca.pem");
    let (ok, _, err) = run(&["ca", "--endpoint-url", endpoint, "--out", ca.to_str().unwrap()], dir);
    assert!(ok, "{err}");
    ca
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Two instances in two zones from a template (no load balancer in it); the rest by the aws
/// CLI alone, as the edX lab does it.
const TWO_INSTANCES: &str = r##"
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, AvailabilityZone: us-east-1a}
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24, AvailabilityZone: us-east-1b}
  WebServer1:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
      SubnetId: !Ref SubnetA
      UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80\n"}
  WebServer2:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
      SubnetId: !Ref SubnetB
      UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80\n"}
Outputs:
  Vpc: {Value: !Ref Vpc}
  SubnetA: {Value: !Ref SubnetA}
  SubnetB: {Value: !Ref SubnetB}
"##;

/// Where a load balancer's listener on `port` really answers (`/_cumulo/endpoints`).
fn listener_url(endpoint: &str, dns_name: &str, port: u64) -> String {
    let (_, body) = http("GET", &format!("{endpoint}/_cumulo/endpoints"), &[]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    let e = list
        .iter()
        .find(|e| e["dnsName"] == dns_name && e["port"] == port)
        .unwrap_or_else(|| panic!("{dns_name}:{port} in {body}"));
    format!("http://{}/", e["address"].as_str().unwrap())
}

#[test]
fn the_aws_cli_alone_builds_an_alb_and_a_classic_load_balancer_over_running_instances() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, endpoint, outputs) =
        deploy_lab(dir.path(), TWO_INSTANCES, &["--ephemeral", "--time-scale", "5"]);
    let word = |key: &str| {
        let line = outputs.lines().find(|l| l.contains(key)).unwrap();
        line.split_whitespace()
            .find(|w| w.starts_with("vpc-") || w.starts_with("subnet-"))
            .unwrap()
            .to_string()
    };
    let (vpc, a, b) = (word("Vpc"), word("SubnetA"), word("SubnetB"));
    let ids: BTreeSet<String> = instances(&endpoint)
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let cli = |args: &[&str]| {
        let (ok, out, err) = aws(&endpoint, args, dir.path());
        assert!(ok, "aws {}: {err}", args.join(" "));
        out.trim().to_string()
    };

    // ELBv2: target group, load balancer, listener, targets.
    let tg = cli(&[
        "elbv2",
        "create-target-group",
        "--name",
        "cli-tg",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--vpc-id",
        &vpc,
        "--health-check-path",
        "/health",
        "--health-check-interval-seconds",
        "5",
        "--healthy-threshold-count",
        "2",
        "--query",
        "TargetGroups[0].TargetGroupArn",
        "--output",
        "text",
    ]);
    let lb = cli(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "cli-alb",
        "--subnets",
        &a,
        &b,
        "--query",
        "LoadBalancers[0].[LoadBalancerArn,DNSName]",
        "--output",
        "text",
    ]);
    let (lb, dns) = lb.split_once('\t').unwrap();
    cli(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        lb,
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg}"),
    ]);
    let mut register = vec!["elbv2", "register-targets", "--target-group-arn", &tg, "--targets"];
    let targets: Vec<String> = ids.iter().map(|id| format!("Id={id}")).collect();
    register.extend(targets.iter().map(String::as_str));
    cli(&register);
    eventually("both targets healthy", Duration::from_secs(30), || {
        cli(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &tg,
            "--query",
            "TargetHealthDescriptions[].TargetHealth.State",
            "--output",
            "text",
        ]) == "healthy\thealthy"
    });
    let url = listener_url(&endpoint, dns, 80);
    wait_for_all(&url, &ids);
    let (ok, _, err) = aws(
        &endpoint,
        &["elbv2", "create-load-balancer", "--name", "cli-alb", "--subnets", &a, &b],
        dir.path(),
    );
    assert!(!ok && err.contains("DuplicateLoadBalancerName"), "{err}");
    let (ok, _, err) =
        aws(&endpoint, &["elbv2", "delete-target-group", "--target-group-arn", &tg], dir.path());
    assert!(!ok && err.contains("ResourceInUse"), "{err}");

    // Classic: a listener on 8080 to the instances' port 80, the same instances.
    let classic_dns = cli(&[
        "elb",
        "create-load-balancer",
        "--load-balancer-name",
        "cli-classic",
        "--listeners",
        "Protocol=HTTP,LoadBalancerPort=8080,InstanceProtocol=HTTP,InstancePort=80",
        "--subnets",
        &a,
        &b,
        "--query",
        "DNSName",
        "--output",
        "text",
    ]);
    cli(&[
        "elb",
        "configure-health-check",
        "--load-balancer-name",
        "cli-classic",
        "--health-check",
        "Target=HTTP:80/health,Interval=5,Timeout=2,UnhealthyThreshold=2,HealthyThreshold=2",
    ]);
    let mut register = vec![
        "elb",
        "register-instances-with-load-balancer",
        "--load-balancer-name",
        "cli-classic",
        "--instances",
    ];
    register.extend(ids.iter().map(String::as_str));
    cli(&register);
    eventually("both instances InService", Duration::from_secs(30), || {
        cli(&[
            "elb",
            "describe-instance-health",
            "--load-balancer-name",
            "cli-classic",
            "--query",
            "InstanceStates[].State",
            "--output",
            "text",
        ]) == "InService\tInService"
    });
    wait_for_all(&listener_url(&endpoint, &classic_dns, 8080), &ids);
    let described = cli(&[
        "elb",
        "describe-load-balancers",
        "--load-balancer-names",
        "cli-classic",
        "--query",
        "LoadBalancerDescriptions[0].[HealthCheck.Target,length(Instances),ListenerDescriptions[0].Listener.InstancePort]",
        "--output",
        "text",
    ]);
    assert_eq!(described, "HTTP:80/health\t2\t80");
    let (ok, _, err) = aws(
        &endpoint,
        &["elb", "describe-load-balancers", "--load-balancer-names", "nope"],
        dir.path(),
    );
    assert!(!ok && err.contains("LoadBalancerNotFound"), "{err}");
    cli(&["elb", "delete-load-balancer", "--load-balancer-name", "cli-classic"]);
    cli(&["elbv2", "delete-load-balancer", "--load-balancer-arn", lb]);
    cli(&["elbv2", "delete-target-group", "--target-group-arn", &tg]);
}
