//! Every corpus template, with its full parameter set, reaches CREATE_COMPLETE with modelled
//! resources and deletes cleanly. Wait-condition handles are signalled the way the instances'
//! UserData would (the instances themselves are modelled here).

use std::path::PathBuf;
use std::sync::Arc;

use cfn_stacks::model::{EventStatus, ResourceStatus, StackStatus};
use cfn_stacks::{Engine, EngineConfig, NestedStacks, ParamInput, Providers, StackInput};
use clock::Clock;
use indexmap::IndexMap;
use store::Store;

const ZONE: &str = r#"
Resources:
  HostedZone:
    Type: AWS::Route53::HostedZone
    Properties: {Name: example.com}
Outputs:
  HostedZoneName:
    Value: example.com
    Export: {Name: !Sub "${AWS::StackName}-HostedZoneName"}
  HostedZoneId:
    Value: !Ref HostedZone
    Export: {Name: !Sub "${AWS::StackName}-HostedZoneId"}
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_corpus_template_creates_and_deletes() {
    let corpus = repo().join("tests/corpus");
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).unwrap();
    let params: IndexMap<String, IndexMap<String, String>> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/corpus-parameters.json")).unwrap(),
    )
    .unwrap();
    // Nested stacks' S3 URLs map to the corpus file of the same name.
    let all: Vec<PathBuf> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|p| corpus.join(p))
        .collect();
    let files = all.clone();
    let loader: cfn_stacks::TemplateLoader = Arc::new(move |url: &str| {
        let name = url.rsplit('/').next().unwrap_or_default();
        let path = files
            .iter()
            .find(|p| p.file_name().and_then(|f| f.to_str()) == Some(name))
            .ok_or(format!("no corpus file for {url}"))?;
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    });
    let nested = NestedStacks::new();
    let mut providers = Providers::default();
    providers.register(&["AWS::CloudFormation::Stack"], nested.clone());
    let config = EngineConfig { template_loader: loader, ..EngineConfig::default() };
    let engine = Engine::new(
        Arc::new(Store::in_memory().unwrap()),
        Clock::new(1.0),
        config,
        providers,
        Arc::new(cfn_template::public_parameters()),
    );
    nested.attach(&engine);

    // Stand in for instances that signal their wait-condition handles.
    let signaller = engine.clone();
    let mut events = engine.subscribe();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if e.resource_type == "AWS::CloudFormation::WaitConditionHandle"
                && e.status == EventStatus::Resource(ResourceStatus::CreateComplete)
                && let Some(url) = e.physical_id
            {
                let _ =
                    signaller.signal_wait_handle(&url, "i-0123456789abcdef0", "SUCCESS", "", "ok");
            }
        }
    });

    // The widdix templates import from a VPC stack (their ParentVPCStack parameter, `vpc` in the
    // parameters file): it is deployed first and deleted last, as a user would.
    let vpc_template = "widdix__aws-cf-templates/vpc/vpc-3azs.yaml";
    let vpc = engine
        .create_stack(StackInput {
            stack_name: "vpc".into(),
            template_body: Some(std::fs::read_to_string(corpus.join(vpc_template)).unwrap()),
            parameters: params[vpc_template]
                .iter()
                .map(|(k, v)| (k.clone(), ParamInput::Value(v.clone())))
                .collect(),
            ..StackInput::default()
        })
        .unwrap();
    assert_eq!(engine.wait_terminal(&vpc).await.unwrap().status, StackStatus::CreateComplete);
    // The WordPress templates import a public hosted zone (ParentZoneStack, `zone`): widdix's own
    // zone template is not in the corpus, so a minimal one stands in.
    let zone = engine
        .create_stack(StackInput {
            stack_name: "zone".into(),
            template_body: Some(ZONE.into()),
            ..StackInput::default()
        })
        .unwrap();
    assert_eq!(engine.wait_terminal(&zone).await.unwrap().status, StackStatus::CreateComplete);

    let mut failures = Vec::new();
    let (mut created, mut resources) = (0, 0);
    for (i, path) in manifest.lines().skip(1).filter_map(|l| l.split('\t').next()).enumerate() {
        let body = std::fs::read_to_string(corpus.join(path)).unwrap();
        let name = format!("corpus-{i}");
        let input = StackInput {
            stack_name: name.clone(),
            template_body: Some(body),
            parameters: params[path]
                .iter()
                .map(|(k, v)| (k.clone(), ParamInput::Value(v.clone())))
                .collect(),
            capabilities: vec![
                "CAPABILITY_IAM".into(),
                "CAPABILITY_NAMED_IAM".into(),
                "CAPABILITY_AUTO_EXPAND".into(),
            ],
            ..StackInput::default()
        };
        let id = match engine.create_stack(input) {
            Ok(id) => id,
            Err(e) => {
                failures.push(format!("{path}: CreateStack: {e}"));
                continue;
            }
        };
        let stack = engine.wait_terminal(&id).await.unwrap();
        if stack.status != StackStatus::CreateComplete {
            let reasons: Vec<String> = engine
                .stack_events(&id)
                .unwrap()
                .into_iter()
                .filter(|e| e.status.as_str().ends_with("FAILED"))
                .map(|e| format!("{}: {}", e.logical_id, e.status_reason.unwrap_or_default()))
                .collect();
            failures
                .push(format!("{path}: {} {:?} {reasons:?}", stack.status, stack.status_reason));
            continue;
        }
        created += 1;
        resources += engine.stack_resources(&id).unwrap().len();
        engine.delete_stack(&id).unwrap();
        let deleted = engine.wait_terminal(&id).await.unwrap();
        if deleted.status != StackStatus::DeleteComplete
            || !engine.stack_resources(&id).unwrap().is_empty()
        {
            failures.push(format!(
                "{path}: delete ended {} {:?}",
                deleted.status, deleted.status_reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for parent in [&zone, &vpc] {
        engine.delete_stack(parent).unwrap();
        assert_eq!(engine.wait_terminal(parent).await.unwrap().status, StackStatus::DeleteComplete);
    }
    assert!(engine.list_exports().unwrap().is_empty());
    eprintln!(
        "corpus: {created} of {} templates reached CREATE_COMPLETE ({resources} resources) and deleted cleanly",
        all.len()
    );
}
