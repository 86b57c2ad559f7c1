//! Auto Scaling groups with real instances behind a real ALB: zone balance, replacement of
//! killed and unhealthy instances, a zone outage and its recovery, scaling out and in with
//! draining, a rolling update under load that drops no request, lifecycle hooks.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fleet::*;
use crate::support::{Running, aws, eventually, http, instances, run};

/// How many distinct instances answered `n` requests through `url`.
fn serving(url: &str, n: usize) -> usize {
    (0..n)
        .map(|_| http("GET", url, &[]).1)
        .filter_map(|b| b.split_whitespace().nth(2).map(str::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[test]
fn four_instances_spread_two_and_two_and_dead_or_unhealthy_ones_are_replaced() {
    let region = Region::start("10");
    region.deploy(&template(4, "v1", ""), &[]);
    assert_eq!(region.per_zone(), (2, 2), "a group of 4 over 2 zones is 2+2");
    let url = region.url();
    eventually("4 instances to serve through the ALB", Duration::from_secs(30), || {
        serving(&url, 16) == 4
    });

    // Kill an instance's machine: its status checks fail; it is replaced in the same zone.
    let before = region.running();
    let (victim, zone) = before.iter().next().map(|(i, z)| (i.clone(), z.clone())).unwrap();
    let pids: Vec<u32> = instances(&region.endpoint)
        .iter()
        .filter(|i| i["instanceId"] == victim.as_str())
        .flat_map(|i| [i["machinePid"].as_u64(), i["appPid"].as_u64()])
        .map(|p| p.expect("a running instance has its pids") as u32)
        .collect();
    let (ok, out, err) = run(
        &["chaos", "kill-instance", &victim, "--endpoint-url", &region.endpoint],
        region.path(),
    );
    assert!(ok, "{out}{err}");
    // The machine is gone with everything on it: its app does not run on as an orphan.
    eventually("the killed instance's processes to be gone", Duration::from_secs(10), || {
        pids.iter().all(|p| !supervisor::alive(*p))
    });
    eventually("a replacement in the same zone", Duration::from_secs(30), || {
        let now = region.running();
        !now.contains_key(&victim)
            && now.len() == 4
            && now.values().filter(|z| **z == zone).count() == 2
    });
    let replacement =
        region.running().into_iter().find(|(i, _)| !before.contains_key(i)).unwrap().0;
    eventually("the replacement to serve through the ALB", Duration::from_secs(30), || {
        (0..8).any(|_| http("GET", &url, &[]).1.contains(&replacement))
    });

    // An instance failing its ELB health check is replaced after the grace period.
    let sick = region.running().into_keys().find(|i| *i != replacement).unwrap();
    let port = instances(&region.endpoint)
        .iter()
        .find(|i| i["instanceId"] == sick.as_str())
        .unwrap()["ports"][0]["host"]
        .as_u64()
        .unwrap();
    assert_eq!(http("GET", &format!("http://127.0.0.1:{port}/fail"), &[]).0, 200);
    eventually("the unhealthy instance to be replaced", Duration::from_secs(40), || {
        let now = region.running();
        !now.contains_key(&sick) && now.len() == 4
    });
    let (ok, out, _) = aws(
        &region.endpoint,
        &["autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "web"],
        region.path(),
    );
    assert!(ok && out.contains("in response to an ELB system health check failure"), "{out}");
    assert!(out.contains("in response to an EC2 instance status checks failure"), "{out}");
    region.stop();
}

#[test]
fn a_zone_outage_moves_capacity_and_the_group_rebalances_when_it_returns() {
    let region = Region::start("10");
    region.deploy(&template(4, "v1", ""), &[]);
    assert_eq!(region.per_zone(), (2, 2));
    let url = region.url();
    eventually("4 instances to serve", Duration::from_secs(30), || serving(&url, 16) == 4);
    // The processes of the zone's instances (their "machines" and their apps).
    let in_zone_b: Vec<u32> = instances(&region.endpoint)
        .iter()
        .filter(|i| i["zone"] == "us-east-1b")
        .flat_map(|i| [i["machinePid"].as_u64(), i["appPid"].as_u64()])
        .map(|p| p.expect("a running instance has its pids") as u32)
        .collect();
    assert_eq!(in_zone_b.len(), 4);
    let (ok, out, err) = run(
        &["chaos", "fail-zone", "us-east-1b", "--endpoint-url", &region.endpoint],
        region.path(),
    );
    assert!(ok, "{out}{err}");
    let down = Instant::now();
    // Power is gone in that zone: no process of its instances runs on (none is orphaned).
    eventually("the zone's processes to be gone", Duration::from_secs(10), || {
        in_zone_b.iter().all(|p| !supervisor::alive(*p))
    });
    eventually("capacity restored in the other zone", Duration::from_secs(40), || {
        region.per_zone() == (4, 0)
    });
    eprintln!("capacity restored in us-east-1a after {:?}", down.elapsed());
    eventually("the new instances to serve", Duration::from_secs(30), || serving(&url, 12) == 4);
    let (ok, out, err) = run(
        &["chaos", "restore-zone", "us-east-1b", "--endpoint-url", &region.endpoint],
        region.path(),
    );
    assert!(ok, "{out}{err}");
    let up = Instant::now();
    eventually("the group to rebalance", Duration::from_secs(60), || region.per_zone() == (2, 2));
    eprintln!("rebalanced 2+2 after {:?}", up.elapsed());
    region.stop();
}

#[test]
fn scaling_out_and_in_keeps_zones_balanced_and_drains() {
    let region = Region::start("10");
    let policy = "      TerminationPolicies: [OldestInstance]\n";
    let body = template(2, "v1", "").replace(
        "      TargetGroupARNs: [!Ref Tg]\n",
        &format!("      TargetGroupARNs: [!Ref Tg]\n{policy}"),
    );
    region.deploy(&body, &[]);
    assert_eq!(region.per_zone(), (1, 1));
    let first: Vec<String> = region.running().into_keys().collect();
    let url = region.url();
    eventually("both instances to serve", Duration::from_secs(30), || serving(&url, 8) == 2);
    let load = Load::start(&url);
    let set = |n: &str| {
        let (ok, _, err) = aws(
            &region.endpoint,
            &[
                "autoscaling",
                "set-desired-capacity",
                "--auto-scaling-group-name",
                "web",
                "--desired-capacity",
                n,
            ],
            region.path(),
        );
        assert!(ok, "{err}");
    };
    eprintln!("set 6 at {:?}", load.started.elapsed());
    set("6");
    eventually("6 in service, 3+3", Duration::from_secs(40), || {
        region.per_zone() == (3, 3) && region.in_service() == 6
    });
    // Scale in only once the new instances pass their health checks (ASG does not look at
    // target health when it picks instances to terminate, as on AWS).
    eventually("6 instances to serve", Duration::from_secs(40), || serving(&url, 30) == 6);
    eprintln!("set 1 at {:?}", load.started.elapsed());
    set("1");
    eventually("1 left", Duration::from_secs(60), || {
        region.running().len() == 1 && region.in_service() == 1
    });
    let (requests, failures, took) = load.finish();
    eprintln!(
        "scale 2 -> 6 -> 1 under load: {requests} requests, {} failed, {took:?}",
        failures.len()
    );
    assert!(failures.is_empty(), "scale-in drains: {failures:?}");
    let survivor = region.running().into_keys().next().unwrap();
    assert!(!first.contains(&survivor), "OldestInstance: the first instances went first");
    let (ok, out, err) = aws(
        &region.endpoint,
        &[
            "autoscaling",
            "set-desired-capacity",
            "--auto-scaling-group-name",
            "web",
            "--desired-capacity",
            "9",
        ],
        region.path(),
    );
    assert!(
        !ok && err.contains(
            "New SetDesiredCapacity value 9 is above max value 8 for the AutoScalingGroup."
        ),
        "{out}{err}"
    );
    region.stop();
}

#[test]
fn a_rolling_update_under_load_drops_no_request() {
    let region = Region::start("10");
    region.deploy(&template(2, "v1", ""), &[]);
    let url = region.url();
    eventually("v1 serves", Duration::from_secs(30), || http("GET", &url, &[]).1.contains("(v1)"));
    let load = Load::start(&url);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    region.deploy(&template(2, "v2", ""), &[]);
    let update = started.elapsed();
    let (requests, failures, took) = load.finish();
    eprintln!(
        "rolling update report: {requests} requests, {} failed, {took:?} (update took {update:?})",
        failures.len()
    );
    assert!(requests > 50, "the loop ran: {requests}");
    assert!(failures.is_empty(), "every request got a 200: {failures:?}");
    for _ in 0..6 {
        let (status, body) = http("GET", &url, &[]);
        assert_eq!(status, 200);
        assert!(
            body.contains("(v2)"),
            "every instance runs the new launch template version: {body}"
        );
    }
    eventually("the zones balanced", Duration::from_secs(30), || region.per_zone() == (1, 1));
    region.stop();
}

#[test]
fn lifecycle_hooks_hold_instances_until_completed_or_timed_out() {
    let region = Region::start("10");
    let hooks = r#"  LaunchHook:
    Type: AWS::AutoScaling::LifecycleHook
    Properties:
      AutoScalingGroupName: !Ref Asg
      LifecycleHookName: warm-up
      LifecycleTransition: autoscaling:EC2_INSTANCE_LAUNCHING
      HeartbeatTimeout: 60
      DefaultResult: ABANDON
"#;
    region.deploy(&template(0, "v1", hooks), &[]);
    let set = |n: &str| {
        let (ok, _, err) = aws(
            &region.endpoint,
            &[
                "autoscaling",
                "set-desired-capacity",
                "--auto-scaling-group-name",
                "web",
                "--desired-capacity",
                n,
            ],
            region.path(),
        );
        assert!(ok, "{err}");
    };
    let states = || -> Vec<(String, String)> {
        region.group()["Instances"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| {
                (
                    i["InstanceId"].as_str().unwrap().to_string(),
                    i["LifecycleState"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // CONTINUE: the instance enters service.
    set("1");
    eventually("an instance waiting on the hook", Duration::from_secs(20), || {
        states().iter().any(|(_, s)| s == "Pending:Wait")
    });
    let waiting = states()[0].0.clone();
    let (ok, _, err) = aws(
        &region.endpoint,
        &[
            "autoscaling",
            "complete-lifecycle-action",
            "--auto-scaling-group-name",
            "web",
            "--lifecycle-hook-name",
            "warm-up",
            "--instance-id",
            &waiting,
            "--lifecycle-action-result",
            "CONTINUE",
        ],
        region.path(),
    );
    assert!(ok, "{err}");
    eventually("it enters service", Duration::from_secs(20), || {
        states() == vec![(waiting.clone(), "InService".to_string())]
    });
    // No answer: after the heartbeat timeout (60 s = 6 s here) the default ABANDON
    // terminates it and a new instance is launched (and waits again).
    set("2");
    eventually("a second instance waiting", Duration::from_secs(20), || {
        states().iter().any(|(i, s)| *i != waiting && s == "Pending:Wait")
    });
    let abandoned = states().into_iter().find(|(i, _)| *i != waiting).unwrap().0;
    eventually("the abandoned instance to go", Duration::from_secs(30), || {
        !states().iter().any(|(i, _)| *i == abandoned)
    });
    // Not before the heartbeat timeout, in AWS time: the launch activity's start and end.
    let activities = region.autoscaling(&["describe-scaling-activities"]).unwrap();
    let launch = activities["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Description"] == format!("Launching a new EC2 instance: {abandoned}").as_str())
        .unwrap_or_else(|| panic!("no launch activity for {abandoned}: {activities}"))
        .clone();
    assert_eq!(launch["StatusCode"], "Failed", "{launch}");
    assert!(launch["StatusMessage"].as_str().unwrap().contains("abandoned"), "{launch}");
    let at = |key: &str| -> jiff::Timestamp { launch[key].as_str().unwrap().parse().unwrap() };
    let waited = at("EndTime").duration_since(at("StartTime"));
    assert!(waited >= jiff::SignedDuration::from_secs(60), "abandoned after {waited:?}");
    assert!(
        instances(&region.endpoint)
            .iter()
            .any(|i| i["instanceId"] == abandoned.as_str() && i["state"] == "terminated")
    );
    eventually("a replacement waiting on the hook", Duration::from_secs(20), || {
        states().iter().any(|(i, s)| *i != waiting && *i != abandoned && s == "Pending:Wait")
    });
    region.stop();
}

/// The README's first command: `cumulo up examples/ha-web-app.yaml` shows the events, then a
/// URL that answers from instances in two zones; Ctrl-C deletes everything.
#[test]
fn the_readme_how_to_stack_serves_from_two_zones() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ha-web-app.yaml");
    let dir = tempfile::tempdir().unwrap();
    let mut up =
        Running::start(&["up", example.to_str().unwrap(), "--listen", "127.0.0.1:0"], dir.path());
    up.wait_for(
        "CREATE_COMPLETE                    AWS::AutoScaling::AutoScalingGroup",
        Duration::from_secs(90),
    );
    // The Url output (port 8080, unless another region here holds it).
    let line = up.wait_for(" Url ", Duration::from_secs(30));
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    assert!(url.starts_with("http://127.0.1."), "{line}");
    let mut zones = std::collections::BTreeSet::new();
    eventually("answers from two zones", Duration::from_secs(60), || {
        let (status, body) = http("GET", &url, &[]);
        if status == 200
            && let Some(zone) = body.split_whitespace().nth(4)
        {
            zones.insert(zone.to_string());
        }
        zones.len() == 2
    });
    assert_eq!(zones.into_iter().collect::<Vec<_>>(), ["us-east-1a", "us-east-1b"]);
    up.signal("INT");
    let status = up.wait_exit(Duration::from_secs(120));
    assert!(status.success(), "{}", up.seen.join("\n"));
    assert!(
        up.seen
            .iter()
            .any(|l| l.contains("DELETE_COMPLETE")
                && l.contains("AWS::AutoScaling::AutoScalingGroup")),
        "{}",
        up.seen.join("\n")
    );
}

impl Region {
    /// `aws autoscaling ARGS... --auto-scaling-group-name web` as JSON.
    fn autoscaling(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let mut all = vec!["autoscaling"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--auto-scaling-group-name", "web"]);
        let (ok, out, err) = aws(&self.endpoint, &all, self.path());
        if !ok {
            return Err(err);
        }
        Ok(if out.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&out).unwrap()
        })
    }

    /// The newest instance refresh of group `web`.
    fn refresh(&self) -> serde_json::Value {
        self.autoscaling(&["describe-instance-refreshes"]).unwrap()["InstanceRefreshes"][0].clone()
    }

    fn stack_status(&self) -> String {
        let (ok, out, err) = aws(
            &self.endpoint,
            &["cloudformation", "describe-stacks", "--stack-name", "web"],
            self.path(),
        );
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["Stacks"][0]["StackStatus"].as_str().unwrap().to_string()
    }

    fn stack_events(&self) -> String {
        let (ok, out, err) = aws(
            &self.endpoint,
            &["cloudformation", "describe-stack-events", "--stack-name", "web"],
            self.path(),
        );
        assert!(ok, "{err}");
        out
    }
}

/// The `(vN)` versions that answer `n` requests through `url`.
fn versions(url: &str, n: usize) -> std::collections::BTreeSet<String> {
    (0..n)
        .filter_map(|_| {
            let body = http("GET", url, &[]).1;
            let start = body.find("(v")?;
            let end = body[start..].find(')')?;
            Some(body[start + 1..start + end].to_string())
        })
        .collect()
}

#[test]
fn a_rolling_update_waits_for_resource_signals_and_rolls_back_on_a_failure_signal() {
    let region = Region::start("10");
    let policy = "AutoScalingRollingUpdate: {MinInstancesInService: 1, MaxBatchSize: 1, WaitOnResourceSignals: true, PauseTime: PT2M}";
    let creation = "    CreationPolicy:\n      ResourceSignal: {Count: 2, Timeout: PT2M}";
    let stack = |version: &str, code: u8| {
        Stack {
            user_data: signalling_app(version, code),
            update_policy: policy,
            creation_policy: creation,
            ..Stack::default()
        }
        .render()
    };
    // Created once both instances signalled.
    region.deploy(&stack("v1", 0), &[]);
    assert_eq!(region.stack_status(), "CREATE_COMPLETE");
    let url = region.url();
    // Each batch's new instance signals SUCCESS: the update completes.
    region.deploy(&stack("v2", 0), &[]);
    assert_eq!(region.stack_status(), "UPDATE_COMPLETE");
    eventually("only v2 answers", Duration::from_secs(30), || {
        versions(&url, 10).into_iter().collect::<Vec<_>>() == ["v2"]
    });
    // The first new instance signals FAILURE: the update fails and rolls back to v2.
    std::fs::write(region.path().join("web.yaml"), stack("v3", 1)).unwrap();
    let (ok, out, err) = run(
        &["deploy", "web.yaml", "--stack-name", "web", "--endpoint-url", &region.endpoint],
        region.path(),
    );
    assert!(!ok, "the update fails: {out}{err}");
    eventually("rolled back", Duration::from_secs(120), || {
        region.stack_status() == "UPDATE_ROLLBACK_COMPLETE"
    });
    let events = region.stack_events();
    assert!(events.contains("Received FAILURE signal with UniqueId i-"), "{events}");
    let mut seen = Default::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        seen = versions(&url, 10);
        if seen.iter().collect::<Vec<_>>() == ["v2"] {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["v2"],
        "v2 answers again, alone: {}\n{}",
        region.group(),
        region.stack_events()
    );
    assert_eq!(region.running().len(), 2);
    region.stop();
}

#[test]
fn a_replacing_update_creates_a_new_group_then_deletes_the_old_one_without_dropping_a_request() {
    let region = Region::start("10");
    let stack = |version: &str| {
        Stack {
            user_data: demo_app(version),
            name: None,
            update_policy: "AutoScalingReplacingUpdate: {WillReplace: true}",
            ..Stack::default()
        }
        .render()
    };
    region.deploy(&stack("v1"), &[]);
    let url = region.url();
    let groups = || -> Vec<String> {
        let (ok, out, err) =
            aws(&region.endpoint, &["autoscaling", "describe-auto-scaling-groups"], region.path());
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["AutoScalingGroups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["AutoScalingGroupName"].as_str().unwrap().to_string())
            .collect()
    };
    let before = groups();
    assert_eq!(before.len(), 1, "{before:?}");
    eventually("v1 serves", Duration::from_secs(30), || http("GET", &url, &[]).1.contains("(v1)"));
    let load = Load::start(&url);
    std::thread::sleep(Duration::from_millis(300));
    region.deploy(&stack("v2"), &[]);
    let (requests, failures, took) = load.finish();
    eprintln!("replacing update report: {requests} requests, {} failed, {took:?}", failures.len());
    assert!(failures.is_empty(), "every request got a 200: {failures:?}");
    let after = groups();
    assert_eq!(after.len(), 1, "the old group is deleted: {after:?}");
    assert_ne!(after, before, "a new group (a new physical id) replaced the old one");
    assert_eq!(versions(&url, 10).into_iter().collect::<Vec<_>>(), ["v2"]);
    let events = region.stack_events();
    assert!(
        events.contains("Requested update requires the creation of a new physical resource")
            || events.contains("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        "{events}"
    );
    region.stop();
}

#[test]
fn an_instance_refresh_under_load_replaces_every_instance_without_dropping_a_request() {
    let mut region = Region::start("10");
    region.deploy(&template(4, "v1", ""), &[]);
    let url = region.url();
    let deadline = Instant::now() + Duration::from_secs(60);
    while serving(&url, 24) != 4 {
        if Instant::now() > deadline {
            let answers: Vec<(u16, String)> = (0..8).map(|_| http("GET", &url, &[])).collect();
            panic!(
                "four serve: answers {answers:?}\nload balancer: {}\ninstances: {}\nthe region said:\n{}",
                elb_errors(&region.endpoint),
                region.group()["Instances"],
                region.server.output()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let originals: Vec<String> = region.running().into_keys().collect();
    let load = Load::start(&url);
    std::thread::sleep(Duration::from_millis(300));
    let started = region
        .autoscaling(&[
            "start-instance-refresh",
            "--preferences",
            r#"{"MinHealthyPercentage": 50, "InstanceWarmup": 5}"#,
        ])
        .unwrap();
    let id = started["InstanceRefreshId"].as_str().unwrap().to_string();
    eventually("the refresh succeeds", Duration::from_secs(120), || {
        region.refresh()["Status"] == "Successful"
    });
    let (requests, failures, took) = load.finish();
    eprintln!("instance refresh report: {requests} requests, {} failed, {took:?}", failures.len());
    let server = if failures.is_empty() { String::new() } else { region.server.output() };
    assert!(
        failures.is_empty(),
        "every request got a 200: {failures:?}\nload balancer errors: {}\ninstances: {}\nactivities: {}\nthe region said:\n{server}",
        elb_errors(&region.endpoint),
        region.group()["Instances"],
        region
            .autoscaling(&["describe-scaling-activities"])
            .map(|a| a.to_string())
            .unwrap_or_default(),
    );
    let refresh = region.refresh();
    assert_eq!(refresh["InstanceRefreshId"], id.as_str());
    assert_eq!(refresh["PercentageComplete"], 100);
    assert_eq!(refresh["Preferences"]["MinHealthyPercentage"], 50);
    let now: Vec<String> = region.running().into_keys().collect();
    assert_eq!(now.len(), 4);
    assert!(
        now.iter().all(|i| !originals.contains(i)),
        "every instance is new: {originals:?} -> {now:?}"
    );
    eventually("the zones balanced", Duration::from_secs(30), || region.per_zone() == (2, 2));
    region.stop();
}

#[test]
fn an_instance_refresh_waits_at_checkpoints_and_can_be_cancelled_or_rolled_back() {
    let region = Region::start("10");
    let lt2 = r##"
  Lt2:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData:
        ImageId: ami-12345678
        UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80 --version v2\n"}
"##;
    region.deploy(&template(2, "v1", lt2), &[]);
    let url = region.url();
    eventually("two serve", Duration::from_secs(60), || serving(&url, 12) == 2);
    let (ok, out, err) = aws(
        &region.endpoint,
        &[
            "cloudformation",
            "describe-stack-resource",
            "--stack-name",
            "web",
            "--logical-resource-id",
            "Lt2",
        ],
        region.path(),
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lt2_id = v["StackResourceDetail"]["PhysicalResourceId"].as_str().unwrap().to_string();
    let checkpointed = r#"{"MinHealthyPercentage": 50, "InstanceWarmup": 0, "CheckpointPercentages": [50], "CheckpointDelay": 3600}"#;
    let desired = format!(
        r#"{{"LaunchTemplate": {{"LaunchTemplateId": "{lt2_id}", "Version": "$Latest"}}}}"#
    );
    // A refresh to Lt2 that stops at its 50 % checkpoint.
    let refresh_to_checkpoint = || {
        region
            .autoscaling(&[
                "start-instance-refresh",
                "--preferences",
                checkpointed,
                "--desired-configuration",
                &desired,
            ])
            .unwrap();
        eventually("at the checkpoint", Duration::from_secs(60), || {
            region.refresh()["PercentageComplete"] == 50
        });
    };

    // At the checkpoint, a second refresh is refused.
    refresh_to_checkpoint();
    let refused = region.autoscaling(&["start-instance-refresh"]).unwrap_err();
    assert!(refused.contains("InstanceRefreshInProgress"), "{refused}");
    eventually("one v1 and one v2 serve", Duration::from_secs(30), || {
        versions(&url, 12).into_iter().collect::<Vec<_>>() == ["v1", "v2"]
    });
    // Rolled back: Lt again, and the v2 instance replaced by a v1 one.
    region.autoscaling(&["rollback-instance-refresh"]).unwrap();
    eventually("rolled back", Duration::from_secs(60), || {
        region.refresh()["Status"] == "RollbackSuccessful"
    });
    eventually("only v1 serves", Duration::from_secs(30), || {
        versions(&url, 12).into_iter().collect::<Vec<_>>() == ["v1"]
    });
    let lt = region.group()["LaunchTemplate"]["LaunchTemplateId"].as_str().unwrap().to_string();
    assert_ne!(lt, lt2_id, "the group's launch template is back");

    // Cancelled at the checkpoint: it stops there, half replaced.
    refresh_to_checkpoint();
    region.autoscaling(&["cancel-instance-refresh"]).unwrap();
    eventually("cancelled", Duration::from_secs(30), || region.refresh()["Status"] == "Cancelled");
    let none = region.autoscaling(&["cancel-instance-refresh"]).unwrap_err();
    assert!(none.contains("ActiveInstanceRefreshNotFound"), "{none}");
    assert_eq!(versions(&url, 12).into_iter().collect::<Vec<_>>(), ["v1", "v2"]);
    region.stop();
}

/// A corpus template as its book runs it (AWS in Action, chapter 14: an ALB health-checking
/// `/index.html` in front of an Auto Scaling group whose UserData runs cfn-init and signals
/// the group), with the UserData replaced through an overrides file: the stack is created
/// once the group signals, and the URL answers from both zones.
#[test]
fn aws_in_action_chapter_14_load_balancer_through_an_overrides_file() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus/AWSinAction__code3/chapter14/loadbalancer.yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&corpus, dir.path().join("web.yaml")).unwrap();
    std::fs::write(
        dir.path().join("cumulo.overrides.yaml"),
        "instances:\n  LaunchTemplate:\n    command: [bash, -c, \"cumulo demo-app --port 80 & sleep 1; cfn-signal -e 0 --stack $CUMULO_STACK_NAME --resource AutoScalingGroup; wait\"]\n    ports: [80]\n",
    )
    .unwrap();
    let mut server = Running::start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ephemeral",
            "--time-scale",
            "10",
            "--overrides",
            "cumulo.overrides.yaml",
        ],
        dir.path(),
    );
    let endpoint = server.endpoint();
    let (ok, out, err) = run(
        &["deploy", "web.yaml", "--stack-name", "web", "--endpoint-url", &endpoint],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Received SUCCESS signal with UniqueId i-"), "{out}");
    let (_, outputs, _) = run(&["outputs", "web", "--endpoint-url", &endpoint], dir.path());
    let url = outputs
        .split_whitespace()
        .find(|w| w.starts_with("http://127."))
        .unwrap_or_else(|| panic!("{outputs}"))
        .trim_end_matches('/')
        .to_string();
    // Healthy by the template's own check (/index.html, 200-299), then both zones answer.
    let mut zones = std::collections::BTreeSet::new();
    eventually("answers from two zones", Duration::from_secs(60), || {
        let (status, body) = http("GET", &format!("{url}/index.html"), &[]);
        if status == 200
            && let Some(zone) = body.split_whitespace().nth(4)
        {
            zones.insert(zone.to_string());
        }
        zones.len() == 2
    });
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(60));
}

/// The network, target group, ALB and launch template of a template; the group by
/// `aws autoscaling` alone, as the HA blog makes it.
const NETWORK: &str = r##"
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
  Alb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {Subnets: [!Ref SubnetA, !Ref SubnetB]}
  Tg:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      VpcId: !Ref Vpc
      Port: 80
      Protocol: HTTP
      HealthCheckPath: /health
      HealthCheckIntervalSeconds: 5
      HealthyThresholdCount: 2
  Listener:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref Alb
      Port: 80
      Protocol: HTTP
      DefaultActions: [{Type: forward, TargetGroupArn: !Ref Tg}]
  Lt:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData:
        ImageId: ami-12345678
        UserData: {"Fn::Base64": "#!/bin/bash\nexec cumulo demo-app --port 80 --version v1\n"}
Outputs:
  SubnetA: {Value: !Ref SubnetA}
  SubnetB: {Value: !Ref SubnetB}
  Lt: {Value: !Ref Lt}
  Tg: {Value: !Ref Tg}
  Url: {Value: !Sub "http://${Alb.DNSName}/"}
"##;

#[test]
fn a_group_made_with_the_aws_cli_serves_behind_its_alb_and_force_deletes() {
    let region = Region::start("10");
    region.deploy(NETWORK, &[]);
    let cli = |args: &[&str]| {
        let (ok, out, err) = aws(&region.endpoint, args, region.path());
        assert!(ok, "aws {args:?}: {out}{err}");
        out
    };
    let stacks: serde_json::Value =
        serde_json::from_str(&cli(&["cloudformation", "describe-stacks", "--stack-name", "web"]))
            .unwrap();
    let output = |key: &str| {
        stacks["Stacks"][0]["Outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["OutputKey"] == key)
            .unwrap_or_else(|| panic!("no output {key}: {stacks}"))["OutputValue"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (lt, tg) = (output("Lt"), output("Tg"));
    let subnets = format!("{},{}", output("SubnetA"), output("SubnetB"));
    let spec = format!("LaunchTemplateId={lt},Version=$Latest");
    let create = [
        "autoscaling",
        "create-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--launch-template",
        &spec,
        "--min-size",
        "2",
        "--max-size",
        "4",
        "--vpc-zone-identifier",
        &subnets,
        "--target-group-arns",
        &tg,
        "--health-check-type",
        "ELB",
        "--health-check-grace-period",
        "10",
    ];
    cli(&create);
    let (ok, _, err) = aws(&region.endpoint, &create, region.path());
    assert!(!ok && err.contains("AlreadyExists"), "{err}");
    eventually("two instances in service", Duration::from_secs(60), || region.in_service() == 2);
    assert_eq!(region.per_zone(), (1, 1), "one per zone");
    let g = region.group();
    assert_eq!(g["LaunchTemplate"]["LaunchTemplateId"], lt.as_str(), "{g}");
    assert_eq!(g["VPCZoneIdentifier"], subnets.as_str(), "{g}");
    // `cumulo outputs` gives the load balancer's DNS name as an address that answers.
    let url = region.url();
    eventually("the ALB to answer from the group", Duration::from_secs(60), || {
        http("GET", &url, &[]).0 == 200
    });
    // A policy run through the CLI scales out.
    cli(&[
        "autoscaling",
        "put-scaling-policy",
        "--auto-scaling-group-name",
        "web",
        "--policy-name",
        "plus-one",
        "--adjustment-type",
        "ChangeInCapacity",
        "--scaling-adjustment",
        "1",
    ]);
    cli(&[
        "autoscaling",
        "execute-policy",
        "--auto-scaling-group-name",
        "web",
        "--policy-name",
        "plus-one",
    ]);
    eventually("three instances in service", Duration::from_secs(60), || region.in_service() == 3);
    let (ok, _, err) = aws(
        &region.endpoint,
        &["autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", "web"],
        region.path(),
    );
    assert!(!ok && err.contains("ResourceInUse"), "{err}");
    cli(&[
        "autoscaling",
        "delete-auto-scaling-group",
        "--auto-scaling-group-name",
        "web",
        "--force-delete",
    ]);
    eventually("the group and its instances to be gone", Duration::from_secs(90), || {
        let out = cli(&["autoscaling", "describe-auto-scaling-groups"]);
        !out.contains("\"web\"") && region.running().is_empty()
    });
    region.stop();
}
