//! Stacks through the real API: deploy, update, status, events, outputs, delete; state that
//! survives a restart (graceful or SIGKILL); `cumulo up` and its Ctrl-C.

use std::time::Duration;

use crate::support::{Running, run};

const NETWORK: &str = r#"
Parameters:
  Cidr: {Type: String, Default: 10.0.0.0/16}
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: !Ref Cidr}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: !Select [0, !Cidr [!Ref Cidr, 2, 8]]}
Outputs:
  VpcId: {Value: !Ref Vpc, Export: {Name: network-vpc}}
  SubnetCidr: {Value: !GetAtt Subnet.CidrBlock}
"#;

const TOPIC: &str = r#"
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties: {DisplayName: !ImportValue network-vpc}
Outputs:
  TopicArn: {Value: !Ref Topic}
"#;

fn snapshot(endpoint: &str, dir: &std::path::Path) -> (String, String, String) {
    let (ok, status, err) = run(&["status", "--output", "json", "--endpoint-url", endpoint], dir);
    assert!(ok, "{err}");
    let (ok, events, err) =
        run(&["events", "network", "--output", "json", "--endpoint-url", endpoint], dir);
    assert!(ok, "{err}");
    let (ok, outputs, err) =
        run(&["outputs", "topic", "--output", "json", "--endpoint-url", endpoint], dir);
    assert!(ok, "{err}");
    (status, events, outputs)
}

#[test]
fn stacks_survive_restart_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap().to_string();
    std::fs::write(dir.path().join("network.yaml"), NETWORK).unwrap();
    std::fs::write(dir.path().join("topic.yaml"), TOPIC).unwrap();
    let serve = |dir: &std::path::Path| {
        Running::start(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_s], dir)
    };

    let mut server = serve(dir.path());
    let endpoint = server.endpoint();
    let (ok, out, err) = run(&["deploy", "network.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    assert!(out.contains("Successfully created stack - network"), "{out}");
    assert!(
        out.contains("CREATE_COMPLETE") && out.contains("AWS::EC2::Subnet"),
        "events are shown: {out}"
    );
    // An update through a change set (the VPC is replaced), then nothing left to change.
    let (ok, out, err) = run(
        &["deploy", "network.yaml", "-p", "Cidr=10.1.0.0/16", "--endpoint-url", &endpoint],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("Successfully updated stack - network")
            && out.contains("CidrBlock (replaces)"),
        "{out}"
    );
    let (ok, out, _) = run(
        &["deploy", "network.yaml", "-p", "Cidr=10.1.0.0/16", "--endpoint-url", &endpoint],
        dir.path(),
    );
    assert!(ok && out.contains("No changes to deploy"), "{out}");
    let (ok, out, err) = run(&["deploy", "topic.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    // Now the VPC's export is in use: replacing the VPC would change it, so the update rolls back.
    let (ok, out, err) = run(
        &["deploy", "network.yaml", "-p", "Cidr=10.2.0.0/16", "--endpoint-url", &endpoint],
        dir.path(),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("Cannot update export network-vpc as it is in use by topic"), "{out}");
    assert!(err.contains("UPDATE_ROLLBACK_COMPLETE"), "{err}");
    let before = snapshot(&endpoint, dir.path());
    assert!(
        before.0.contains("UPDATE_ROLLBACK_COMPLETE") && before.0.contains("\"topic\""),
        "{}",
        before.0
    );

    // A graceful stop and a restart on the same data directory.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    let mut server = serve(dir.path());
    let endpoint = server.endpoint();
    assert_eq!(snapshot(&endpoint, dir.path()), before);

    // SIGKILL: no chance to clean up; the state is still all there.
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(30));
    let mut server = serve(dir.path());
    let endpoint = server.endpoint();
    assert_eq!(snapshot(&endpoint, dir.path()), before);

    // Exports in use: the network stack cannot go before the topic stack.
    let (ok, out, err) = run(&["delete", "network", "--endpoint-url", &endpoint], dir.path());
    assert!(!ok, "{out}");
    assert!(err.contains("Export network-vpc cannot be deleted as it is in use by topic"), "{err}");
    for stack in ["topic", "network"] {
        let (ok, out, err) = run(&["delete", stack, "--endpoint-url", &endpoint], dir.path());
        assert!(ok, "{out}{err}");
    }
    let (_, out, _) = run(&["status", "--endpoint-url", &endpoint], dir.path());
    assert!(out.contains("No stacks."), "{out}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

#[test]
fn client_commands_explain_a_missing_region() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&["status", "--endpoint-url", "http://127.0.0.1:9"], dir.path());
    assert!(!ok);
    assert!(err.contains("no Cumulo region answers at http://127.0.0.1:9"), "{err}");
}

#[test]
fn up_deploys_then_ctrl_c_deletes_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("network.yaml"), NETWORK).unwrap();
    let mut up = Running::start(
        &["up", "network.yaml", "--listen", "127.0.0.1:0", "--output", "json"],
        dir.path(),
    );
    let line = up.wait_for("\"status\":\"CREATE_COMPLETE\"", Duration::from_secs(60));
    let summary: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(summary["stackName"], "network");
    assert!(
        summary["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["key"] == "SubnetCidr" && o["value"] == "10.0.0.0/24")
    );
    up.signal("INT");
    let status = up.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{}", up.seen.join("\n"));
    assert!(
        up.seen
            .iter()
            .any(|l| l.contains("DELETE_COMPLETE") && l.contains("AWS::CloudFormation::Stack")),
        "{}",
        up.seen.join("\n")
    );
}

#[test]
fn up_reports_template_problems_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "Resources:\n  A:\n    Type: AWS::SNS::Topic\n    Properties: {Colour: red}\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["up", "bad.yaml", "--listen", "127.0.0.1:0"], dir.path());
    assert!(!ok);
    assert!(err.contains("bad.yaml:4:18: error: Encountered unsupported property Colour"), "{err}");
}

