//! Wire-format goldens of the EC2 Auto Scaling API (`tests/golden/autoscaling/*.xml`): each
//! action's XML answer and its key errors, as the aws CLI parses them, on paused time against
//! an in-memory fleet (ids and times are then fixed; UUIDs are normalized). And the shared
//! request: a group created by the API and one created by the CloudFormation provider from
//! equivalent input are the same record. `UPDATE_EXPECT=1` rewrites the files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use api::query::QueryInput;
use async_trait::async_trait;
use autoscaling::AutoScaling;
use autoscaling::fleet::{Balancer, Compute, FleetError, InstanceView};
use clock::Clock;
use ec2::model::{LaunchConfigurationRecord, LaunchTemplateRecord};
use ec2::{InstanceChange, InstanceState, LaunchRequest};
use elb::{HealthChange, State};
use store::Store;
use tokio::sync::broadcast;

const TEMPLATE: &str = "lt-0123456789abcdef0";
const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";
const REQUEST_ID: &str = "11111111-2222-4333-8444-555555555555";

/// EC2 and ELB in memory: subnets `subnet-a`..`subnet-c` in us-east-1a..c, one launch
/// template, one target group; instances run at once.
struct Fleet {
    instances: Mutex<BTreeMap<String, InstanceView>>,
    configurations: Mutex<BTreeMap<String, LaunchConfigurationRecord>>,
    launched: AtomicU32,
    changes: broadcast::Sender<InstanceChange>,
    health: broadcast::Sender<HealthChange>,
}

#[async_trait]
impl Compute for Fleet {
    fn subscribe(&self) -> broadcast::Receiver<InstanceChange> {
        self.changes.subscribe()
    }
    fn instance(&self, id: &str) -> Result<Option<InstanceView>, FleetError> {
        Ok(self.instances.lock().unwrap().get(id).cloned())
    }
    fn subnet_zone(&self, subnet: &str) -> Result<Option<String>, FleetError> {
        Ok(match subnet {
            "subnet-a" | "subnet-b" | "subnet-c" => Some(format!("us-east-1{}", &subnet[7..])),
            _ => None,
        })
    }
    fn launch_template(&self, id: &str) -> Result<Option<LaunchTemplateRecord>, FleetError> {
        Ok((id == TEMPLATE || id == "web").then(|| LaunchTemplateRecord {
            id: TEMPLATE.into(),
            name: "web".into(),
            versions: [(1, serde_json::json!({"ImageId": "ami-00000001"}))].into(),
            default_version: 1,
            logical_id: None,
            created: Default::default(),
            tags: Default::default(),
        }))
    }
    fn launch_configuration(
        &self,
        name: &str,
    ) -> Result<Option<LaunchConfigurationRecord>, FleetError> {
        Ok(self.configurations.lock().unwrap().get(name).cloned())
    }
    fn launch_configurations(&self) -> Result<Vec<LaunchConfigurationRecord>, FleetError> {
        Ok(self.configurations.lock().unwrap().values().cloned().collect())
    }
    fn put_launch_configuration(
        &self,
        name: &str,
        data: serde_json::Value,
    ) -> Result<LaunchConfigurationRecord, FleetError> {
        let record = LaunchConfigurationRecord {
            name: name.into(),
            data,
            logical_id: None,
            arn: format!(
                "arn:aws:autoscaling:us-east-1:000000000000:launchConfiguration:{}:launchConfigurationName/{name}",
                aws_ids::uuid()
            ),
            created: "2026-11-22T10:00:00.000Z".into(),
        };
        self.configurations.lock().unwrap().insert(name.into(), record.clone());
        Ok(record)
    }
    fn delete_launch_configuration(&self, name: &str) -> Result<(), FleetError> {
        self.configurations.lock().unwrap().remove(name);
        Ok(())
    }
    async fn launch(&self, request: LaunchRequest) -> Result<InstanceView, FleetError> {
        let n = self.launched.fetch_add(1, Ordering::SeqCst) + 1;
        let subnet = request.subnet_id.clone().unwrap_or_else(|| "subnet-a".into());
        let zone = request.zone.clone().unwrap_or_else(|| format!("us-east-1{}", &subnet[7..]));
        let view = InstanceView {
            id: format!("i-{n:017x}"),
            state: InstanceState::Running,
            zone,
            subnet_id: subnet,
            impaired: false,
        };
        self.instances.lock().unwrap().insert(view.id.clone(), view.clone());
        let _ = self.changes.send(InstanceChange {
            id: view.id.clone(),
            state: InstanceState::Running,
            group: request.group,
        });
        Ok(view)
    }
    async fn terminate(&self, id: &str) -> Result<(), FleetError> {
        if let Some(i) = self.instances.lock().unwrap().get_mut(id) {
            i.state = InstanceState::Terminated;
        }
        let _ = self.changes.send(InstanceChange {
            id: id.into(),
            state: InstanceState::Terminated,
            group: None,
        });
        Ok(())
    }
}

