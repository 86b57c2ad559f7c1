//! CPU-driven scaling end to end, in a test binary of its own: cargo runs test binaries one
//! after another, so no other test's instances share the two cores whose use this one
//! measures. On a time-scaled region (a minute of AWS time is a second), CPU burnt inside the
//! instances raises their CPUUtilization, an alarm scales the group out to its maximum, and
//! back in once the burn ends (the widdix seed's shape: a group of 2 to 4, CPU above 60 %
//! scales out, below 30 % scales in).

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../e2e/fleet.rs"]
mod fleet;

use std::time::{Duration, Instant};

use fleet::{Region, Stack, capacity, history, watch};
use support::{aws, run};

/// The widdix seed's scaling, on a group of 2 to 4: CPU above 60 % for two minutes doubles
/// the group (at least one instance, at most every 10 minutes), below 30 % removes a quarter
/// (at least one, every 5 minutes).
const CPU_SCALING: &str = r#"
  ScaleUp:
    Type: AWS::AutoScaling::ScalingPolicy
    Properties:
      AutoScalingGroupName: !Ref Asg
      PolicyType: SimpleScaling
      AdjustmentType: PercentChangeInCapacity
      ScalingAdjustment: 100
      MinAdjustmentMagnitude: 1
      Cooldown: "600"
  ScaleDown:
    Type: AWS::AutoScaling::ScalingPolicy
    Properties:
      AutoScalingGroupName: !Ref Asg
      PolicyType: SimpleScaling
      AdjustmentType: PercentChangeInCapacity
      ScalingAdjustment: -25
      MinAdjustmentMagnitude: 1
      Cooldown: "300"
  CPUHigh:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: cpu-high
      AlarmDescription: Average CPU above 60 % for 2 minutes
      Namespace: AWS/EC2
      MetricName: CPUUtilization
      Dimensions: [{Name: AutoScalingGroupName, Value: !Ref Asg}]
      Statistic: Average
      Period: 60
      EvaluationPeriods: 2
      Threshold: 60
      ComparisonOperator: GreaterThanThreshold
      AlarmActions: [!Ref ScaleUp]
  CPULow:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: cpu-low
      Namespace: AWS/EC2
      MetricName: CPUUtilization
      Dimensions: [{Name: AutoScalingGroupName, Value: !Ref Asg}]
      Statistic: Average
      Period: 60
      EvaluationPeriods: 2
      Threshold: 30
      ComparisonOperator: LessThanThreshold
      AlarmActions: [!Ref ScaleDown]
"#;

#[test]
fn cpu_burnt_in_the_instances_scales_the_group_out_to_its_maximum_and_back_in() {
    let region = Region::start("60");
    let stack = Stack { desired: 2, sizes: (2, 4), extra: CPU_SCALING, ..Stack::default() };
    region.deploy(&stack.render(), &[]);
    let started = Instant::now();
    let mut timeline = Vec::new();
    assert!(
        watch(&region, started, Duration::from_secs(30), &mut timeline, |(d, s)| d == 2 && s == 2)
    );
    // Burn every instance's CPU (new ones as they come) until 25 s from now, 25 minutes of AWS
    // time: the group's average is over 60 % with 2 instances, and between 30 and 60 % with 4
    // on this 2-core machine, so it neither grows further nor shrinks while it burns.
    // A busy machine (another build, say) can starve the burners below the threshold: then
    // the alarm rightly stays OK, and the drill runs again once the last burn has ended
    // (three rounds at most).
    let mut reached = None;
    for round in 1..=3 {
        timeline.push(format!("{:>5.1}s round {round}", started.elapsed().as_secs_f64()));
        let burn_until = Instant::now() + Duration::from_secs(25);
        let mut burning = std::collections::BTreeSet::new();
        let mut last = None;
        while Instant::now() < burn_until {
            for id in region.running().into_keys() {
                if burning.contains(&id) {
                    continue;
                }
                let left =
                    burn_until.saturating_duration_since(Instant::now()).as_secs_f64() * 60.0;
                let (ok, out, err) = run(
                    &[
                        "chaos",
                        "cpu-burn",
                        &id,
                        "--percent",
                        "100",
                        "--for",
                        &format!("{left:.0}s"),
                        "--endpoint-url",
                        &region.endpoint,
                    ],
                    region.path(),
                );
                assert!(ok, "{out}{err}");
                timeline.push(format!("{:>5.1}s burning {id}", started.elapsed().as_secs_f64()));
                burning.insert(id);
            }
            let now = capacity(&region);
            if last != Some(now) {
                timeline.push(format!(
                    "{:>5.1}s desired {} in service {}",
                    started.elapsed().as_secs_f64(),
                    now.0,
                    now.1
                ));
                last = Some(now);
            }
            if now == (4, 4) && reached.is_none() {
                reached = Some(Instant::now());
            }
            if reached.is_some() {
                assert_eq!(now.0, 4, "the group shrank while it burnt:\n{}", timeline.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        timeline.push(format!("{:>5.1}s the burn ends", started.elapsed().as_secs_f64()));
        if reached.is_some() {
            break;
        }
        // Back to two, unburnt, before the next round.
        watch(&region, started, Duration::from_secs(60), &mut timeline, |(d, s)| d == 2 && s == 2);
    }
    // The group's CPU as CloudWatch has it, in `cumulo metrics`.
    let (_, chart, _) = run(
        &[
            "metrics",
            "AWS/EC2",
            "--name",
            "CPUUtilization",
            "--dimension",
            "AutoScalingGroupName",
            "--since",
            "30m",
            "--endpoint-url",
            &region.endpoint,
        ],
        region.path(),
    );
    if reached.is_none() {
        let (_, alarms, _) = run(&["alarms", "--endpoint-url", &region.endpoint], region.path());
        panic!(
            "the group never reached its maximum:\n{}\n{chart}\n{alarms}\n{}",
            timeline.join("\n"),
            history(&region, "cpu-high")
        );
    }
    assert!(chart.contains("AutoScalingGroupName=web"), "{chart}");
    let back =
        watch(&region, started, Duration::from_secs(60), &mut timeline, |(d, s)| d == 2 && s == 2);
    let high = history(&region, "cpu-high");
    let low = history(&region, "cpu-low");
    println!(
        "capacity timeline:\n{}\n\ncpu-high:\n{high}\ncpu-low:\n{low}\n{chart}",
        timeline.join("\n")
    );
    assert!(back, "the group did not scale back in:\n{}\n{low}", timeline.join("\n"));
    assert!(high.contains("Alarm updated from OK to ALARM"), "{high}");
    assert!(high.contains("Successfully executed action arn:aws:autoscaling:"), "{high}");
    // The activities say why, as AWS says it.
    let (ok, out, _) = aws(
        &region.endpoint,
        &["autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "web"],
        region.path(),
    );
    assert!(ok, "{out}");
    assert!(out.contains("a monitor alarm cpu-high in state ALARM triggered policy"), "{out}");
    assert!(out.contains("a monitor alarm cpu-low in state ALARM triggered policy"), "{out}");
    region.stop();
}
