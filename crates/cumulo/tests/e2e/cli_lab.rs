//! The edX lab done as a user with only the aws CLI (v1) would do it, no template: a VPC with
//! two public subnets, a security group, an IAM role and instance profile, two instances
//! running the demo app from UserData, a target group, an ALB and its listener. Traffic
//! reaches both; one stopped instance leaves the target group and traffic keeps flowing; it
//! starts again and rejoins.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Running, aws, eventually, http};

/// Runs `aws ARGS --output json` and returns the parsed answer (`null` for an empty one).
fn call(endpoint: &str, dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (ok, out, err) = aws(endpoint, &all, dir);
    assert!(ok, "aws {}: {out}{err}", args.join(" "));
    if out.trim().is_empty() { Value::Null } else { serde_json::from_str(&out).unwrap() }
}

/// `aws ARGS` expected to fail; returns what it printed.
fn refused(endpoint: &str, dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = aws(endpoint, args, dir);
    assert!(!ok, "aws {} should fail: {out}", args.join(" "));
    err
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {v}"))
        .to_string()
}

/// Where a load balancer's listener on `port` answers (what `cumulo outputs` prints).
fn listener_url(endpoint: &str, dns_name: &str, port: u16) -> String {
    let (_, body) = http("GET", &format!("{endpoint}/_cumulo/endpoints"), &[]);
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    let found = all
        .iter()
        .find(|e| e["dnsName"] == dns_name && e["port"] == port)
        .unwrap_or_else(|| panic!("no endpoint for {dns_name}:{port} in {body}"));
    format!("http://{}/", found["address"].as_str().unwrap())
}

/// An instance's machine and app processes, when both run.
fn instance_pids(endpoint: &str, id: &str) -> Option<(u64, u64)> {
    let all = crate::support::instances(endpoint);
    let i = all.iter().find(|i| i["instanceId"] == id)?;
    Some((i["machinePid"].as_u64()?, i["appPid"].as_u64()?))
}

/// The instance ids that answered `n` requests to `url`.
fn answering(url: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| {
            let (status, body) = http("GET", url, &[]);
            (status == 200).then(|| body.split_whitespace().nth(2).unwrap_or_default().to_string())
        })
        .collect()
}

/// An ALB over two subnets with an HTTP listener on 80 forwarding to `tg_arn`: its ARN and
/// DNS name.
fn alb(
    endpoint: &str,
    dir: &Path,
    name: &str,
    subnets: [&str; 2],
    group: &str,
    tg_arn: &str,
) -> (String, String) {
    let lb = call(
        endpoint,
        dir,
        &[
            "elbv2",
            "create-load-balancer",
            "--name",
            name,
            "--subnets",
            subnets[0],
            subnets[1],
            "--security-groups",
            group,
        ],
    );
    let arn = text(&lb, "/LoadBalancers/0/LoadBalancerArn");
    call(
        endpoint,
        dir,
        &[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            &arn,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ],
    );
    (arn, text(&lb, "/LoadBalancers/0/DNSName"))
}

const USER_DATA: &str = "#!/bin/bash\nexec cumulo demo-app --port 80\n";