#[async_trait]
impl Balancer for Fleet {
    fn subscribe(&self) -> broadcast::Receiver<HealthChange> {
        self.health.subscribe()
    }
    fn register(&self, _tg: &str, _ids: &[String]) -> Result<(), FleetError> {
        Ok(())
    }
    fn deregister(&self, _tg: &str, _ids: &[String]) -> Result<(), FleetError> {
        Ok(())
    }
    fn targets(&self, _tg: &str) -> Result<Vec<(String, State)>, FleetError> {
        Ok(Vec::new())
    }
    fn instance_health(&self, _id: &str) -> Option<State> {
        None
    }
    fn ports(&self, tg: &str) -> Result<Option<(u16, Option<u16>)>, FleetError> {
        Ok((tg == TARGET_GROUP).then_some((80, None)))
    }
    fn classic_target_groups(&self, _lb: &str) -> Result<Vec<String>, FleetError> {
        Ok(Vec::new())
    }
    async fn wait_drained(&self, _id: &str) {}
}

fn service() -> Arc<AutoScaling> {
    let store = Arc::new(Store::in_memory().unwrap());
    let clock = Clock::starting_at(1.0, "2026-11-22T10:00:00Z".parse().unwrap());
    let fleet = Arc::new(Fleet {
        instances: Mutex::default(),
        configurations: Mutex::default(),
        launched: AtomicU32::new(0),
        changes: broadcast::channel(64).0,
        health: broadcast::channel(64).0,
    });
    AutoScaling::new(store, clock, fleet.clone(), fleet, aws_ids::Account::default())
}

fn normalize(xml: &str) -> String {
    let uuid =
        fancy_regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
            .unwrap();
    let out = uuid.replace_all(xml, "{uuid}").into_owned();
    let mut reader = quick_xml::Reader::from_str(&out);
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

struct Golden {
    asg: Arc<AutoScaling>,
    mismatches: Vec<String>,
}

impl Golden {
    async fn call(&mut self, file: &str, pairs: &[(&str, &str)]) -> String {
        let q = QueryInput::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let action = q.get("Action").unwrap().to_string();
        let body = match api::autoscaling::handle(&self.asg, &action, &q, REQUEST_ID).await {
            Ok(body) => body,
            Err(e) => e.to_xml(api::autoscaling::XMLNS, REQUEST_ID),
        };
        let actual = normalize(&body);
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/autoscaling")
            .join(format!("{file}.xml"));
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&path, &actual).unwrap();
            } else {
                self.mismatches
                    .push(format!("{file}:\n--- expected\n{expected}--- actual\n{actual}"));
            }
        }
        actual
    }
}

