//! What the fleet tests share: a test stack (an ALB in front of a group), a time-scaled
//! region started as users start it, and a bounded load loop through the load balancer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Running, aws, http, instances, run};

pub(crate) const ROLLING: &str =
    "AutoScalingRollingUpdate: {MinInstancesInService: 2, MaxBatchSize: 1, PauseTime: PT0S}";

/// A group behind an ALB on port 80; health checks every 5 s (2 to change state), grace 10 s.
pub(crate) fn template(desired: u32, version: &str, extra: &str) -> String {
    Stack { desired, user_data: demo_app(version), extra, ..Stack::default() }.render()
}

pub(crate) fn demo_app(version: &str) -> String {
    format!("#!/bin/bash\nexec cumulo demo-app --port 80 --version {version}\n")
}

/// The demo app, then a resource signal for the group (`cfn-signal -e CODE`).
pub(crate) fn signalling_app(version: &str, code: u8) -> String {
    format!(
        "#!/bin/bash\ncumulo demo-app --port 80 --version {version} &\nsleep 1\ncfn-signal -e {code} --stack web --resource Asg\nwait\n"
    )
}

/// The test stack: an ALB and a group named `web` (unless `name` is None).
pub(crate) struct Stack<'a> {
    pub(crate) desired: u32,
    /// MinSize and MaxSize.
    pub(crate) sizes: (u32, u32),
    pub(crate) user_data: String,
    pub(crate) name: Option<&'a str>,
    pub(crate) update_policy: &'a str,
    pub(crate) creation_policy: &'a str,
    pub(crate) extra: &'a str,
}

impl Default for Stack<'_> {
    fn default() -> Self {
        Stack {
            desired: 2,
            sizes: (0, 8),
            user_data: demo_app("v1"),
            name: Some("web"),
            update_policy: ROLLING,
            creation_policy: "",
            extra: "",
        }
    }
}

impl Stack<'_> {
    pub(crate) fn render(&self) -> String {
        let Stack { desired, user_data, update_policy, creation_policy, extra, .. } = self;
        let (min, max) = self.sizes;
        let name = self.name.map_or(String::new(), |n| format!("AutoScalingGroupName: {n}"));
        format!(
            r##"
Parameters:
  Desired: {{Type: Number, Default: {desired}}}
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {{CidrBlock: 10.0.0.0/16}}
  SubnetA:
    Type: AWS::EC2::Subnet
    Properties: {{VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, AvailabilityZone: !Select [0, !GetAZs ""]}}
  SubnetB:
    Type: AWS::EC2::Subnet
    Properties: {{VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24, AvailabilityZone: !Select [1, !GetAZs ""]}}
  Alb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {{Subnets: [!Ref SubnetA, !Ref SubnetB]}}
  Tg:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      VpcId: !Ref Vpc
      Port: 80
      Protocol: HTTP
      HealthCheckPath: /health
      HealthCheckIntervalSeconds: 5
      HealthCheckTimeoutSeconds: 2
      HealthyThresholdCount: 2
      UnhealthyThresholdCount: 2
      TargetGroupAttributes: [{{Key: deregistration_delay.timeout_seconds, Value: "10"}}]
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref Alb
      Port: 80
      Protocol: HTTP
      DefaultActions: [{{Type: forward, TargetGroupArn: !Ref Tg}}]
  Lt:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData:
        ImageId: ami-12345678
        UserData: {{"Fn::Base64": {user_data:?}}}
  Asg:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      {name}
      MinSize: "{min}"
      MaxSize: "{max}"
      DesiredCapacity: !Ref Desired
      HealthCheckType: ELB
      HealthCheckGracePeriod: 10
      LaunchTemplate: {{LaunchTemplateId: !Ref Lt, Version: !GetAtt Lt.LatestVersionNumber}}
      VPCZoneIdentifier: [!Ref SubnetA, !Ref SubnetB]
      TargetGroupARNs: [!Ref Tg]
    UpdatePolicy:
      {update_policy}
{creation_policy}
{extra}
Outputs:
  Url: {{Value: !Sub "http://${{Alb.DNSName}}/"}}
"##
        )
    }
}

