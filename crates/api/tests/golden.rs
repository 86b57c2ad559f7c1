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
        let actual = normalize(&body);
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
        body
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