/// Lets AWS time pass (the group's reconciler runs meanwhile).
async fn pass(seconds: u64) {
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn every_auto_scaling_answer_matches_its_golden_file() {
    let mut g = Golden { asg: service(), mismatches: Vec::new() };
    let create: &[(&str, &str)] = &[
        ("Action", "CreateAutoScalingGroup"),
        ("AutoScalingGroupName", "web"),
        ("LaunchTemplate.LaunchTemplateId", TEMPLATE),
        ("LaunchTemplate.Version", "$Latest"),
        ("MinSize", "1"),
        ("MaxSize", "6"),
        ("DesiredCapacity", "2"),
        ("VPCZoneIdentifier", "subnet-a,subnet-b"),
        ("TargetGroupARNs.member.1", TARGET_GROUP),
        ("HealthCheckType", "ELB"),
        ("HealthCheckGracePeriod", "60"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "web"),
        ("Tags.member.1.PropagateAtLaunch", "true"),
        ("LifecycleHookSpecificationList.member.1.LifecycleHookName", "drain"),
        (
            "LifecycleHookSpecificationList.member.1.LifecycleTransition",
            "autoscaling:EC2_INSTANCE_TERMINATING",
        ),
        ("LifecycleHookSpecificationList.member.1.HeartbeatTimeout", "60"),
        ("LifecycleHookSpecificationList.member.1.DefaultResult", "CONTINUE"),
    ];
    g.call("CreateAutoScalingGroup", create).await;
    g.call("Error-AlreadyExists", create).await;
    let mut no_launch: Vec<(&str, &str)> =
        create.iter().filter(|(k, _)| !k.starts_with("LaunchTemplate")).copied().collect();
    no_launch[1] = ("AutoScalingGroupName", "other");
    g.call("Error-NoLaunchSource", &no_launch).await;
    let mut bad: Vec<(&str, &str)> = create.to_vec();
    bad[1] = ("AutoScalingGroupName", "other");
    bad[2] = ("LaunchTemplate.LaunchTemplateId", "lt-0000000000000000f");
    g.call("Error-NoSuchLaunchTemplate", &bad).await;
    let mut bad: Vec<(&str, &str)> = create.to_vec();
    bad[1] = ("AutoScalingGroupName", "other");
    bad[7] = ("VPCZoneIdentifier", "subnet-a,subnet-x");
    g.call("Error-NoSuchSubnet", &bad).await;
    let mut bad: Vec<(&str, &str)> = create.to_vec();
    bad[1] = ("AutoScalingGroupName", "other");
    bad[8] = (
        "TargetGroupARNs.member.1",
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gone/0000000000000000",
    );
    g.call("Error-NoSuchTargetGroup", &bad).await;
    pass(30).await;
    g.call(
        "DescribeAutoScalingGroups",
        &[("Action", "DescribeAutoScalingGroups"), ("AutoScalingGroupNames.member.1", "web")],
    )
    .await;
    g.call("DescribeAutoScalingInstances", &[("Action", "DescribeAutoScalingInstances")]).await;
    g.call(
        "DescribeLifecycleHooks",
        &[("Action", "DescribeLifecycleHooks"), ("AutoScalingGroupName", "web")],
    )
    .await;

    // Launch configurations and a second group from one, over zones only.
    g.call(
        "CreateLaunchConfiguration",
        &[
            ("Action", "CreateLaunchConfiguration"),
            ("LaunchConfigurationName", "web-lc"),
            ("ImageId", "ami-00000001"),
            ("InstanceType", "t3.micro"),
            ("SecurityGroups.member.1", "sg-0123456789abcdef0"),
            ("UserData", "IyEvYmluL3NoCmVjaG8gaGk="),
            ("InstanceMonitoring.Enabled", "false"),
            ("BlockDeviceMappings.member.1.DeviceName", "/dev/xvda"),
            ("BlockDeviceMappings.member.1.Ebs.VolumeSize", "8"),
        ],
    )
    .await;
    g.call(
        "DescribeLaunchConfigurations",
        &[
            ("Action", "DescribeLaunchConfigurations"),
            ("LaunchConfigurationNames.member.1", "web-lc"),
        ],
    )
    .await;
    g.call(
        "CreateAutoScalingGroup-LaunchConfiguration",
        &[
            ("Action", "CreateAutoScalingGroup"),
            ("AutoScalingGroupName", "batch"),
            ("LaunchConfigurationName", "web-lc"),
            ("MinSize", "0"),
            ("MaxSize", "2"),
            ("AvailabilityZones.member.1", "us-east-1a"),
        ],
    )
    .await;
    g.call(
        "Error-LaunchConfigurationInUse",
        &[("Action", "DeleteLaunchConfiguration"), ("LaunchConfigurationName", "web-lc")],
    )
    .await;
    g.call(
        "DescribeAutoScalingGroups-Page1",
        &[("Action", "DescribeAutoScalingGroups"), ("MaxRecords", "1")],
    )
    .await;
    g.call(
        "Error-BadNextToken",
        &[("Action", "DescribeAutoScalingGroups"), ("NextToken", "nonsense")],
    )
    .await;

    // Scaling policies.
    g.call(
        "PutScalingPolicy-Simple",
        &[
            ("Action", "PutScalingPolicy"),
            ("AutoScalingGroupName", "web"),
            ("PolicyName", "add-two"),
            ("AdjustmentType", "ChangeInCapacity"),
            ("ScalingAdjustment", "2"),
            ("Cooldown", "120"),
        ],
    )
    .await;
    g.call(
        "PutScalingPolicy-Step",
        &[
            ("Action", "PutScalingPolicy"),
            ("AutoScalingGroupName", "web"),
            ("PolicyName", "steps"),
            ("PolicyType", "StepScaling"),
            ("AdjustmentType", "PercentChangeInCapacity"),
            ("MinAdjustmentMagnitude", "1"),
            ("StepAdjustments.member.1.MetricIntervalLowerBound", "0"),
            ("StepAdjustments.member.1.MetricIntervalUpperBound", "10"),
            ("StepAdjustments.member.1.ScalingAdjustment", "0"),
            ("StepAdjustments.member.2.MetricIntervalLowerBound", "10"),
            ("StepAdjustments.member.2.ScalingAdjustment", "50"),
        ],
    )
    .await;
    g.call(
        "PutScalingPolicy-TargetTracking",
        &[
            ("Action", "PutScalingPolicy"),
            ("AutoScalingGroupName", "web"),
            ("PolicyName", "cpu50"),
            ("PolicyType", "TargetTrackingScaling"),
            (
                "TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType",
                "ASGAverageCPUUtilization",
            ),
            ("TargetTrackingConfiguration.TargetValue", "50"),
        ],
    )
    .await;
    g.call(
        "Error-StepGap",
        &[
            ("Action", "PutScalingPolicy"),
            ("AutoScalingGroupName", "web"),
            ("PolicyName", "gappy"),
            ("PolicyType", "StepScaling"),
            ("AdjustmentType", "ChangeInCapacity"),
            ("StepAdjustments.member.1.MetricIntervalLowerBound", "0"),
            ("StepAdjustments.member.1.MetricIntervalUpperBound", "10"),
            ("StepAdjustments.member.1.ScalingAdjustment", "1"),
            ("StepAdjustments.member.2.MetricIntervalLowerBound", "20"),
            ("StepAdjustments.member.2.ScalingAdjustment", "2"),
        ],
    )
    .await;
    g.call("DescribePolicies", &[("Action", "DescribePolicies"), ("AutoScalingGroupName", "web")])
        .await;
    g.call(
        "ExecutePolicy",
        &[("Action", "ExecutePolicy"), ("AutoScalingGroupName", "web"), ("PolicyName", "add-two")],
    )
    .await;
    g.call(
        "Error-ExecutePolicyInCooldown",
        &[
            ("Action", "ExecutePolicy"),
            ("AutoScalingGroupName", "web"),
            ("PolicyName", "add-two"),
            ("HonorCooldown", "true"),
        ],
    )
    .await;
    g.call(
        "DeletePolicy",
        &[("Action", "DeletePolicy"), ("AutoScalingGroupName", "web"), ("PolicyName", "steps")],
    )
    .await;

    // Scheduled actions, hooks, notifications, tags, warm pools, metrics.
    g.call(
        "PutScheduledUpdateGroupAction",
        &[
            ("Action", "PutScheduledUpdateGroupAction"),
            ("AutoScalingGroupName", "web"),
            ("ScheduledActionName", "nightly"),
            ("Recurrence", "0 22 * * *"),
            ("DesiredCapacity", "1"),
            ("TimeZone", "Europe/Paris"),
        ],
    )
    .await;
    g.call(
        "BatchPutScheduledUpdateGroupAction",
        &[
            ("Action", "BatchPutScheduledUpdateGroupAction"),
            ("AutoScalingGroupName", "web"),
            ("ScheduledUpdateGroupActions.member.1.ScheduledActionName", "morning"),
            ("ScheduledUpdateGroupActions.member.1.Recurrence", "0 7 * * *"),
            ("ScheduledUpdateGroupActions.member.1.DesiredCapacity", "3"),
            ("ScheduledUpdateGroupActions.member.2.ScheduledActionName", "broken"),
            ("ScheduledUpdateGroupActions.member.2.Recurrence", "not a cron"),
        ],
    )
    .await;
    g.call(
        "DescribeScheduledActions",
        &[("Action", "DescribeScheduledActions"), ("AutoScalingGroupName", "web")],
    )
    .await;
    g.call(
        "BatchDeleteScheduledAction",
        &[
            ("Action", "BatchDeleteScheduledAction"),
            ("AutoScalingGroupName", "web"),
            ("ScheduledActionNames.member.1", "morning"),
            ("ScheduledActionNames.member.2", "never-was"),
        ],
    )
    .await;
    g.call(
        "PutLifecycleHook",
        &[
            ("Action", "PutLifecycleHook"),
            ("AutoScalingGroupName", "web"),
            ("LifecycleHookName", "warm"),
            ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
        ],
    )
    .await;
    g.call(
        "DeleteLifecycleHook",
        &[
            ("Action", "DeleteLifecycleHook"),
            ("AutoScalingGroupName", "web"),
            ("LifecycleHookName", "warm"),
        ],
    )
    .await;
    g.call(
        "PutNotificationConfiguration",
        &[
            ("Action", "PutNotificationConfiguration"),
            ("AutoScalingGroupName", "web"),
            ("TopicARN", "arn:aws:sns:us-east-1:000000000000:ops"),
            ("NotificationTypes.member.1", "autoscaling:EC2_INSTANCE_LAUNCH"),
            ("NotificationTypes.member.2", "autoscaling:EC2_INSTANCE_TERMINATE"),
        ],
    )
    .await;
    g.call(
        "DescribeNotificationConfigurations",
        &[("Action", "DescribeNotificationConfigurations")],
    )
    .await;
    g.call(
        "CreateOrUpdateTags",
        &[
            ("Action", "CreateOrUpdateTags"),
            ("Tags.member.1.ResourceId", "batch"),
            ("Tags.member.1.ResourceType", "auto-scaling-group"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "data"),
            ("Tags.member.1.PropagateAtLaunch", "false"),
        ],
    )
    .await;
    g.call(
        "DescribeTags",
        &[
            ("Action", "DescribeTags"),
            ("Filters.member.1.Name", "key"),
            ("Filters.member.1.Values.member.1", "team"),
            ("Filters.member.2.Name", "propagate-at-launch"),
            ("Filters.member.2.Values.member.1", "true"),
        ],
    )
    .await;
    g.call(
        "DeleteTags",
        &[
            ("Action", "DeleteTags"),
            ("Tags.member.1.ResourceId", "batch"),
            ("Tags.member.1.Key", "team"),
        ],
    )
    .await;
    g.call(
        "PutWarmPool",
        &[
            ("Action", "PutWarmPool"),
            ("AutoScalingGroupName", "web"),
            ("MinSize", "1"),
            ("InstanceReusePolicy.ReuseOnScaleIn", "true"),
        ],
    )
    .await;
    g.call("DescribeWarmPool", &[("Action", "DescribeWarmPool"), ("AutoScalingGroupName", "web")])
        .await;
    g.call(
        "EnableMetricsCollection",
        &[
            ("Action", "EnableMetricsCollection"),
            ("AutoScalingGroupName", "batch"),
            ("Metrics.member.1", "GroupDesiredCapacity"),
            ("Granularity", "1Minute"),
        ],
    )
    .await;
    for action in [
        "DescribeAccountLimits",
        "DescribeAdjustmentTypes",
        "DescribeTerminationPolicyTypes",
        "DescribeLifecycleHookTypes",
        "DescribeAutoScalingNotificationTypes",
        "DescribeScalingProcessTypes",
        "DescribeMetricCollectionTypes",
    ] {
        g.call(action, &[("Action", action)]).await;
    }

    // Deletion: refused while instances remain, unless forced.
    g.call(
        "Error-DeleteInUse",
        &[("Action", "DeleteAutoScalingGroup"), ("AutoScalingGroupName", "web")],
    )
    .await;
    g.call(
        "DeleteAutoScalingGroup",
        &[
            ("Action", "DeleteAutoScalingGroup"),
            ("AutoScalingGroupName", "web"),
            ("ForceDelete", "true"),
        ],
    )
    .await;
    g.call(
        "DescribeAutoScalingGroups-Deleting",
        &[("Action", "DescribeAutoScalingGroups"), ("AutoScalingGroupNames.member.1", "web")],
    )
    .await;
    pass(600).await;
    let after = g
        .call(
            "DescribeAutoScalingGroups-Deleted",
            &[("Action", "DescribeAutoScalingGroups"), ("AutoScalingGroupNames.member.1", "web")],
        )
        .await;
    assert!(!after.contains("<AutoScalingGroupName>web<"), "{after}");
    assert!(g.mismatches.is_empty(), "{}", g.mismatches.join("\n"));
}

/// The same group asked for through the API and through CloudFormation's properties: one
/// request type, one record (apart from its name, ARN and creation time).
#[tokio::test(start_paused = true)]
async fn a_group_from_the_api_and_one_from_a_template_are_the_same_record() {
    let asg = service();
    let q = QueryInput::from_pairs(
        [
            ("AutoScalingGroupName", "from-api"),
            ("LaunchTemplate.LaunchTemplateName", "web"),
            ("LaunchTemplate.Version", "$Latest"),
            ("MinSize", "1"),
            ("MaxSize", "4"),
            ("VPCZoneIdentifier", "subnet-a, subnet-b"),
            ("TargetGroupARNs.member.1", TARGET_GROUP),
            ("HealthCheckType", "ELB"),
            ("HealthCheckGracePeriod", "90"),
            ("DefaultCooldown", "120"),
            ("TerminationPolicies.member.1", "OldestInstance"),
            ("NewInstancesProtectedFromScaleIn", "true"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "web"),
            ("Tags.member.1.PropagateAtLaunch", "true"),
            ("LifecycleHookSpecificationList.member.1.LifecycleHookName", "drain"),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    api::autoscaling::handle(&asg, "CreateAutoScalingGroup", &q, REQUEST_ID).await.unwrap();
    let props = serde_json::json!({
        "LaunchTemplate": {"LaunchTemplateName": "web", "Version": "$Latest"},
        "MinSize": "1",
        "MaxSize": "4",
        "VPCZoneIdentifier": ["subnet-a", "subnet-b"],
        "TargetGroupARNs": [TARGET_GROUP],
        "HealthCheckType": "ELB",
        "HealthCheckGracePeriod": 90,
        "Cooldown": "120",
        "TerminationPolicies": ["OldestInstance"],
        "NewInstancesProtectedFromScaleIn": true,
        "Tags": [{"Key": "team", "Value": "web", "PropagateAtLaunch": "true"}],
        "LifecycleHookSpecificationList": [{
            "LifecycleHookName": "drain",
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"
        }]
    });
    asg.create_group(autoscaling::providers::group_request(&props, "from-template", None)).unwrap();
    let (a, b) =
        (asg.group("from-api").unwrap().unwrap(), asg.group("from-template").unwrap().unwrap());
    let same = |mut g: autoscaling::model::GroupRecord| {
        g.name = String::new();
        g.arn = String::new();
        g.created = String::new();
        g.instances.clear();
        g
    };
    assert_eq!(same(a), same(b));
    let hooks = |name: &str| {
        asg.hooks_of(name)
            .unwrap()
            .into_iter()
            .map(|h| (h.name, h.transition, h.heartbeat_timeout, h.default_result))
            .collect::<Vec<_>>()
    };
    assert_eq!(hooks("from-api"), hooks("from-template"));
    assert_eq!(hooks("from-api")[0].2, 3600, "AWS's default heartbeat timeout");
}