#[test]
fn the_edx_lab_by_aws_commands_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("userdata.txt"), USER_DATA).unwrap();
    std::fs::write(
        d.join("trust.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    )
    .unwrap();
    // 5 s health checks at time scale 5: one check a second.
    let mut server = Running::start(
        &["serve", "--listen", "127.0.0.1:0", "--ephemeral", "--time-scale", "5"],
        d,
    );
    let ep = server.endpoint();
    let ep = ep.as_str();

    // Every account has a default VPC with a subnet per zone.
    let vpcs = call(ep, d, &["ec2", "describe-vpcs", "--filters", "Name=is-default,Values=true"]);
    assert_eq!(vpcs["Vpcs"][0]["CidrBlock"], "172.31.0.0/16", "{vpcs}");
    let subnets = call(ep, d, &["ec2", "describe-subnets"]);
    assert_eq!(subnets["Subnets"].as_array().unwrap().len(), 3, "{subnets}");

    // The lab's network: edx-build-aws-vpc with a public subnet in each of two zones.
    let vpc = call(ep, d, &["ec2", "create-vpc", "--cidr-block", "10.1.0.0/16"]);
    let vpc_id = text(&vpc, "/Vpc/VpcId");
    call(
        ep,
        d,
        &[
            "ec2",
            "create-tags",
            "--resources",
            &vpc_id,
            "--tags",
            "Key=Name,Value=edx-build-aws-vpc",
        ],
    );
    let mut subnet_ids = Vec::new();
    for (name, cidr, zone) in [
        ("edx-subnet-public-a", "10.1.1.0/24", "us-east-1a"),
        ("edx-subnet-public-b", "10.1.2.0/24", "us-east-1b"),
    ] {
        let subnet = call(
            ep,
            d,
            &[
                "ec2",
                "create-subnet",
                "--vpc-id",
                &vpc_id,
                "--cidr-block",
                cidr,
                "--availability-zone",
                zone,
                "--tag-specifications",
                &format!("ResourceType=subnet,Tags=[{{Key=Name,Value={name}}}]"),
            ],
        );
        let id = text(&subnet, "/Subnet/SubnetId");
        call(
            ep,
            d,
            &["ec2", "modify-subnet-attribute", "--subnet-id", &id, "--map-public-ip-on-launch"],
        );
        subnet_ids.push(id);
    }
    let err = refused(
        ep,
        d,
        &["ec2", "create-subnet", "--vpc-id", &vpc_id, "--cidr-block", "10.1.1.128/25"],
    );
    assert!(err.contains("InvalidSubnet.Conflict"), "{err}");
    let tagged = call(
        ep,
        d,
        &[
            "ec2",
            "describe-subnets",
            "--filters",
            "Name=tag:Name,Values=edx-subnet-public-*",
            &format!("Name=vpc-id,Values={vpc_id}"),
        ],
    );
    assert_eq!(tagged["Subnets"].as_array().unwrap().len(), 2, "{tagged}");
    assert_eq!(tagged["Subnets"][0]["MapPublicIpOnLaunch"], true, "{tagged}");

    // web-server-sg: HTTP and SSH from anywhere.
    let sg = call(
        ep,
        d,
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "web-server-sg",
            "--description",
            "Allow SSH and HTTP traffic",
            "--vpc-id",
            &vpc_id,
        ],
    );
    let sg_id = text(&sg, "/GroupId");
    for port in ["80", "22"] {
        call(
            ep,
            d,
            &[
                "ec2",
                "authorize-security-group-ingress",
                "--group-id",
                &sg_id,
                "--protocol",
                "tcp",
                "--port",
                port,
                "--cidr",
                "0.0.0.0/0",
            ],
        );
    }
    let err = refused(
        ep,
        d,
        &[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            &sg_id,
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--cidr",
            "0.0.0.0/0",
        ],
    );
    assert!(err.contains("InvalidPermission.Duplicate"), "{err}");
    let groups = call(
        ep,
        d,
        &["ec2", "describe-security-groups", "--filters", "Name=group-name,Values=web-server-sg"],
    );
    let ports: BTreeSet<i64> = groups["SecurityGroups"][0]["IpPermissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["FromPort"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, BTreeSet::from([22, 80]), "{groups}");

    // ec2-webserver-role, and the instance profile the console makes with it.
    call(
        ep,
        d,
        &[
            "iam",
            "create-role",
            "--role-name",
            "ec2-webserver-role",
            "--assume-role-policy-document",
            "file://trust.json",
        ],
    );
    for policy in ["AmazonS3FullAccess", "AmazonRekognitionReadOnlyAccess"] {
        call(
            ep,
            d,
            &[
                "iam",
                "attach-role-policy",
                "--role-name",
                "ec2-webserver-role",
                "--policy-arn",
                &format!("arn:aws:iam::aws:policy/{policy}"),
            ],
        );
    }
    call(
        ep,
        d,
        &["iam", "create-instance-profile", "--instance-profile-name", "ec2-webserver-role"],
    );
    call(
        ep,
        d,
        &[
            "iam",
            "add-role-to-instance-profile",
            "--instance-profile-name",
            "ec2-webserver-role",
            "--role-name",
            "ec2-webserver-role",
        ],
    );
    let role = call(ep, d, &["iam", "get-role", "--role-name", "ec2-webserver-role"]);
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com",
        "botocore reads the URL-encoded trust policy back: {role}"
    );
    let key = call(ep, d, &["ec2", "create-key-pair", "--key-name", "edx-key"]);
    assert!(text(&key, "/KeyMaterial").contains("PRIVATE KEY"), "{key}");

    // WebServer1 in zone a, WebServer2 in zone b, the demo app from UserData.
    let mut ids = Vec::new();
    for (name, subnet) in [("WebServer1", &subnet_ids[0]), ("WebServer2", &subnet_ids[1])] {
        let run = call(
            ep,
            d,
            &[
                "ec2",
                "run-instances",
                "--image-id",
                "ami-0abcdef1234567890",
                "--instance-type",
                "t2.micro",
                "--subnet-id",
                subnet,
                "--security-group-ids",
                &sg_id,
                "--key-name",
                "edx-key",
                "--iam-instance-profile",
                "Name=ec2-webserver-role",
                "--user-data",
                "file://userdata.txt",
                "--tag-specifications",
                &format!("ResourceType=instance,Tags=[{{Key=Name,Value={name}}}]"),
            ],
        );
        assert_eq!(run["Instances"][0]["State"]["Name"], "pending", "{run}");
        ids.push(text(&run, "/Instances/0/InstanceId"));
    }
    let mut wait = vec!["ec2", "wait", "instance-running", "--instance-ids"];
    wait.extend(ids.iter().map(String::as_str));
    call(ep, d, &wait);
    let described = call(
        ep,
        d,
        &[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=WebServer*",
            "Name=instance-state-name,Values=running",
        ],
    );
    let zones: BTreeSet<String> = described["Reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(r, "/Instances/0/Placement/AvailabilityZone"))
        .collect();
    assert_eq!(zones, BTreeSet::from(["us-east-1a".to_string(), "us-east-1b".to_string()]));
    let first = &described["Reservations"][0]["Instances"][0];
    assert!(text(first, "/PrivateIpAddress").starts_with("10.1."), "{first}");
    assert!(
        first["PublicIpAddress"].is_string(),
        "a public subnet gives a public address: {first}"
    );
    assert!(
        text(first, "/IamInstanceProfile/Arn").ends_with("instance-profile/ec2-webserver-role")
    );
    let status = call(ep, d, &["ec2", "describe-instance-status", "--instance-ids", &ids[0]]);
    assert_eq!(status["InstanceStatuses"][0]["InstanceStatus"]["Status"], "ok", "{status}");

    // webserver-target, photos-alb over the two subnets, a listener on 80.
    let tg = call(
        ep,
        d,
        &[
            "elbv2",
            "create-target-group",
            "--name",
            "webserver-target",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--vpc-id",
            &vpc_id,
            "--health-check-path",
            "/health",
            "--health-check-interval-seconds",
            "5",
            "--healthy-threshold-count",
            "2",
            "--unhealthy-threshold-count",
            "2",
        ],
    );
    let tg_arn = text(&tg, "/TargetGroups/0/TargetGroupArn");
    let (lb_arn, dns_name) =
        alb(ep, d, "photos-alb", [&subnet_ids[0], &subnet_ids[1]], &sg_id, &tg_arn);
    call(
        ep,
        d,
        &[
            "elbv2",
            "register-targets",
            "--target-group-arn",
            &tg_arn,
            "--targets",
            &format!("Id={}", ids[0]),
            &format!("Id={}", ids[1]),
        ],
    );
    call(ep, d, &["elbv2", "wait", "target-in-service", "--target-group-arn", &tg_arn]);

    // Traffic reaches both.
    let url = listener_url(ep, &dns_name, 80);
    let both: BTreeSet<String> = ids.iter().cloned().collect();
    eventually("both instances to answer through the ALB", Duration::from_secs(30), || {
        answering(&url, 8) == both
    });

    // The DNS name answers in curl (which sends `*.localhost` to 127.0.0.1, as browsers do):
    // a front there hands each connection to the load balancer its Host names. A port of its
    // own, so that other regions' fronts on port 80 (other tests) are not in the way.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    call(
        ep,
        d,
        &[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            &lb_arn,
            "--protocol",
            "HTTP",
            "--port",
            &port.to_string(),
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={tg_arn}"),
        ],
    );
    let curl = |host: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "10", &format!("http://{host}:{port}/")])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = curl(&dns_name);
    assert!(
        ids.iter().any(|id| body.contains(id.as_str())),
        "curl http://{dns_name}:{port}/ answers: {body:?}"
    );
    let body = curl("nobody-1.us-east-1.elb.localhost");
    assert!(
        body.contains("No load balancer here is named nobody-1.us-east-1.elb.localhost"),
        "{body:?}"
    );

    // WebServer2 stops: the target group shows it at once, traffic keeps flowing to
    // WebServer1.
    call(ep, d, &["ec2", "stop-instances", "--instance-ids", &ids[1]]);
    let health = call(
        ep,
        d,
        &[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &tg_arn,
            "--targets",
            &format!("Id={}", ids[1]),
        ],
    );
    let state = text(&health, "/TargetHealthDescriptions/0/TargetHealth/State");
    assert_eq!(state, "unused", "a stopping instance takes no traffic: {health}");
    let answers: Vec<(u16, String)> = (0..20).map(|_| http("GET", &url, &[])).collect();
    assert!(
        answers.iter().all(|(status, body)| *status == 200 && body.contains(&ids[0])),
        "every request goes to WebServer1 while WebServer2 stops: {answers:?}"
    );
    call(ep, d, &["ec2", "wait", "instance-stopped", "--instance-ids", &ids[1]]);
    let health = call(ep, d, &["elbv2", "describe-target-health", "--target-group-arn", &tg_arn]);
    let reasons: BTreeSet<String> = health["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["TargetHealth"]["State"].as_str().unwrap(),
                t["TargetHealth"]["Reason"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["healthy -".to_string(), "unused Target.InvalidState".to_string()]),
        "{health}"
    );
    assert_eq!(answering(&url, 10), BTreeSet::from([ids[0].clone()]));

    // It starts again and rejoins.
    call(ep, d, &["ec2", "start-instances", "--instance-ids", &ids[1]]);
    eventually("WebServer2 to rejoin", Duration::from_secs(40), || answering(&url, 8) == both);

    // A reboot: WebServer1 stays running, its app starts again and takes traffic again.
    let before = instance_pids(ep, &ids[0]);
    call(ep, d, &["ec2", "reboot-instances", "--instance-ids", &ids[0]]);
    eventually("WebServer1's app to start again", Duration::from_secs(20), || {
        let now = instance_pids(ep, &ids[0]);
        now.is_some() && now != before
    });
    let state = call(ep, d, &["ec2", "describe-instances", "--instance-ids", &ids[0]]);
    assert_eq!(state["Reservations"][0]["Instances"][0]["State"]["Name"], "running", "{state}");
    eventually("both to answer after the reboot", Duration::from_secs(40), || {
        answering(&url, 8) == both
    });

    // Cleaning up as the lab does: instances, then the load balancer.
    let mut terminate = vec!["ec2", "terminate-instances", "--instance-ids"];
    terminate.extend(ids.iter().map(String::as_str));
    call(ep, d, &terminate);
    call(ep, d, &["elbv2", "delete-load-balancer", "--load-balancer-arn", &lb_arn]);
    let err = refused(ep, d, &["ec2", "delete-vpc", "--vpc-id", &vpc_id]);
    assert!(err.contains("DependencyViolation"), "{err}");

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

