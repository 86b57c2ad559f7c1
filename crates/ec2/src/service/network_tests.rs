//! The network as EC2 checks it: the default VPC an account starts with, CIDR checks,
//! duplicate and missing rules, and deletions that wait for their dependents.

use std::sync::Arc;

use store::Store;

use super::*;

fn ec2(dir: &std::path::Path) -> Arc<Ec2> {
    let store = Arc::new(Store::in_memory().unwrap());
    let config = Ec2Config {
        exe: "/nonexistent/cumulo".into(),
        ..Ec2Config::standalone(Account::default(), dir.to_path_buf())
    };
    Ec2::new(store, Clock::real(), config).unwrap()
}

/// An outcome as one line: the value's summary, or EC2's code and message.
fn line<T>(r: Result<T, Ec2Error>, ok: impl Fn(T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => format!("{}: {e}", e.code()),
    }
}

fn tcp(port: i32, cidr: &str) -> Rule {
    Rule {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        cidr: Some(cidr.into()),
        ..Rule::default()
    }
}

#[test]
fn an_account_starts_with_a_default_vpc_and_a_subnet_per_zone() {
    let dir = tempfile::tempdir().unwrap();
    let ec2 = ec2(dir.path());
    let vpc = ec2.default_vpc().unwrap().unwrap();
    let mut lines = vec![format!("{} {} default={}", vpc.id, vpc.cidr, vpc.is_default)];
    let mut subnets = ec2.subnets().unwrap();
    subnets.sort_by(|a, b| a.zone.cmp(&b.zone));
    lines.extend(subnets.iter().map(|s| {
        format!(
            "{} {} {} defaultForAz={} public={}",
            s.id, s.zone, s.cidr, s.default_for_az, s.map_public_ip
        )
    }));
    let group = ec2.security_group(vpc.default_group.as_deref().unwrap()).unwrap().unwrap();
    lines.push(format!(
        "{} {} in={:?} out={:?}",
        group.id,
        group.name,
        group.ingress.len(),
        group.egress
    ));
    expect_test::expect![[r#"
        vpc-default0000000 172.31.0.0/16 default=true
        subnet-default00000000 us-east-1a 172.31.0.0/20 defaultForAz=true public=true
        subnet-default00000001 us-east-1b 172.31.16.0/20 defaultForAz=true public=true
        subnet-default00000002 us-east-1c 172.31.32.0/20 defaultForAz=true public=true
        sg-default00000000 default in=1 out=[Rule { protocol: "-1", from_port: None, to_port: None, cidr: Some("0.0.0.0/0"), source_group: None, description: None, owner: None }]"#]]
    .assert_eq(&lines.join("\n"));
    // A second start on the same store finds it, and makes nothing new.
    drop(ec2);
}

#[test]
fn vpcs_and_subnets_are_checked_as_ec2_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let ec2 = ec2(dir.path());
    let vpc = |cidr: &str| {
        line(ec2.create_vpc(CreateVpc { cidr: cidr.into(), ..CreateVpc::default() }), |v| {
            format!("created {}", v.cidr)
        })
    };
    let created = ec2.create_vpc(CreateVpc { cidr: "10.0.0.0/16".into(), ..Default::default() });
    let id = created.unwrap().id;
    let subnet = |cidr: &str, zone: Option<&str>| {
        line(
            ec2.create_subnet(CreateSubnet {
                vpc_id: id.clone(),
                cidr: cidr.into(),
                zone: zone.map(str::to_string),
                ..CreateSubnet::default()
            }),
            |s| format!("created {} in {}", s.cidr, s.zone),
        )
    };
    let lines = [
        vpc("10.1.0.0/16"),
        vpc("10.0.0.0/8"),
        vpc("banana"),
        subnet("10.0.1.0/24", Some("us-east-1b")),
        subnet("10.0.1.128/25", None),
        subnet("10.1.0.0/24", None),
        subnet("10.0.2.0/24", Some("us-east-1z")),
        line(
            ec2.create_subnet(CreateSubnet {
                vpc_id: "vpc-0000000000000dead".into(),
                cidr: "10.0.0.0/24".into(),
                ..Default::default()
            }),
            |_| "created".into(),
        ),
        line(ec2.delete_vpc(&id), |_| "deleted".into()),
    ];
    expect_test::expect![[r#"
        created 10.1.0.0/16
        InvalidVpc.Range: The CIDR '10.0.0.0/8' is invalid.
        InvalidParameterValue: Value (banana) for parameter cidrBlock is invalid. This is not a valid CIDR block.
        created 10.0.1.0/24 in us-east-1b
        InvalidSubnet.Conflict: The CIDR '10.0.1.128/25' conflicts with another subnet
        InvalidSubnet.Range: The CIDR '10.1.0.0/24' is invalid.
        InvalidParameterValue: Value (us-east-1z) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: us-east-1a, us-east-1b, us-east-1c.
        InvalidVpcID.NotFound: The vpc ID 'vpc-0000000000000dead' does not exist
        DependencyViolation: The vpc '{vpc}' has dependencies and cannot be deleted."#]]
    .assert_eq(&lines.join("\n").replace(&id, "{vpc}"));
    let subnet = ec2.subnets().unwrap().into_iter().find(|s| s.vpc_id == id).unwrap();
    ec2.delete_subnet(&subnet.id).unwrap();
    ec2.delete_vpc(&id).unwrap();
    assert!(ec2.vpc(&id).unwrap().is_none());
    assert!(
        ec2.security_groups().unwrap().iter().all(|g| g.vpc_id.as_deref() != Some(&id)),
        "a VPC's default group goes with it"
    );
}

#[test]
fn security_group_rules_are_granted_once_and_revoked_only_when_there() {
    let dir = tempfile::tempdir().unwrap();
    let ec2 = ec2(dir.path());
    let create = |name: &str| {
        ec2.create_security_group(CreateSecurityGroup {
            name: name.into(),
            description: "web".into(),
            ..Default::default()
        })
    };
    let web = create("web-server-sg").unwrap();
    let other = create("db-sg").unwrap();
    let id = web.id.clone();
    let lines = [
        line(create("web-server-sg"), |g| g.id),
        line(ec2.authorize(&id, false, vec![tcp(80, "0.0.0.0/0"), tcp(22, "0.0.0.0/0")]), |g| {
            format!("{} ingress rules", g.ingress.len())
        }),
        line(ec2.authorize(&id, false, vec![tcp(443, "0.0.0.0/0"), tcp(80, "0.0.0.0/0")]), |g| {
            format!("{} ingress rules", g.ingress.len())
        }),
        line(ec2.revoke(&id, false, &[tcp(8080, "0.0.0.0/0")]), |_| "revoked".into()),
        line(ec2.revoke(&id, false, &[tcp(22, "0.0.0.0/0")]), |g| {
            format!("{} ingress rules", g.ingress.len())
        }),
        line(
            ec2.authorize(
                &other.id,
                false,
                vec![Rule {
                    protocol: "tcp".into(),
                    from_port: Some(3306),
                    to_port: Some(3306),
                    source_group: Some(id.clone()),
                    ..Rule::default()
                }],
            ),
            |g| format!("{} ingress rules", g.ingress.len()),
        ),
        line(ec2.delete_security_group(&id), |_| "deleted".into()),
        line(ec2.delete_security_group("sg-default00000000"), |_| "deleted".into()),
        line(ec2.delete_security_group("sg-00000000000000bad"), |_| "deleted".into()),
    ];
    expect_test::expect![[r#"
        InvalidGroup.Duplicate: The security group 'web-server-sg' already exists for VPC 'vpc-default0000000'
        2 ingress rules
        InvalidPermission.Duplicate: the specified rule "peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW" already exists
        InvalidPermission.NotFound: The specified rule does not exist in this security group.
        1 ingress rules
        1 ingress rules
        DependencyViolation: resource {web} has a dependent object
        CannotDelete: the specified group: "sg-default00000000" name: "default" cannot be deleted by a user
        InvalidGroup.NotFound: The security group 'sg-00000000000000bad' does not exist"#]]
    .assert_eq(&lines.join("\n").replace(&id, "{web}"));
}

#[tokio::test]
async fn launches_name_subnets_and_groups_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let ec2 = ec2(dir.path());
    let launch = |props: serde_json::Value| {
        let ec2 = ec2.clone();
        async move {
            let request = LaunchRequest {
                spec: LaunchSpec::Properties(props),
                subnet_id: None,
                zone: None,
                ports: Vec::new(),
                tags: Default::default(),
                override_key: None,
                group: None,
            };
            line(ec2.launch(request).await, |i| i.id)
        }
    };
    let lines = [
        launch(serde_json::json!({"ImageId": "ami-12345678", "SubnetId": "subnet-0000000000000dead"})).await,
        launch(serde_json::json!({"ImageId": "ami-12345678", "SecurityGroupIds": ["sg-0000000000000dead"]})).await,
        launch(serde_json::json!({"ImageId": "ami-12345678", "AvailabilityZone": "us-east-1q"})).await,
    ];
    expect_test::expect![[r#"
        InvalidSubnetID.NotFound: The subnet ID 'subnet-0000000000000dead' does not exist
        InvalidGroup.NotFound: The security group 'sg-0000000000000dead' does not exist
        InvalidParameterValue: Invalid availability zone: [us-east-1q]"#]]
    .assert_eq(&lines.join("\n"));
    assert!(ec2.instances().unwrap().is_empty(), "a refused launch leaves no instance");
}

#[test]
fn tags_go_on_every_resource_named_or_on_none() {
    let dir = tempfile::tempdir().unwrap();
    let ec2 = ec2(dir.path());
    let tags: IndexMap<String, String> =
        [("Name".to_string(), "edx-build-aws-vpc".to_string())].into();
    let e = ec2
        .create_tags(&["vpc-default0000000".into(), "subnet-0000000000000dead".into()], &tags)
        .unwrap_err();
    assert_eq!(e.to_string(), "The subnet ID 'subnet-0000000000000dead' does not exist");
    assert!(ec2.tags_of("vpc-default0000000").unwrap().unwrap().is_empty());
    ec2.create_tags(&["vpc-default0000000".into()], &tags).unwrap();
    assert_eq!(ec2.tags_of("vpc-default0000000").unwrap().unwrap(), tags);
    ec2.delete_tags(&["vpc-default0000000".into()], &[("Name".into(), Some("other".into()))])
        .unwrap();
    assert_eq!(ec2.tags_of("vpc-default0000000").unwrap().unwrap().len(), 1, "value must match");
    ec2.delete_tags(&["vpc-default0000000".into()], &[("Name".into(), None)]).unwrap();
    assert!(ec2.tags_of("vpc-default0000000").unwrap().unwrap().is_empty());
}

#[test]
fn a_vpc_reaches_out_through_gateways_and_route_tables_as_ec2_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let ec2 = ec2(dir.path());
    let vpc =
        ec2.create_vpc(CreateVpc { cidr: "10.0.0.0/16".into(), ..Default::default() }).unwrap();
    let public = ec2
        .create_subnet(CreateSubnet {
            vpc_id: vpc.id.clone(),
            cidr: "10.0.1.0/24".into(),
            ..Default::default()
        })
        .unwrap();
    let main: Vec<_> =
        ec2.route_tables().unwrap().into_iter().filter(|t| t.vpc_id == vpc.id).collect();
    assert_eq!(
        (main.len(), main[0].main, main[0].routes.len()),
        (1, true, 1),
        "a main table with its local route"
    );
    let igw = ec2.create_internet_gateway(IndexMap::new()).unwrap();
    let table = ec2.create_route_table(&vpc.id, IndexMap::new()).unwrap();
    let eip = ec2.allocate_address(IndexMap::new()).unwrap();
    let lines = [
        line(ec2.attach_internet_gateway(&igw.id, &vpc.id), |_| "attached".into()),
        line(ec2.attach_internet_gateway(&igw.id, &vpc.id), |_| "attached".into()),
        line(ec2.create_route(&table.id, "0.0.0.0/0", &igw.id), |_| "route".into()),
        line(ec2.create_route(&table.id, "0.0.0.0/0", &igw.id), |_| "route".into()),
        line(ec2.create_route(&table.id, "10.9.0.0/16", "nat-0000000000000dead"), |_| {
            "route".into()
        }),
        line(ec2.associate_route_table(&table.id, &public.id), |_| "associated".into()),
        line(ec2.associate_route_table(&table.id, &public.id), |_| "associated".into()),
        line(
            ec2.create_nat_gateway(&public.id, Some(&eip.allocation_id), false, IndexMap::new()),
            |n| format!("nat {} at {}", n.state, n.private_ip),
        ),
        line(ec2.release_address(&eip.allocation_id), |_| "released".into()),
        line(ec2.delete_internet_gateway(&igw.id), |_| "deleted".into()),
        line(ec2.delete_route_table(&table.id), |_| "deleted".into()),
        line(ec2.delete_vpc(&vpc.id), |_| "deleted".into()),
    ];
    expect_test::expect![[r#"
        attached
        Resource.AlreadyAssociated: resource {igw} is already attached to network {vpc}
        route
        RouteAlreadyExists: The route identified by 0.0.0.0/0 already exists.
        InvalidNatGatewayID.NotFound: The natGateway ID 'nat-0000000000000dead' does not exist
        associated
        Resource.AlreadyAssociated: the specified association for route table {rtb} conflicts with an existing association
        nat available at 10.0.1.4
        InvalidIPAddress.InUse: Address {ip} is in use.
        DependencyViolation: The internetGateway '{igw}' has dependencies and cannot be deleted.
        DependencyViolation: The routeTable '{rtb}' has dependencies and cannot be deleted.
        DependencyViolation: The vpc '{vpc}' has dependencies and cannot be deleted."#]]
    .assert_eq(
        &lines
            .join("\n")
            .replace(&igw.id, "{igw}")
            .replace(&vpc.id, "{vpc}")
            .replace(&table.id, "{rtb}")
            .replace(&eip.public_ip, "{ip}"),
    );
}
