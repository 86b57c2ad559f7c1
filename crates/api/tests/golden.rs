//! Wire-format goldens: every CloudFormation action's XML response (and error responses), as
//! the aws CLI and SDKs parse them. Ids, timestamps and request ids are normalized.
//! `UPDATE_EXPECT=1 cargo test -p api --test golden` rewrites the files after a deliberate
//! change; otherwise a difference fails.

use std::path::PathBuf;
use std::sync::Arc;

use api::cloudformation::handle;
use api::query::QueryInput;
use cfn_stacks::{Engine, EngineConfig, Providers};
use clock::Clock;
use store::Store;

const TEMPLATE: &str = r#"
Description: A topic and a queue
Parameters:
  Name: {Type: String, Default: alerts, Description: The topic name}
  Secret: {Type: String, NoEcho: true, Default: hunter2}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties: {TopicName: !Ref Name}
    Metadata: {Owner: ops}
  Queue:
    Type: AWS::SQS::Queue
Outputs:
  TopicArn:
    Description: The topic
    Value: !Ref Topic
    Export: {Name: !Sub "${AWS::StackName}-topic"}
"#;

fn normalize(xml: &str) -> String {
    let rules = [
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{uuid}"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "{time}"),
        (r"(queue|Queue)-[A-Z0-9]{13}", "$1-{random}"),
        // ELB's ARN ids and DNS name digits.
        (r"/[0-9a-f]{16}\b", "/{id}"),
        (r"-\d{10}\.us-east-1\.elb", "-{digits}.us-east-1.elb"),
        (r"<NextMarker>[^<]+</NextMarker>", "<NextMarker>{marker}</NextMarker>"),
        // EC2's ids, public addresses and key material.
        (
            r"\b(vpc-cidr-assoc|vpc|subnet|sgr|sg|igw|rtbassoc|rtb|nat|eipalloc|eipassoc|lt|key|ami|i|r)-[0-9a-f]{17}\b",
            "$1-{id}",
        ),
        (r"198\.51\.100\.\d+", "{public-ip}"),
        (r"<keyMaterial>[^<]+</keyMaterial>", "<keyMaterial>{private key}</keyMaterial>"),
        (
            r"<keyFingerprint>[^<]+</keyFingerprint>",
            "<keyFingerprint>{fingerprint}</keyFingerprint>",
        ),
        (r"<publicKey>[^<]+</publicKey>", "<publicKey>{public key}</publicKey>"),
        (r"<nextToken>[^<]+</nextToken>", "<nextToken>{token}</nextToken>"),
    ];
    let mut out = xml.to_string();
    for (pattern, replacement) in rules {
        out = fancy_regex::Regex::new(pattern).unwrap().replace_all(&out, replacement).into_owned();
    }
    pretty(&out)
}

/// Indents XML two spaces per level, one element per line.
fn pretty(xml: &str) -> String {
    let mut reader = quick_xml::Reader::from_str(xml);
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
    engine: Arc<Engine>,
    mismatches: Vec<String>,
}

impl Golden {
    fn call(&mut self, file: &str, pairs: &[(&str, &str)]) -> String {
        let q = QueryInput::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let action = q.get("Action").unwrap().to_string();
        let body = match handle(&self.engine, &action, &q, "11111111-2222-4333-8444-555555555555") {
            Ok(body) => body,
            Err(e) => e.to_xml(api::cloudformation::XMLNS, "11111111-2222-4333-8444-555555555555"),
        };
        self.check(file, &body);
        body
    }