pub(crate) struct Region {
    pub(crate) server: Running,
    pub(crate) endpoint: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Region {
    pub(crate) fn start(time_scale: &str) -> Region {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Running::start(
            &["serve", "--listen", "127.0.0.1:0", "--ephemeral", "--time-scale", time_scale],
            dir.path(),
        );
        let endpoint = server.endpoint();
        Region { server, endpoint, dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn deploy(&self, body: &str, params: &[&str]) {
        std::fs::write(self.path().join("web.yaml"), body).unwrap();
        let mut args =
            vec!["deploy", "web.yaml", "--stack-name", "web", "--endpoint-url", &self.endpoint];
        for p in params {
            args.push("--parameter");
            args.push(p);
        }
        let (ok, out, err) = run(&args, self.path());
        assert!(ok, "{out}{err}");
    }

    pub(crate) fn url(&self) -> String {
        let (_, outputs, _) =
            run(&["outputs", "web", "--endpoint-url", &self.endpoint], self.path());
        outputs
            .split_whitespace()
            .find(|w| w.starts_with("http://127."))
            .unwrap_or_else(|| panic!("{outputs}"))
            .to_string()
    }

    /// The group's running instances: id → zone.
    pub(crate) fn running(&self) -> BTreeMap<String, String> {
        instances(&self.endpoint)
            .iter()
            .filter(|i| i["group"] == "web" && i["state"] == "running")
            .map(|i| {
                (
                    i["instanceId"].as_str().unwrap().to_string(),
                    i["zone"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub(crate) fn per_zone(&self) -> (usize, usize) {
        let r = self.running();
        (
            r.values().filter(|z| z.ends_with('a')).count(),
            r.values().filter(|z| z.ends_with('b')).count(),
        )
    }

    /// The group as `aws autoscaling describe-auto-scaling-groups` shows it.
    pub(crate) fn group(&self) -> serde_json::Value {
        let (ok, out, err) = aws(
            &self.endpoint,
            &["autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "web"],
            self.path(),
        );
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["AutoScalingGroups"][0].clone()
    }

    pub(crate) fn in_service(&self) -> usize {
        self.group()["Instances"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|i| i["LifecycleState"] == "InService").count())
    }

    pub(crate) fn stop(mut self) {
        self.server.signal("TERM");
        self.server.wait_exit(Duration::from_secs(60));
    }
}

/// The load balancer's own error counts (`/_cumulo/metrics`), to tell a failure's kind.
pub(crate) fn elb_errors(endpoint: &str) -> String {
    let (_, body) = http("GET", &format!("{endpoint}/_cumulo/metrics"), &[]);
    let samples: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    samples
        .iter()
        .filter(|m| {
            let name = m["metricName"].as_str().unwrap_or("");
            (name.starts_with("HTTPCode_ELB_5")
                || name.contains("ConnectionError")
                || name.contains("HostCount"))
                && m["value"].as_f64().unwrap_or(0.0) > 0.0
        })
        .map(|m| format!("{} {} {}", m["metricName"], m["dimensions"], m["value"]))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A bounded client loop through the load balancer (until stopped or 120 s).
pub(crate) struct Load {
    pub(crate) started: Instant,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>, Duration)>,
}

impl Load {
    pub(crate) fn start(url: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, url) = (stop.clone(), url.to_string());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let (mut requests, mut failures) = (0, Vec::new());
            while !flag.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                let (status, body) = http("GET", &url, &[]);
                requests += 1;
                if status != 200 {
                    failures.push(format!(
                        "{status} after {:?}: {}",
                        started.elapsed(),
                        body.lines().next().unwrap_or("").trim()
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (requests, failures, started.elapsed())
        });
        Load { started: Instant::now(), stop, thread }
    }

    pub(crate) fn finish(self) -> (usize, Vec<String>, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The group's desired capacity and instances in service, as DescribeAutoScalingGroups says.
pub(crate) fn capacity(region: &Region) -> (u64, usize) {
    let g = region.group();
    let in_service = g["Instances"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| i["LifecycleState"] == "InService").count());
    (g["DesiredCapacity"].as_u64().unwrap_or(0), in_service)
}

/// Polls the capacity once a second until `done` (or `limit`), noting each change.
pub(crate) fn watch(
    region: &Region,
    started: Instant,
    limit: Duration,
    timeline: &mut Vec<String>,
    done: impl Fn((u64, usize)) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        let now = capacity(region);
        if last != Some(now) {
            timeline.push(format!(
                "{:>5.1}s desired {} in service {}",
                started.elapsed().as_secs_f64(),
                now.0,
                now.1
            ));
            last = Some(now);
        }
        if done(now) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

#[allow(dead_code)] // Used by the scaling test binary.
pub(crate) fn history(region: &Region, alarm: &str) -> String {
    let (ok, out, err) =
        run(&["alarms", "--history", alarm, "--endpoint-url", &region.endpoint], region.path());
    assert!(ok, "{out}{err}");
    out
}