/// The aws CLI drives the same region unchanged: `deploy`, `describe-*`, change sets, waiters.
#[test]
fn aws_cli_drives_the_region() {
    use crate::support::aws;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("network.yaml"), NETWORK).unwrap();
    let mut server =
        Running::start(&["serve", "--listen", "127.0.0.1:0", "--ephemeral"], dir.path());
    let endpoint = server.endpoint();
    let (ok, out, err) = aws(
        &endpoint,
        &["cloudformation", "deploy", "--template-file", "network.yaml", "--stack-name", "net"],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Successfully created/updated stack - net"), "{out}");
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            "net",
            "--query",
            "Stacks[0].[StackStatus,Outputs[?OutputKey=='SubnetCidr'].OutputValue|[0]]",
            "--output",
            "text",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "CREATE_COMPLETE\t10.0.0.0/24");
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "cloudformation",
            "deploy",
            "--template-file",
            "network.yaml",
            "--stack-name",
            "net",
            "--parameter-overrides",
            "Cidr=10.9.0.0/16",
            "--no-execute-changeset",
        ],
        dir.path(),
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "cloudformation",
            "list-change-sets",
            "--stack-name",
            "net",
            "--query",
            "Summaries[0].ChangeSetName",
            "--output",
            "text",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let change_set = out.trim().to_string();
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "cloudformation",
            "describe-change-set",
            "--stack-name",
            "net",
            "--change-set-name",
            &change_set,
            "--query",
            "Changes[].ResourceChange.[LogicalResourceId,Replacement]",
            "--output",
            "text",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Vpc\tTrue\nSubnet\tTrue");
    let (ok, _, err) = aws(
        &endpoint,
        &[
            "cloudformation",
            "execute-change-set",
            "--stack-name",
            "net",
            "--change-set-name",
            &change_set,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = aws(
        &endpoint,
        &["cloudformation", "wait", "stack-update-complete", "--stack-name", "net"],
        dir.path(),
    );
    assert!(ok, "{err}");
    let (ok, out, _) =
        aws(&endpoint, &["cloudformation", "describe-stacks", "--stack-name", "nope"], dir.path());
    assert!(!ok && out.is_empty());
    let (ok, _, err) =
        aws(&endpoint, &["cloudformation", "delete-stack", "--stack-name", "net"], dir.path());
    assert!(ok, "{err}");
    let (ok, _, err) = aws(
        &endpoint,
        &["cloudformation", "wait", "stack-delete-complete", "--stack-name", "net"],
        dir.path(),
    );
    assert!(ok, "{err}");
    // STS answers for the local account; a service Cumulo does not speak yet says so (Classic
    // ELB shares ELBv2's signing name but not its version) instead of answering another's shape.
    let (ok, out, err) = aws(&endpoint, &["sts", "get-caller-identity"], dir.path());
    assert!(ok, "{err}");
    let who: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["Account"], "000000000000");
    assert_eq!(who["Arn"], "arn:aws:iam::000000000000:root");
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "ec2",
            "describe-availability-zones",
            "--query",
            "AvailabilityZones[].[ZoneName,ZoneId,State]",
            "--output",
            "text",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "us-east-1a\tuse1-az1\tavailable\nus-east-1b\tuse1-az2\tavailable\nus-east-1c\tuse1-az3\tavailable"
    );
    let (ok, out, err) = aws(
        &endpoint,
        &["ec2", "describe-regions", "--query", "Regions[].RegionName", "--output", "text"],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "us-east-1");
    // Classic ELB answers in its own shape (it shares ELBv2's signing name).
    let (ok, out, err) = aws(
        &endpoint,
        &[
            "elb",
            "describe-load-balancers",
            "--query",
            "LoadBalancerDescriptions",
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[]");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
}

/// What a web page could send to the region changes nothing: a cross-origin form POST, an
/// `<img>`'s unsigned GET of a state-changing action, a request under a rebound DNS name, a
/// chaos call from another origin. The tools' own requests (no Origin, POST or signed) pass.
#[test]
fn requests_a_web_page_could_send_are_refused_and_change_nothing() {
    use crate::support::http;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("network.yaml"), NETWORK).unwrap();
    let mut server =
        Running::start(&["serve", "--listen", "127.0.0.1:0", "--ephemeral"], dir.path());
    let endpoint = server.endpoint();
    let (ok, out, err) = run(&["deploy", "network.yaml", "--endpoint-url", &endpoint], dir.path());
    assert!(ok, "{out}{err}");
    let stacks = || {
        let (status, body) = http("GET", &format!("{endpoint}/?Action=DescribeStacks"), &[]);
        assert_eq!(status, 200, "{body}");
        body.matches("<StackName>").count()
    };
    assert_eq!(stacks(), 1);
    let evil = [("Origin", "http://evil.example")];
    let create = format!(
        "{endpoint}/?Action=CreateStack&StackName=evil&TemplateBody=Resources%3A%20%7BT%3A%20%7BType%3A%20AWS%3A%3ASNS%3A%3ATopic%7D%7D"
    );
    let refused = |(status, body): (u16, String)| {
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    };
    refused(http("POST", &create, &evil));
    refused(http("POST", &create, &[("Sec-Fetch-Site", "cross-site")]));
    refused(http("GET", &format!("{endpoint}/?Action=DeleteStack&StackName=network"), &[]));
    let port = endpoint.rsplit(':').next().unwrap();
    let rebound = format!("evil.example:{port}");
    refused(http("POST", &create, &[("Host", rebound.as_str())]));
    refused(http(
        "GET",
        &format!("{endpoint}/?Action=DescribeStacks"),
        &[("Host", rebound.as_str())],
    ));
    refused(http("POST", &format!("{endpoint}/_cumulo/chaos/fail-zone/us-east-1a"), &evil));
    assert_eq!(stacks(), 1, "nothing was created or deleted");
    let (_, instances) = http("GET", &format!("{endpoint}/_cumulo/endpoints"), &[]);
    assert!(!instances.contains("evil"), "{instances}");
    // The same requests without a browser's marks work.
    let (status, body) = http("POST", &create, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(stacks(), 2, "the tool's request created its stack");
    let (status, body) = http(
        "POST",
        &create.replace("StackName=evil", "StackName=same-origin"),
        &[("Origin", endpoint.as_str())],
    );
    assert_eq!(status, 200, "{body}");
}