    /// Compares a response with `tests/golden/{file}.xml` (normalized).
    fn check(&mut self, file: &str, body: &str) {
        let actual = normalize(body);
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{file}.xml"));
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&path, &actual).unwrap();
            } else {
                self.mismatches.push(format!(
                    "{file}.xml differs:\n--- expected\n{expected}--- actual\n{actual}"
                ));
            }
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cloudformation_responses() {
    let clock = Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let engine = Engine::new(
        Arc::new(Store::in_memory().unwrap()),
        clock,
        EngineConfig::default(),
        Providers::default(),
        Arc::new(std::collections::BTreeMap::new()),
    );
    let mut g = Golden { engine: engine.clone(), mismatches: Vec::new() };
    g.call("ValidateTemplate", &[("Action", "ValidateTemplate"), ("TemplateBody", TEMPLATE)]);
    g.call("GetTemplateSummary", &[("Action", "GetTemplateSummary"), ("TemplateBody", TEMPLATE)]);
    g.call(
        "CreateStack",
        &[
            ("Action", "CreateStack"),
            ("StackName", "demo"),
            ("TemplateBody", TEMPLATE),
            ("Parameters.member.1.ParameterKey", "Name"),
            ("Parameters.member.1.ParameterValue", "alerts"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "web"),
        ],
    );
    let stack = engine.wait_terminal(&engine.find_stack("demo").unwrap().stack_id).await.unwrap();
    assert_eq!(stack.status, "CREATE_COMPLETE");
    g.call("DescribeStacks", &[("Action", "DescribeStacks"), ("StackName", "demo")]);
    g.call("DescribeStackEvents", &[("Action", "DescribeStackEvents"), ("StackName", "demo")]);
    g.call(
        "DescribeStackResources",
        &[
            ("Action", "DescribeStackResources"),
            ("StackName", "demo"),
            ("LogicalResourceId", "Topic"),
        ],
    );
    g.call(
        "DescribeStackResource",
        &[
            ("Action", "DescribeStackResource"),
            ("StackName", "demo"),
            ("LogicalResourceId", "Topic"),
        ],
    );
    g.call("ListStackResources", &[("Action", "ListStackResources"), ("StackName", "demo")]);
    g.call("ListExports", &[("Action", "ListExports")]);
    g.call("GetTemplate", &[("Action", "GetTemplate"), ("StackName", "demo")]);
    g.call(
        "CreateChangeSet",
        &[
            ("Action", "CreateChangeSet"),
            ("StackName", "demo"),
            ("ChangeSetName", "rename"),
            ("UsePreviousTemplate", "true"),
            ("Parameters.member.1.ParameterKey", "Name"),
            ("Parameters.member.1.ParameterValue", "pager"),
        ],
    );
    g.call(
        "DescribeChangeSet",
        &[("Action", "DescribeChangeSet"), ("StackName", "demo"), ("ChangeSetName", "rename")],
    );
    g.call("ListChangeSets", &[("Action", "ListChangeSets"), ("StackName", "demo")]);
    g.call(
        "ExecuteChangeSet",
        &[("Action", "ExecuteChangeSet"), ("StackName", "demo"), ("ChangeSetName", "rename")],
    );
    let stack = engine.wait_terminal(&stack.stack_id).await.unwrap();
    assert_eq!(stack.status, "UPDATE_COMPLETE");
    g.call(
        "ListStacks",
        &[("Action", "ListStacks"), ("StackStatusFilter.member.1", "UPDATE_COMPLETE")],
    );
    g.call("DeleteStack", &[("Action", "DeleteStack"), ("StackName", "demo")]);
    engine.wait_terminal(&stack.stack_id).await.unwrap();
    // Errors.
    g.call("Error-StackDoesNotExist", &[("Action", "DescribeStacks"), ("StackName", "demo")]);
    g.call("Error-MissingParameter", &[("Action", "CreateStack"), ("StackName", "x")]);
    g.call(
        "Error-BadTemplate",
        &[
            ("Action", "ValidateTemplate"),
            ("TemplateBody", "Resources:\n  A:\n    Type: AWS::SNS::Topik\n"),
        ],
    );
    g.call("Error-InvalidAction", &[("Action", "MakeCoffee")]);
    assert!(g.mismatches.is_empty(), "{}\n(UPDATE_EXPECT=1 to accept)", g.mismatches.join("\n"));
}

