//! The AWS SDK for Rust against the region, as SDK users write it: ELBv2 and Auto Scaling over
//! the Query protocol (a target group, an ALB and its listener over the default subnets, a
//! group from a launch template behind it, a scaling policy), and CloudWatch over RPCv2-CBOR
//! (a datum put and read back, and a modelled error).

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};

use crate::support::{Running, aws, eventually, http};

/// An SDK config for the region at `endpoint`, with the test keys.
macro_rules! client {
    ($sdk:ident, $endpoint:expr) => {{
        let config = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .endpoint_url($endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "cumulo-tests"))
            .build();
        $sdk::Client::from_conf(config)
    }};
}

#[test]
fn the_rust_sdk_builds_a_group_behind_an_alb() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(
        &["serve", "--listen", "127.0.0.1:0", "--ephemeral", "--time-scale", "5"],
        dir.path(),
    );
    let endpoint = server.endpoint();
    // The launch template the group uses (EC2's SDK crate is too large to build for one call).
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "ec2",
            "create-launch-template",
            "--launch-template-name",
            "sdk-web",
            "--launch-template-data",
            &format!(
                r#"{{"ImageId":"ami-0abcdef1234567890","InstanceType":"t3.micro","UserData":"{}"}}"#,
                base64_text("#!/bin/bash\nexec cumulo demo-app --port 80\n")
            ),
            "--query",
            "LaunchTemplate.LaunchTemplateId",
            "--output",
            "text",
        ],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    let template = out.trim().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (dns_name, listener_port) = runtime.block_on(async {
        let elb = client!(aws_sdk_elasticloadbalancingv2, &endpoint);
        let asg = client!(aws_sdk_autoscaling, &endpoint);
        let tg = elb
            .create_target_group()
            .name("sdk-web")
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id("vpc-default0000000")
            .health_check_path("/health")
            .health_check_interval_seconds(5)
            .healthy_threshold_count(2)
            .send()
            .await
            .expect("CreateTargetGroup");
        let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_string();
        let lb = elb
            .create_load_balancer()
            .name("sdk-alb")
            .subnets("subnet-default00000000")
            .subnets("subnet-default00000001")
            .send()
            .await
            .expect("CreateLoadBalancer");
        let lb = &lb.load_balancers()[0];
        let zones: Vec<&str> =
            lb.availability_zones().iter().filter_map(|z| z.zone_name()).collect();
        assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
        let forward =
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg_arn).build();
        elb.create_listener()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(forward)
            .send()
            .await
            .expect("CreateListener");
        let missing = elb.describe_target_groups().names("nope").send().await.unwrap_err();
        assert_eq!(
            missing.as_service_error().and_then(|e| e.meta().code()),
            Some("TargetGroupNotFound")
        );

        asg.create_auto_scaling_group()
            .auto_scaling_group_name("sdk-web")
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(&template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(2)
            .max_size(4)
            .desired_capacity(2)
            .vpc_zone_identifier("subnet-default00000000,subnet-default00000001")
            .target_group_arns(&tg_arn)
            .send()
            .await
            .expect("CreateAutoScalingGroup");
        let mut in_service = 0;
        for _ in 0..120 {
            let groups = asg
                .describe_auto_scaling_groups()
                .auto_scaling_group_names("sdk-web")
                .send()
                .await
                .expect("DescribeAutoScalingGroups");
            in_service = groups.auto_scaling_groups()[0]
                .instances()
                .iter()
                .filter(|i| {
                    i.lifecycle_state()
                        == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
                })
                .count();
            if in_service == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(in_service, 2, "two instances in service");
        let policy = asg
            .put_scaling_policy()
            .auto_scaling_group_name("sdk-web")
            .policy_name("out")
            .adjustment_type("ChangeInCapacity")
            .scaling_adjustment(1)
            .send()
            .await
            .expect("PutScalingPolicy");
        assert!(policy.policy_arn().unwrap().contains(":scalingPolicy:"));

        // CloudWatch speaks RPCv2-CBOR: the SDK sends CBOR and reads CBOR back (a datum, its
        // statistics, and a modelled error).
        let cloudwatch = client!(aws_sdk_cloudwatch, &endpoint);
        let now = std::time::SystemTime::now();
        cloudwatch
            .put_metric_data()
            .namespace("Photos")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name("Uploads")
                    .value(3.0)
                    .build(),
            )
            .send()
            .await
            .expect("PutMetricData over CBOR");
        let listed =
            cloudwatch.list_metrics().namespace("Photos").send().await.expect("ListMetrics");
        assert_eq!(listed.metrics().len(), 1, "{listed:?}");
        let hour = std::time::Duration::from_secs(3_600);
        let stats = cloudwatch
            .get_metric_statistics()
            .namespace("Photos")
            .metric_name("Uploads")
            .start_time(aws_sdk_cloudwatch::primitives::DateTime::from(now - hour))
            .end_time(aws_sdk_cloudwatch::primitives::DateTime::from(now + hour))
            .period(60)
            .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
            .send()
            .await
            .expect("GetMetricStatistics over CBOR");
        let sums: Vec<f64> = stats.datapoints().iter().filter_map(|d| d.sum()).collect();
        assert_eq!(sums, vec![3.0], "{stats:?}");
        let e = cloudwatch
            .set_alarm_state()
            .alarm_name("nope")
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("testing")
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error().is_some_and(|e| e.is_resource_not_found()),
            "a modelled CBOR error the SDK reads: {e:?}"
        );

        (lb.dns_name().unwrap().to_string(), 80u16)
    });
    // Traffic through the listener reaches the group's instances.
    let (_, body) = http("GET", &format!("{endpoint}/_cumulo/endpoints"), &[]);
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let found = all
        .iter()
        .find(|e| e["dnsName"] == dns_name.as_str() && e["port"] == listener_port)
        .unwrap_or_else(|| panic!("no endpoint for {dns_name}: {body}"));
    let url = format!("http://{}/", found["address"].as_str().unwrap());
    eventually("the group to answer through the ALB", Duration::from_secs(30), || {
        let (status, body) = http("GET", &url, &[]);
        status == 200 && body.contains("Hello from i-")
    });
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

fn base64_text(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