/// An instance's directory (its home: where its files live), found under the region's
/// runtime directory in the temporary directory.
fn instance_dir(id: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cumulo-run-"))
        .map(|e| e.path().join("instances").join(id))
        .find(|p| p.is_dir())
}

/// The HA blog post by aws commands: a VPC with public and private subnets in two zones, an
/// internet gateway and a NAT gateway with their route tables; a reference server set up by
/// its UserData, cloned with `create-image`; a launch template from that image and an Auto
/// Scaling group over the two private subnets behind an ALB in the public ones.
#[test]
fn the_ha_blog_by_aws_commands_clones_a_server_into_a_group_over_two_zones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("reference.sh"),
        "#!/bin/bash\nmkdir -p \"$HOME/root/var/www/html\"\necho 'photos v1' > \"$HOME/root/var/www/html/index.html\"\nexec cumulo demo-app --port 80\n",
    )
    .unwrap();
    let mut server = Running::start(
        &["serve", "--listen", "127.0.0.1:0", "--ephemeral", "--time-scale", "5"],
        d,
    );
    let ep = server.endpoint();
    let ep = ep.as_str();

    // The network.
    let vpc_id =
        text(&call(ep, d, &["ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"]), "/Vpc/VpcId");
    let igw = text(
        &call(ep, d, &["ec2", "create-internet-gateway"]),
        "/InternetGateway/InternetGatewayId",
    );
    call(
        ep,
        d,
        &["ec2", "attach-internet-gateway", "--internet-gateway-id", &igw, "--vpc-id", &vpc_id],
    );
    let subnet = |cidr: &str, zone: &str| {
        text(
            &call(
                ep,
                d,
                &[
                    "ec2",
                    "create-subnet",
                    "--vpc-id",
                    &vpc_id,
                    "--cidr-block",
                    cidr,
                    "--availability-zone",
                    zone,
                ],
            ),
            "/Subnet/SubnetId",
        )
    };
    let public = [subnet("10.0.0.0/24", "us-east-1a"), subnet("10.0.1.0/24", "us-east-1b")];
    let private = [subnet("10.0.2.0/23", "us-east-1a"), subnet("10.0.4.0/23", "us-east-1b")];
    let public_rt = text(
        &call(ep, d, &["ec2", "create-route-table", "--vpc-id", &vpc_id]),
        "/RouteTable/RouteTableId",
    );
    call(
        ep,
        d,
        &[
            "ec2",
            "create-route",
            "--route-table-id",
            &public_rt,
            "--destination-cidr-block",
            "0.0.0.0/0",
            "--gateway-id",
            &igw,
        ],
    );
    for s in &public {
        call(
            ep,
            d,
            &["ec2", "associate-route-table", "--route-table-id", &public_rt, "--subnet-id", s],
        );
        call(
            ep,
            d,
            &["ec2", "modify-subnet-attribute", "--subnet-id", s, "--map-public-ip-on-launch"],
        );
    }
    let eip = text(&call(ep, d, &["ec2", "allocate-address", "--domain", "vpc"]), "/AllocationId");
    let nat = call(
        ep,
        d,
        &["ec2", "create-nat-gateway", "--subnet-id", &public[0], "--allocation-id", &eip],
    );
    let nat = text(&nat, "/NatGateway/NatGatewayId");
    call(ep, d, &["ec2", "wait", "nat-gateway-available", "--nat-gateway-ids", &nat]);
    let private_rt = text(
        &call(ep, d, &["ec2", "create-route-table", "--vpc-id", &vpc_id]),
        "/RouteTable/RouteTableId",
    );
    call(
        ep,
        d,
        &[
            "ec2",
            "create-route",
            "--route-table-id",
            &private_rt,
            "--destination-cidr-block",
            "0.0.0.0/0",
            "--nat-gateway-id",
            &nat,
        ],
    );
    for s in &private {
        call(
            ep,
            d,
            &["ec2", "associate-route-table", "--route-table-id", &private_rt, "--subnet-id", s],
        );
    }
    let tables = call(
        ep,
        d,
        &["ec2", "describe-route-tables", "--filters", &format!("Name=vpc-id,Values={vpc_id}")],
    );
    assert_eq!(
        tables["RouteTables"].as_array().unwrap().len(),
        3,
        "main, public, private: {tables}"
    );
    let sg = text(
        &call(
            ep,
            d,
            &[
                "ec2",
                "create-security-group",
                "--group-name",
                "web",
                "--description",
                "web",
                "--vpc-id",
                &vpc_id,
            ],
        ),
        "/GroupId",
    );
    call(
        ep,
        d,
        &[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            &sg,
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--cidr",
            "0.0.0.0/0",
        ],
    );

    // The reference server, set up by its UserData, then cloned.
    let reference = call(
        ep,
        d,
        &[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0abcdef1234567890",
            "--instance-type",
            "t3.micro",
            "--subnet-id",
            &public[0],
            "--security-group-ids",
            &sg,
            "--user-data",
            "file://reference.sh",
        ],
    );
    let reference = text(&reference, "/Instances/0/InstanceId");
    call(ep, d, &["ec2", "wait", "instance-running", "--instance-ids", &reference]);
    let page = |id: &str| instance_dir(id).map(|p| p.join("root/var/www/html/index.html"));
    eventually("the reference server to set itself up", Duration::from_secs(20), || {
        page(&reference).is_some_and(|p| p.exists())
    });
    let image = text(
        &call(
            ep,
            d,
            &["ec2", "create-image", "--instance-id", &reference, "--name", "photos-web-v1"],
        ),
        "/ImageId",
    );
    let images = call(ep, d, &["ec2", "describe-images", "--owners", "self"]);
    assert_eq!(images["Images"][0]["Name"], "photos-web-v1", "{images}");
    let template = call(
        ep,
        d,
        &[
            "ec2",
            "create-launch-template",
            "--launch-template-name",
            "photos-web",
            "--launch-template-data",
            &format!(
                r#"{{"ImageId":"{image}","InstanceType":"t3.micro","SecurityGroupIds":["{sg}"]}}"#
            ),
        ],
    );
    let template = text(&template, "/LaunchTemplate/LaunchTemplateId");

    // The ALB in the public subnets, the group in the private ones.
    let tg = call(
        ep,
        d,
        &[
            "elbv2",
            "create-target-group",
            "--name",
            "photos-web",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--vpc-id",
            &vpc_id,
            "--health-check-path",
            "/health",
            "--health-check-interval-seconds",
            "5",
            "--healthy-threshold-count",
            "2",
        ],
    );
    let tg_arn = text(&tg, "/TargetGroups/0/TargetGroupArn");
    let (_, dns_name) = alb(ep, d, "photos", [&public[0], &public[1]], &sg, &tg_arn);
    call(
        ep,
        d,
        &[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            "photos-web",
            "--launch-template",
            &format!("LaunchTemplateId={template},Version=$Latest"),
            "--min-size",
            "2",
            "--max-size",
            "4",
            "--desired-capacity",
            "2",
            "--vpc-zone-identifier",
            &format!("{},{}", private[0], private[1]),
            "--target-group-arns",
            &tg_arn,
            "--health-check-type",
            "ELB",
            "--health-check-grace-period",
            "30",
        ],
    );
    let mut members = Vec::new();
    eventually("two instances in service", Duration::from_secs(60), || {
        let groups = call(
            ep,
            d,
            &[
                "autoscaling",
                "describe-auto-scaling-groups",
                "--auto-scaling-group-names",
                "photos-web",
            ],
        );
        members = groups["AutoScalingGroups"][0]["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["LifecycleState"] == "InService")
            .map(|i| (text(i, "/InstanceId"), text(i, "/AvailabilityZone")))
            .collect();
        members.len() == 2
    });
    let zones: BTreeSet<&str> = members.iter().map(|(_, z)| z.as_str()).collect();
    assert_eq!(zones, BTreeSet::from(["us-east-1a", "us-east-1b"]));
    for (id, _) in &members {
        let copied = page(id).and_then(|p| std::fs::read_to_string(p).ok());
        assert_eq!(copied.as_deref(), Some("photos v1\n"), "{id} starts from the image's files");
    }
    let described = call(ep, d, &["ec2", "describe-instances", "--instance-ids", &members[0].0]);
    let first = &described["Reservations"][0]["Instances"][0];
    assert_eq!(first["ImageId"], image.as_str(), "{first}");
    assert!(
        first["PublicIpAddress"].is_null(),
        "a private subnet gives no public address: {first}"
    );

    // Serving from both clones; the reference server can go.
    let url = listener_url(ep, &dns_name, 80);
    let clones: BTreeSet<String> = members.iter().map(|(id, _)| id.clone()).collect();
    eventually("both clones to answer through the ALB", Duration::from_secs(30), || {
        answering(&url, 8) == clones
    });
    call(ep, d, &["ec2", "terminate-instances", "--instance-ids", &reference]);
    assert_eq!(answering(&url, 8), clones);

    call(
        ep,
        d,
        &[
            "autoscaling",
            "delete-auto-scaling-group",
            "--auto-scaling-group-name",
            "photos-web",
            "--force-delete",
        ],
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

/// The same architecture with boto3, as SDK users write it (the script is
/// `scripts/boto3_lab.py`): its instances run in two zones and answer through the ALB.
#[test]
fn boto3_builds_the_lab_and_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(
        &["serve", "--listen", "127.0.0.1:0", "--ephemeral", "--time-scale", "5"],
        dir.path(),
    );
    let ep = server.endpoint();
    let python = crate::support::aws_cli().with_file_name("python");
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/scripts/boto3_lab.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .env("AWS_ENDPOINT_URL", &ep)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["account"], "000000000000");
    assert_eq!(summary["zones"], serde_json::json!(["us-east-1a", "us-east-1b"]), "{summary}");
    assert_eq!(summary["refused"], "InvalidSubnetID.NotFound", "{summary}");
    assert_eq!(summary["signups"], serde_json::json!([4.0]), "{summary}");
    assert_eq!(summary["signupsUnit"], serde_json::json!(["Count"]), "{summary}");
    // New, then evaluated: missing data counts as breaching, so it alarms.
    let alarm = &summary["alarm"];
    assert_eq!(
        (&alarm[0], &alarm[3]),
        (&serde_json::json!("signups-stalled"), &serde_json::json!("breaching"))
    );
    assert!(
        alarm[1] == "INSUFFICIENT_DATA" && alarm[2] == "Unchecked: Initial alarm creation"
            || alarm[1] == "ALARM",
        "{summary}"
    );
    let ids: BTreeSet<String> = summary["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    let healthy: BTreeSet<String> = summary["healthy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    assert_eq!(healthy, ids, "{summary}");
    let url = listener_url(&ep, summary["dnsName"].as_str().unwrap(), 80);
    eventually("both instances to answer through the ALB", Duration::from_secs(30), || {
        answering(&url, 8) == ids
    });
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}