/// An ELB on an in-memory store with three subnets (zones a, b, c) whose health checks are
/// never made (targets stay initial).
fn elb_region() -> (Arc<elb::Elb>, Arc<Engine>, tempfile::TempDir) {
    let clock = Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let store = Arc::new(Store::in_memory().unwrap());
    for (id, zone, cidr) in [
        ("subnet-0golden00000000a", "us-east-1a", "10.0.0.0/24"),
        ("subnet-0golden00000000b", "us-east-1b", "10.0.1.0/24"),
        ("subnet-0golden00000000c", "us-east-1c", "10.0.2.0/24"),
    ] {
        let subnet = ec2::network::SubnetRecord {
            id: id.into(),
            vpc_id: "vpc-0golden000000000".into(),
            cidr: cidr.into(),
            zone: zone.into(),
            map_public_ip: false,
            default_for_az: false,
            tags: Default::default(),
            used: Vec::new(),
        };
        // The namespace EC2 keeps subnets in (what a template's AWS::EC2::Subnet writes).
        store.put("ec2/subnet", id, &subnet).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let account = aws_ids::Account::default();
    let ec2 = ec2::Ec2::new(
        store.clone(),
        clock.clone(),
        ec2::Ec2Config::standalone(account.clone(), dir.path().to_path_buf()),
    )
    .unwrap();
    let ca = Arc::new(elb::Ca::load_or_create(None).unwrap());
    let never: elb::Prober = Arc::new(|_, _, _| Box::pin(std::future::pending()));
    let elb = elb::Elb::with_prober(store.clone(), clock.clone(), ec2, account, ca, never);
    let engine = Engine::new(
        store,
        clock,
        EngineConfig::default(),
        Providers::default(),
        Arc::new(std::collections::BTreeMap::new()),
    );
    (elb, engine, dir)
}

const RID: &str = "11111111-2222-4333-8444-555555555555";

async fn elbv2(g: &mut Golden, elb: &elb::Elb, file: &str, pairs: &[(&str, &str)]) -> String {
    let q = QueryInput::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let action = q.get("Action").unwrap().to_string();
    let body = match api::elbv2::handle(elb, &action, &q, RID).await {
        Ok(body) => body,
        Err(e) => e.to_xml(api::elbv2::XMLNS, RID),
    };
    g.check(&format!("elbv2/{file}"), &body);
    body
}

async fn classic(g: &mut Golden, elb: &elb::Elb, file: &str, pairs: &[(&str, &str)]) -> String {
    let q = QueryInput::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let action = q.get("Action").unwrap().to_string();
    let body = match api::elb_classic::handle(elb, &action, &q, RID).await {
        Ok(body) => body,
        Err(e) => e.to_xml(api::elb_classic::XMLNS, RID),
    };
    g.check(&format!("elb/{file}"), &body);
    body
}

/// The first `<tag>` text of a response.
fn first(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap_or(0);
    let end = xml[start..].find('<').map_or(start, |i| start + i);
    xml[start..end].to_string()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn elbv2_responses() {
    let (elb, engine, _dir) = elb_region();
    let mut g = Golden { engine, mismatches: Vec::new() };
    let tg = |name: &'static str| {
        vec![
            ("Action", "CreateTargetGroup"),
            ("Name", name),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", "vpc-0golden000000000"),
            ("TargetType", "ip"),
            ("HealthCheckPath", "/health"),
            ("Matcher.HttpCode", "200-299"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "web"),
        ]
    };
    let body = elbv2(&mut g, &elb, "CreateTargetGroup", &tg("web")).await;
    let web = first(&body, "TargetGroupArn");
    elbv2(&mut g, &elb, "Error-DuplicateTargetGroupName", &tg("web")).await;
    let body = elbv2(
        &mut g,
        &elb,
        "CreateTargetGroup-Defaults",
        &[("Action", "CreateTargetGroup"), ("Name", "api"), ("Protocol", "HTTP"), ("Port", "8080")],
    )
    .await;
    let api_tg = first(&body, "TargetGroupArn");
    elbv2(
        &mut g,
        &elb,
        "Error-HealthCheckRange",
        &[("Action", "CreateTargetGroup"), ("Name", "bad"), ("HealthCheckIntervalSeconds", "1")],
    )
    .await;
    let lb_pairs = |name: &'static str| {
        vec![
            ("Action", "CreateLoadBalancer"),
            ("Name", name),
            ("Subnets.member.1", "subnet-0golden00000000a"),
            ("Subnets.member.2", "subnet-0golden00000000b"),
        ]
    };
    let body = elbv2(&mut g, &elb, "CreateLoadBalancer", &lb_pairs("web")).await;
    let lb = first(&body, "LoadBalancerArn");
    elbv2(&mut g, &elb, "Error-DuplicateLoadBalancerName", &lb_pairs("web")).await;
    elbv2(
        &mut g,
        &elb,
        "Error-SubnetNotFound",
        &[("Action", "CreateLoadBalancer"), ("Name", "x"), ("Subnets.member.1", "subnet-nope")],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "Error-OneZone",
        &[
            ("Action", "CreateLoadBalancer"),
            ("Name", "x"),
            ("SubnetMappings.member.1.SubnetId", "subnet-0golden00000000a"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "Error-InvalidSecurityGroup",
        &[
            ("Action", "SetSecurityGroups"),
            ("LoadBalancerArn", &lb),
            ("SecurityGroups.member.1", "sg-nope"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "SetSubnets",
        &[
            ("Action", "SetSubnets"),
            ("LoadBalancerArn", &lb),
            ("Subnets.member.1", "subnet-0golden00000000a"),
            ("Subnets.member.2", "subnet-0golden00000000c"),
        ],
    )
    .await;
    let listener = [
        ("Action", "CreateListener"),
        ("LoadBalancerArn", lb.as_str()),
        ("Protocol", "HTTP"),
        ("Port", "80"),
        ("DefaultActions.member.1.Type", "forward"),
        ("DefaultActions.member.1.TargetGroupArn", web.as_str()),
    ];
    let body = elbv2(&mut g, &elb, "CreateListener", &listener).await;
    let http = first(&body, "ListenerArn");
    elbv2(&mut g, &elb, "Error-DuplicateListener", &listener).await;
    let body = elbv2(
        &mut g,
        &elb,
        "CreateRule",
        &[
            ("Action", "CreateRule"),
            ("ListenerArn", &http),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/api/*"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", &api_tg),
            ("Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "3"),
            ("Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn", &web),
            ("Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight", "1"),
            ("Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled", "true"),
            ("Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds", "60"),
        ],
    )
    .await;
    let api_rule = first(&body, "RuleArn");
    let fixed = [
        ("Action", "CreateRule"),
        ("ListenerArn", http.as_str()),
        ("Priority", "20"),
        ("Conditions.member.1.Field", "host-header"),
        ("Conditions.member.1.HostHeaderConfig.Values.member.1", "*.example.com"),
        ("Actions.member.1.Type", "fixed-response"),
        ("Actions.member.1.FixedResponseConfig.StatusCode", "404"),
        ("Actions.member.1.FixedResponseConfig.ContentType", "text/plain"),
        ("Actions.member.1.FixedResponseConfig.MessageBody", "nothing here"),
    ];
    let body = elbv2(&mut g, &elb, "CreateRule-FixedResponse", &fixed).await;
    let fixed_rule = first(&body, "RuleArn");
    elbv2(&mut g, &elb, "Error-PriorityInUse", &fixed).await;
    elbv2(
        &mut g,
        &elb,
        "SetRulePriorities",
        &[
            ("Action", "SetRulePriorities"),
            ("RulePriorities.member.1.RuleArn", &api_rule),
            ("RulePriorities.member.1.Priority", "5"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "ModifyRule",
        &[
            ("Action", "ModifyRule"),
            ("RuleArn", &fixed_rule),
            ("Actions.member.1.Type", "redirect"),
            ("Actions.member.1.RedirectConfig.Protocol", "HTTPS"),
            ("Actions.member.1.RedirectConfig.Port", "443"),
            ("Actions.member.1.RedirectConfig.StatusCode", "HTTP_301"),
        ],
    )
    .await;
    elbv2(&mut g, &elb, "DescribeRules", &[("Action", "DescribeRules"), ("ListenerArn", &http)])
        .await;
    elbv2(
        &mut g,
        &elb,
        "RegisterTargets",
        &[
            ("Action", "RegisterTargets"),
            ("TargetGroupArn", &web),
            ("Targets.member.1.Id", "10.0.0.5"),
            ("Targets.member.1.Port", "8080"),
            ("Targets.member.2.Id", "10.0.1.5"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "DescribeTargetHealth",
        &[
            ("Action", "DescribeTargetHealth"),
            ("TargetGroupArn", &web),
            ("Targets.member.1.Id", "10.0.0.5"),
            ("Targets.member.1.Port", "8080"),
            ("Targets.member.2.Id", "10.0.9.9"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "Error-ResourceInUse",
        &[("Action", "DeleteTargetGroup"), ("TargetGroupArn", &web)],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "ModifyTargetGroup",
        &[
            ("Action", "ModifyTargetGroup"),
            ("TargetGroupArn", &web),
            ("HealthCheckIntervalSeconds", "10"),
            ("HealthyThresholdCount", "3"),
            ("HealthCheckPort", "8081"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "ModifyListener",
        &[
            ("Action", "ModifyListener"),
            ("ListenerArn", &http),
            ("DefaultActions.member.1.Type", "fixed-response"),
            ("DefaultActions.member.1.FixedResponseConfig.StatusCode", "503"),
        ],
    )
    .await;
    let body = elbv2(
        &mut g,
        &elb,
        "CreateListener-HTTPS",
        &[
            ("Action", "CreateListener"),
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTPS"),
            ("Port", "443"),
            (
                "Certificates.member.1.CertificateArn",
                "arn:aws:acm:us-east-1:000000000000:certificate/one",
            ),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &web),
        ],
    )
    .await;
    let https = first(&body, "ListenerArn");
    let two = "arn:aws:acm:us-east-1:000000000000:certificate/two";
    elbv2(
        &mut g,
        &elb,
        "AddListenerCertificates",
        &[
            ("Action", "AddListenerCertificates"),
            ("ListenerArn", &https),
            ("Certificates.member.1.CertificateArn", two),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "DescribeListenerCertificates",
        &[("Action", "DescribeListenerCertificates"), ("ListenerArn", &https)],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "RemoveListenerCertificates",
        &[
            ("Action", "RemoveListenerCertificates"),
            ("ListenerArn", &https),
            ("Certificates.member.1.CertificateArn", two),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "DescribeListeners",
        &[("Action", "DescribeListeners"), ("LoadBalancerArn", &lb)],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "AddTags",
        &[
            ("Action", "AddTags"),
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &web),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "test"),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "RemoveTags",
        &[("Action", "RemoveTags"), ("ResourceArns.member.1", &web), ("TagKeys.member.1", "team")],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "DescribeTags",
        &[
            ("Action", "DescribeTags"),
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &web),
        ],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "CreateLoadBalancer-Internal",
        &[
            ("Action", "CreateLoadBalancer"),
            ("Name", "web2"),
            ("Scheme", "internal"),
            ("Subnets.member.1", "subnet-0golden00000000b"),
            ("Subnets.member.2", "subnet-0golden00000000c"),
        ],
    )
    .await;
    let body = elbv2(
        &mut g,
        &elb,
        "DescribeLoadBalancers-Page1",
        &[("Action", "DescribeLoadBalancers"), ("PageSize", "1")],
    )
    .await;
    let marker = first(&body, "NextMarker");
    elbv2(
        &mut g,
        &elb,
        "DescribeLoadBalancers-Page2",
        &[("Action", "DescribeLoadBalancers"), ("PageSize", "1"), ("Marker", &marker)],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "DescribeTargetGroups",
        &[("Action", "DescribeTargetGroups"), ("Names.member.1", "web")],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "Error-LoadBalancerNotFound",
        &[("Action", "DescribeLoadBalancers"), ("Names.member.1", "nope")],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "Error-TargetGroupNotFound",
        &[("Action", "DescribeTargetGroups"), ("Names.member.1", "nope")],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "Error-ListenerNotFound",
        &[
            ("Action", "DeleteListener"),
            (
                "ListenerArn",
                "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/web/0/0",
            ),
        ],
    )
    .await;
    elbv2(&mut g, &elb, "DeleteRule", &[("Action", "DeleteRule"), ("RuleArn", &fixed_rule)]).await;
    elbv2(&mut g, &elb, "DeleteListener", &[("Action", "DeleteListener"), ("ListenerArn", &http)])
        .await;
    elbv2(
        &mut g,
        &elb,
        "DeleteLoadBalancer",
        &[("Action", "DeleteLoadBalancer"), ("LoadBalancerArn", &lb)],
    )
    .await;
    elbv2(
        &mut g,
        &elb,
        "DeleteTargetGroup",
        &[("Action", "DeleteTargetGroup"), ("TargetGroupArn", &web)],
    )
    .await;
    assert!(elb.target_group(&web).unwrap().is_none());
    assert!(g.mismatches.is_empty(), "{}\n(UPDATE_EXPECT=1 to accept)", g.mismatches.join("\n"));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn classic_elb_responses() {
    let (elb, engine, _dir) = elb_region();
    let mut g = Golden { engine, mismatches: Vec::new() };
    let create = [
        ("Action", "CreateLoadBalancer"),
        ("LoadBalancerName", "classic"),
        ("Listeners.member.1.Protocol", "HTTP"),
        ("Listeners.member.1.LoadBalancerPort", "80"),
        ("Listeners.member.1.InstancePort", "8080"),
        ("AvailabilityZones.member.1", "us-east-1a"),
        ("AvailabilityZones.member.2", "us-east-1b"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "web"),
    ];
    classic(&mut g, &elb, "CreateLoadBalancer", &create).await;
    classic(&mut g, &elb, "Error-DuplicateLoadBalancerName", &create).await;
    classic(
        &mut g,
        &elb,
        "ConfigureHealthCheck",
        &[
            ("Action", "ConfigureHealthCheck"),
            ("LoadBalancerName", "classic"),
            ("HealthCheck.Target", "HTTP:8080/health"),
            ("HealthCheck.Interval", "10"),
            ("HealthCheck.Timeout", "5"),
            ("HealthCheck.HealthyThreshold", "3"),
            ("HealthCheck.UnhealthyThreshold", "2"),
        ],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "CreateLoadBalancerListeners",
        &[
            ("Action", "CreateLoadBalancerListeners"),
            ("LoadBalancerName", "classic"),
            ("Listeners.member.1.Protocol", "TCP"),
            ("Listeners.member.1.LoadBalancerPort", "9000"),
            ("Listeners.member.1.InstancePort", "9000"),
        ],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "Error-DuplicateListener",
        &[
            ("Action", "CreateLoadBalancerListeners"),
            ("LoadBalancerName", "classic"),
            ("Listeners.member.1.Protocol", "HTTP"),
            ("Listeners.member.1.LoadBalancerPort", "80"),
            ("Listeners.member.1.InstancePort", "8081"),
        ],
    )
    .await;
    classic(&mut g, &elb, "DescribeLoadBalancers", &[("Action", "DescribeLoadBalancers")]).await;
    classic(
        &mut g,
        &elb,
        "DescribeInstanceHealth",
        &[("Action", "DescribeInstanceHealth"), ("LoadBalancerName", "classic")],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "Error-InvalidInstance",
        &[
            ("Action", "RegisterInstancesWithLoadBalancer"),
            ("LoadBalancerName", "classic"),
            ("Instances.member.1.InstanceId", "i-0123456789abcdef0"),
        ],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "ModifyLoadBalancerAttributes",
        &[
            ("Action", "ModifyLoadBalancerAttributes"),
            ("LoadBalancerName", "classic"),
            ("LoadBalancerAttributes.CrossZoneLoadBalancing.Enabled", "true"),
            ("LoadBalancerAttributes.ConnectionDraining.Enabled", "true"),
            ("LoadBalancerAttributes.ConnectionDraining.Timeout", "60"),
            ("LoadBalancerAttributes.ConnectionSettings.IdleTimeout", "120"),
        ],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "DescribeLoadBalancerAttributes",
        &[("Action", "DescribeLoadBalancerAttributes"), ("LoadBalancerName", "classic")],
    )
    .await;
    let group = elb.target_group(&elb::classic_group("classic", 8080)).unwrap().unwrap();
    assert_eq!(
        (
            group.health_check.path.as_str(),
            group.health_check.interval,
            group.attribute("deregistration_delay.timeout_seconds")
        ),
        ("/health", 10, Some("60")),
        "the health check and draining reach the instance port's group"
    );
    classic(
        &mut g,
        &elb,
        "AddTags",
        &[
            ("Action", "AddTags"),
            ("LoadBalancerNames.member.1", "classic"),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "test"),
        ],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "RemoveTags",
        &[
            ("Action", "RemoveTags"),
            ("LoadBalancerNames.member.1", "classic"),
            ("Tags.member.1.Key", "team"),
        ],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "DescribeTags",
        &[("Action", "DescribeTags"), ("LoadBalancerNames.member.1", "classic")],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "DeleteLoadBalancerListeners",
        &[
            ("Action", "DeleteLoadBalancerListeners"),
            ("LoadBalancerName", "classic"),
            ("LoadBalancerPorts.member.1", "9000"),
        ],
    )
    .await;
    assert!(elb.target_group(&elb::classic_group("classic", 9000)).unwrap().is_none());
    classic(
        &mut g,
        &elb,
        "Error-LoadBalancerNotFound",
        &[("Action", "DescribeLoadBalancers"), ("LoadBalancerNames.member.1", "nope")],
    )
    .await;
    classic(
        &mut g,
        &elb,
        "DeleteLoadBalancer",
        &[("Action", "DeleteLoadBalancer"), ("LoadBalancerName", "classic")],
    )
    .await;
    assert!(elb.classic_load_balancers().unwrap().is_empty());
    assert!(g.mismatches.is_empty(), "{}\n(UPDATE_EXPECT=1 to accept)", g.mismatches.join("\n"));
}

/// CloudFormation's provider and the API build the same typed requests and call the same
/// `Elb` methods: a target group, load balancer, listener and rule made from a template's
/// properties are the records the aws CLI's parameters make (ids and times aside).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn template_and_api_make_the_same_records() {
    use cfn_stacks::ResourceProvider;
    use serde_json::json;

    let (by_template, _e1, _d1) = elb_region();
    let (by_api, _e2, _d2) = elb_region();
    let account = aws_ids::Account::default();
    let signals = Arc::new(cfn_stacks::signals::Signals::default());
    let provider = elb::ElbProvider { elb: by_template.clone() };
    let create = |type_name: &'static str, props: serde_json::Value| {
        let provider = &provider;
        let account = &account;
        let signals = &signals;
        async move {
            let req = cfn_stacks::ResourceRequest {
                stack_id: "stack",
                stack_name: "demo",
                logical_id: "Res",
                type_name,
                properties: &props,
                metadata: None,
                account,
                update_policy: None,
                creation_policy: None,
                signals,
            };
            provider.create(&req).await.unwrap().physical_id
        }
    };
    let tg = create(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        json!({"Name": "web", "Protocol": "HTTP", "Port": 80, "VpcId": "vpc-0golden000000000",
               "HealthCheckPath": "/health", "HealthCheckIntervalSeconds": 10,
               "Matcher": {"HttpCode": "200-299"}, "Tags": [{"Key": "team", "Value": "web"}]}),
    )
    .await;
    let lb = create(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        json!({"Name": "web", "Subnets": ["subnet-0golden00000000a", "subnet-0golden00000000b"]}),
    )
    .await;
    let listener = create(
        "AWS::ElasticLoadBalancingV2::Listener",
        json!({"LoadBalancerArn": lb, "Port": 80, "Protocol": "HTTP",
               "DefaultActions": [{"Type": "forward", "ForwardConfig": {
                   "TargetGroups": [{"TargetGroupArn": tg, "Weight": 2}],
                   "TargetGroupStickinessConfig": {"Enabled": true, "DurationSeconds": 60}}}]}),
    )
    .await;
    let rule = create(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        json!({"ListenerArn": listener, "Priority": 10,
               "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a/*"]}}],
               "Actions": [{"Type": "forward", "TargetGroupArn": tg, "Order": 1}]}),
    )
    .await;

    let call = |pairs: Vec<(&str, String)>| {
        let elb = by_api.clone();
        let q = QueryInput::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)));
        async move {
            let action = q.get("Action").unwrap().to_string();
            api::elbv2::handle(&elb, &action, &q, RID).await.unwrap()
        }
    };
    let s = |v: &str| v.to_string();
    let api_tg = first(
        &call(vec![
            ("Action", s("CreateTargetGroup")),
            ("Name", s("web")),
            ("Protocol", s("HTTP")),
            ("Port", s("80")),
            ("VpcId", s("vpc-0golden000000000")),
            ("HealthCheckPath", s("/health")),
            ("HealthCheckIntervalSeconds", s("10")),
            ("Matcher.HttpCode", s("200-299")),
            ("Tags.member.1.Key", s("team")),
            ("Tags.member.1.Value", s("web")),
        ])
        .await,
        "TargetGroupArn",
    );
    let api_lb = first(
        &call(vec![
            ("Action", s("CreateLoadBalancer")),
            ("Name", s("web")),
            ("Subnets.member.1", s("subnet-0golden00000000a")),
            ("Subnets.member.2", s("subnet-0golden00000000b")),
        ])
        .await,
        "LoadBalancerArn",
    );
    let fc = "DefaultActions.member.1.ForwardConfig";
    let api_listener = first(
        &call(vec![
            ("Action", s("CreateListener")),
            ("LoadBalancerArn", api_lb.clone()),
            ("Port", s("80")),
            ("Protocol", s("HTTP")),
            ("DefaultActions.member.1.Type", s("forward")),
            (&format!("{fc}.TargetGroups.member.1.TargetGroupArn"), api_tg.clone()),
            (&format!("{fc}.TargetGroups.member.1.Weight"), s("2")),
            (&format!("{fc}.TargetGroupStickinessConfig.Enabled"), s("true")),
            (&format!("{fc}.TargetGroupStickinessConfig.DurationSeconds"), s("60")),
        ])
        .await,
        "ListenerArn",
    );
    let api_rule = first(
        &call(vec![
            ("Action", s("CreateRule")),
            ("ListenerArn", api_listener.clone()),
            ("Priority", s("10")),
            ("Conditions.member.1.Field", s("path-pattern")),
            ("Conditions.member.1.PathPatternConfig.Values.member.1", s("/a/*")),
            ("Actions.member.1.Type", s("forward")),
            ("Actions.member.1.TargetGroupArn", api_tg.clone()),
            ("Actions.member.1.Order", s("1")),
        ])
        .await,
        "RuleArn",
    );

    // The ids differ (each side made its own); everything else is the same.
    let id = |arn: &str| arn.rsplit('/').next().unwrap_or_default().to_string();
    let same_ids = |json: String| {
        json.replace(&api_tg, &tg)
            .replace(&api_lb, &lb)
            .replace(&api_listener, &listener)
            .replace(&api_rule, &rule)
            .replace(&id(&api_tg), &id(&tg))
            .replace(&id(&api_lb), &id(&lb))
    };
    let tg_of =
        |e: &elb::Elb, arn: &str| serde_json::to_string(&e.target_group(arn).unwrap()).unwrap();
    assert_eq!(same_ids(tg_of(&by_api, &api_tg)), tg_of(&by_template, &tg));
    let lb_of = |e: &elb::Elb, arn: &str| {
        let mut r = e.load_balancer(arn).unwrap().unwrap();
        r.dns_name = r.dns_name.split_once('-').map_or(r.dns_name.clone(), |(n, _)| n.to_string());
        r.created = String::new();
        serde_json::to_string(&r).unwrap()
    };
    assert_eq!(same_ids(lb_of(&by_api, &api_lb)), lb_of(&by_template, &lb));
    let listener_of = |e: &elb::Elb, arn: &str| {
        let mut r = e.listener(arn).unwrap().unwrap();
        r.bound_port = 0;
        serde_json::to_string(&r).unwrap()
    };
    assert_eq!(same_ids(listener_of(&by_api, &api_listener)), listener_of(&by_template, &listener));
    let rule_of = |e: &elb::Elb, arn: &str| serde_json::to_string(&e.rule(arn).unwrap()).unwrap();
    assert_eq!(same_ids(rule_of(&by_api, &api_rule)), rule_of(&by_template, &rule));
}

async fn ec2_call(
    g: &mut Golden,
    ec2: &ec2::Ec2,
    clock: &Clock,
    file: &str,
    pairs: &[(&str, &str)],
) -> String {
    let q = QueryInput::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let action = q.get("Action").unwrap().to_string();
    let body = match api::ec2::handle(ec2, clock, &action, &q, RID).await {
        Ok(body) => body,
        Err(e) => api::ec2::error_xml(&e, RID),
    };
    g.check(&format!("ec2/{file}"), &body);
    body
}

/// EC2's answers, as the aws CLI and SDKs parse them: the default VPC, the network calls,
/// key pairs, launch templates, routing, images, and the errors users meet first.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn ec2_responses() {
    let clock = Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
    let store = Arc::new(Store::in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let account = aws_ids::Account::default();
    let ec2 = ec2::Ec2::new(
        store.clone(),
        clock.clone(),
        ec2::Ec2Config::standalone(account, dir.path().to_path_buf()),
    )
    .unwrap();
    let engine = Engine::new(
        store,
        clock.clone(),
        EngineConfig::default(),
        Providers::default(),
        Arc::new(std::collections::BTreeMap::new()),
    );
    let mut g = Golden { engine, mismatches: Vec::new() };
    let (e, c) = (&ec2, &clock);
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeVpcs-Default",
        &[
            ("Action", "DescribeVpcs"),
            ("Filter.1.Name", "is-default"),
            ("Filter.1.Value.1", "true"),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeSubnets-Page",
        &[("Action", "DescribeSubnets"), ("MaxResults", "5")],
    )
    .await;
    let body = ec2_call(
        &mut g,
        e,
        c,
        "CreateVpc",
        &[
            ("Action", "CreateVpc"),
            ("CidrBlock", "10.1.0.0/16"),
            ("TagSpecification.1.ResourceType", "vpc"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "edx-build-aws-vpc"),
        ],
    )
    .await;
    let vpc = first(&body, "vpcId");
    let body = ec2_call(
        &mut g,
        e,
        c,
        "CreateSubnet",
        &[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", "10.1.1.0/24"),
            ("AvailabilityZone", "us-east-1b"),
        ],
    )
    .await;
    let subnet = first(&body, "subnetId");
    ec2_call(
        &mut g,
        e,
        c,
        "Error-InvalidSubnet.Conflict",
        &[("Action", "CreateSubnet"), ("VpcId", &vpc), ("CidrBlock", "10.1.1.0/25")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "ModifySubnetAttribute",
        &[
            ("Action", "ModifySubnetAttribute"),
            ("SubnetId", &subnet),
            ("MapPublicIpOnLaunch.Value", "true"),
        ],
    )
    .await;
    let body = ec2_call(
        &mut g,
        e,
        c,
        "CreateSecurityGroup",
        &[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", "web-server-sg"),
            ("GroupDescription", "Allow SSH and HTTP traffic"),
            ("VpcId", &vpc),
        ],
    )
    .await;
    let sg = first(&body, "groupId");
    ec2_call(
        &mut g,
        e,
        c,
        "AuthorizeSecurityGroupIngress",
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &sg),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "80"),
            ("IpPermissions.1.ToPort", "80"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
            ("IpPermissions.2.IpProtocol", "tcp"),
            ("IpPermissions.2.FromPort", "22"),
            ("IpPermissions.2.ToPort", "22"),
            ("IpPermissions.2.IpRanges.1.CidrIp", "0.0.0.0/0"),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "Error-InvalidPermission.Duplicate",
        &[
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", &sg),
            ("IpProtocol", "tcp"),
            ("FromPort", "80"),
            ("ToPort", "80"),
            ("CidrIp", "0.0.0.0/0"),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeSecurityGroups",
        &[("Action", "DescribeSecurityGroups"), ("GroupId.1", &sg)],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "Error-InvalidGroup.NotFound",
        &[("Action", "DescribeSecurityGroups"), ("GroupId.1", "sg-0123456789abcdef0")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "Error-InvalidFilter",
        &[("Action", "DescribeVpcs"), ("Filter.1.Name", "colour"), ("Filter.1.Value.1", "blue")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "CreateTags",
        &[
            ("Action", "CreateTags"),
            ("ResourceId.1", &sg),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "web"),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeTags",
        &[
            ("Action", "DescribeTags"),
            ("Filter.1.Name", "resource-type"),
            ("Filter.1.Value.1", "security-group"),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "CreateKeyPair",
        &[("Action", "CreateKeyPair"), ("KeyName", "edx-key"), ("KeyType", "ed25519")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeKeyPairs",
        &[("Action", "DescribeKeyPairs"), ("IncludePublicKey", "true")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "CreateLaunchTemplate",
        &[
            ("Action", "CreateLaunchTemplate"),
            ("LaunchTemplateName", "photos-web"),
            ("LaunchTemplateData.ImageId", "ami-0abcdef1234567890"),
            ("LaunchTemplateData.InstanceType", "t3.micro"),
            ("LaunchTemplateData.SecurityGroupId.1", &sg),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "CreateLaunchTemplateVersion",
        &[
            ("Action", "CreateLaunchTemplateVersion"),
            ("LaunchTemplateName", "photos-web"),
            ("SourceVersion", "1"),
            ("LaunchTemplateData.InstanceType", "t3.small"),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeLaunchTemplateVersions",
        &[("Action", "DescribeLaunchTemplateVersions"), ("LaunchTemplateName", "photos-web")],
    )
    .await;
    let body =
        ec2_call(&mut g, e, c, "CreateInternetGateway", &[("Action", "CreateInternetGateway")])
            .await;
    let igw = first(&body, "internetGatewayId");
    ec2_call(
        &mut g,
        e,
        c,
        "AttachInternetGateway",
        &[("Action", "AttachInternetGateway"), ("InternetGatewayId", &igw), ("VpcId", &vpc)],
    )
    .await;
    let body = ec2_call(
        &mut g,
        e,
        c,
        "CreateRouteTable",
        &[("Action", "CreateRouteTable"), ("VpcId", &vpc)],
    )
    .await;
    let rtb = first(&body, "routeTableId");
    ec2_call(
        &mut g,
        e,
        c,
        "CreateRoute",
        &[
            ("Action", "CreateRoute"),
            ("RouteTableId", &rtb),
            ("DestinationCidrBlock", "0.0.0.0/0"),
            ("GatewayId", &igw),
        ],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "AssociateRouteTable",
        &[("Action", "AssociateRouteTable"), ("RouteTableId", &rtb), ("SubnetId", &subnet)],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeRouteTables",
        &[("Action", "DescribeRouteTables"), ("RouteTableId.1", &rtb)],
    )
    .await;
    let body = ec2_call(
        &mut g,
        e,
        c,
        "AllocateAddress",
        &[("Action", "AllocateAddress"), ("Domain", "vpc")],
    )
    .await;
    let eip = first(&body, "allocationId");
    ec2_call(
        &mut g,
        e,
        c,
        "CreateNatGateway",
        &[("Action", "CreateNatGateway"), ("SubnetId", &subnet), ("AllocationId", &eip)],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "Error-DependencyViolation",
        &[("Action", "DeleteVpc"), ("VpcId", &vpc)],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "DescribeImages",
        &[("Action", "DescribeImages"), ("ImageId.1", "ami-0abcdef1234567890")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "Error-InvalidAMIID.Malformed",
        &[("Action", "DescribeImages"), ("ImageId.1", "ami-nope")],
    )
    .await;
    ec2_call(
        &mut g,
        e,
        c,
        "Error-InvalidSubnetID.NotFound",
        &[
            ("Action", "RunInstances"),
            ("ImageId", "ami-0abcdef1234567890"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SubnetId", "subnet-0123456789abcdef0"),
        ],
    )
    .await;
    assert!(g.mismatches.is_empty(), "{}\n(UPDATE_EXPECT=1 to accept)", g.mismatches.join("\n"));
}
