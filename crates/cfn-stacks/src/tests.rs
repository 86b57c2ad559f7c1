//! The control loop on paused time: create, rollback, update, change sets, exports, nested
//! stacks, deletion policies, restarts. Resources here are schema-modelled; failures come from
//! AWS's own mechanisms (a wait condition that times out).

use std::sync::Arc;

use clock::Clock;
use expect_test::{Expect, expect};
use indexmap::IndexMap;
use store::Store;

use crate::*;

fn engine_on(store: Arc<Store>) -> Arc<Engine> {
    let nested = NestedStacks::new();
    let mut providers = Providers::default();
    providers.register(&["AWS::CloudFormation::Stack"], nested.clone());
    let engine = Engine::new(
        store,
        Clock::new(1.0),
        EngineConfig::default(),
        providers,
        Arc::new(cfn_template::public_parameters()),
    );
    nested.attach(&engine);
    engine
}

fn engine() -> Arc<Engine> {
    engine_on(Arc::new(Store::in_memory().unwrap()))
}

fn input(name: &str, body: &str, params: &[(&str, &str)]) -> StackInput {
    StackInput {
        stack_name: name.into(),
        template_body: Some(body.into()),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), ParamInput::Value(v.to_string())))
            .collect(),
        capabilities: vec!["CAPABILITY_NAMED_IAM".into()],
        ..StackInput::default()
    }
}

async fn create(
    engine: &Arc<Engine>,
    name: &str,
    body: &str,
    params: &[(&str, &str)],
) -> model::StackRecord {
    let id = engine.create_stack(input(name, body, params)).unwrap();
    engine.wait_terminal(&id).await.unwrap()
}

async fn update(
    engine: &Arc<Engine>,
    name: &str,
    body: &str,
    params: &[(&str, &str)],
) -> model::StackRecord {
    let id = engine.update_stack(input(name, body, params)).unwrap();
    engine.wait_terminal(&id).await.unwrap()
}

/// Events oldest first, as `LogicalId STATUS [reason]`.
fn events(engine: &Engine, stack: &str) -> String {
    let mut out = String::new();
    for e in engine.stack_events(stack).unwrap().into_iter().rev() {
        out.push_str(&format!("{} {}", e.logical_id, e.status));
        if let Some(r) = e.status_reason {
            out.push_str(&format!(" {r}"));
        }
        out.push('\n');
    }
    out
}

fn check_events(engine: &Engine, stack: &str, expect: Expect) {
    expect.assert_eq(&events(engine, stack));
}

const CHAIN: &str = r#"
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24}
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: web, VpcId: !Ref Vpc}
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
    DependsOn: [Subnet, Group]
  Wait:
    Type: AWS::CloudFormation::WaitCondition
    Properties: {Handle: !Ref Handle, Timeout: 60}
Outputs:
  VpcId: {Value: !Ref Vpc, Export: {Name: !Sub "${AWS::StackName}-vpc"}}
  Zone: {Value: !GetAtt Subnet.AvailabilityZone}
"#;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_fifth_resource_rolls_back_everything_in_aws_order() {
    let engine = engine();
    let stack = create(&engine, "chain", CHAIN, &[]).await;
    assert_eq!(stack.status, model::StackStatus::RollbackComplete);
    assert!(engine.stack_resources("chain").unwrap().is_empty(), "nothing left behind");
    assert!(engine.list_exports().unwrap().is_empty());
    check_events(
        &engine,
        "chain",
        expect![[r#"
            chain CREATE_IN_PROGRESS User Initiated
            Vpc CREATE_IN_PROGRESS
            Vpc CREATE_IN_PROGRESS Resource creation Initiated
            Vpc CREATE_COMPLETE
            Subnet CREATE_IN_PROGRESS
            Subnet CREATE_IN_PROGRESS Resource creation Initiated
            Group CREATE_IN_PROGRESS
            Group CREATE_IN_PROGRESS Resource creation Initiated
            Subnet CREATE_COMPLETE
            Group CREATE_COMPLETE
            Handle CREATE_IN_PROGRESS
            Handle CREATE_IN_PROGRESS Resource creation Initiated
            Handle CREATE_COMPLETE
            Wait CREATE_IN_PROGRESS
            Wait CREATE_IN_PROGRESS Resource creation Initiated
            Wait CREATE_FAILED WaitCondition timed out. Received 0 conditions when expecting 1
            chain ROLLBACK_IN_PROGRESS The following resource(s) failed to create: [Wait]. Rollback requested by user.
            Wait DELETE_IN_PROGRESS
            Wait DELETE_COMPLETE
            Handle DELETE_IN_PROGRESS
            Handle DELETE_COMPLETE
            Subnet DELETE_IN_PROGRESS
            Group DELETE_IN_PROGRESS
            Subnet DELETE_COMPLETE
            Group DELETE_COMPLETE
            Vpc DELETE_IN_PROGRESS
            Vpc DELETE_COMPLETE
            chain ROLLBACK_COMPLETE
        "#]],
    );
    // Only deletion is allowed now.
    let err = engine.update_stack(input("chain", CHAIN, &[])).unwrap_err();
    assert!(err.to_string().contains("ROLLBACK_COMPLETE state and can not be updated"), "{err}");
    engine.delete_stack("chain").unwrap();
    let id = stack.stack_id.clone();
    assert_eq!(engine.wait_terminal(&id).await.unwrap().status, model::StackStatus::DeleteComplete);
    assert!(engine.find_stack("chain").is_err());
    assert_eq!(engine.find_stack(&id).unwrap().status, model::StackStatus::DeleteComplete);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn signalled_wait_condition_completes_and_outputs_resolve() {
    let engine = engine();
    let id = engine.create_stack(input("signalled", CHAIN, &[])).unwrap();
    // Signal the handle once it exists, as cfn-signal would.
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        if let Ok(handle) = engine.stack_resource(&id, "Handle")
            && let Some(url) = handle
                .physical_id
                .filter(|_| handle.status == model::ResourceStatus::CreateComplete)
        {
            engine.signal_wait_handle(&url, "i-1", "SUCCESS", "", "ready").unwrap();
            break;
        }
    }
    let stack = engine.wait_terminal(&id).await.unwrap();
    assert_eq!(stack.status, model::StackStatus::CreateComplete, "{:?}", stack.status_reason);
    let vpc = engine.stack_resource("signalled", "Vpc").unwrap();
    let vpc_id = vpc.physical_id.unwrap();
    assert!(vpc_id.starts_with("vpc-") && vpc_id.len() == 21, "{vpc_id}");
    assert!(vpc.modelled);
    let outputs: IndexMap<_, _> =
        stack.outputs.iter().map(|o| (o.key.as_str(), o.value.as_str())).collect();
    assert_eq!(outputs["VpcId"], vpc_id);
    assert_eq!(outputs["Zone"], "us-east-1a");
    let exports = engine.list_exports().unwrap();
    assert_eq!(
        (exports[0].name.as_str(), exports[0].value.as_str()),
        ("signalled-vpc", vpc_id.as_str())
    );
    let wait = engine.stack_resource("signalled", "Wait").unwrap();
    assert_eq!(wait.attributes["Data"], r#"{"i-1":"ready"}"#);
}

const WEB: &str = r#"
Parameters:
  Display: {Type: String, Default: alerts}
  Port: {Type: Number, Default: 80}
  WithQueue: {Type: String, Default: "no", AllowedValues: ["yes", "no"]}
Conditions:
  HasQueue: !Equals [!Ref WithQueue, "yes"]
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  Topic:
    Type: AWS::SNS::Topic
    Properties: {DisplayName: !Ref Display}
  TargetGroup:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties: {Port: !Ref Port, Protocol: HTTP, VpcId: !Ref Vpc}
  Queue:
    Type: AWS::SQS::Queue
    Condition: HasQueue
Outputs:
  TopicName: {Value: !GetAtt Topic.TopicName, Export: {Name: web-topic}}
  TargetGroup: {Value: !Ref TargetGroup}
"#;

fn change_lines(cs: &model::ChangeSetRecord) -> String {
    let mut out = format!(
        "{} {} {}\n",
        cs.status,
        cs.execution_status,
        cs.status_reason.clone().unwrap_or_default()
    );
    for c in &cs.changes {
        out.push_str(&format!(
            "{} {} {} replacement={}",
            c.action,
            c.logical_id,
            c.resource_type,
            c.replacement.clone().unwrap_or("-".into())
        ));
        for d in &c.details {
            out.push_str(&format!(
                " [{} {} {} {} {}]",
                d.attribute,
                d.name.clone().unwrap_or_default(),
                d.requires_recreation,
                d.evaluation,
                d.change_source
            ));
        }
        out.push('\n');
    }
    out
}

fn change_set(
    engine: &Engine,
    name: &str,
    body: &str,
    params: &[(&str, &str)],
) -> model::ChangeSetRecord {
    let (id, _) = engine
        .create_change_set(ChangeSetInput {
            stack: input("web", body, params),
            change_set_name: name.into(),
            change_set_type: "UPDATE".into(),
            description: None,
        })
        .unwrap();
    engine.describe_change_set(&id, None).unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn change_sets_show_in_place_replacement_removal_and_conditions() {
    let engine = engine();
    let stack = create(&engine, "web", WEB, &[]).await;
    assert_eq!(stack.status, model::StackStatus::CreateComplete, "{:?}", stack.status_reason);
    let old_tg = engine.stack_resource("web", "TargetGroup").unwrap().physical_id.unwrap();
    let old_topic = engine.stack_resource("web", "Topic").unwrap().physical_id.unwrap();

    // A parameter that changes a property in place.
    let cs = change_set(&engine, "display", WEB, &[("Display", "pager")]);
    expect![[r#"
        CREATE_COMPLETE AVAILABLE 
        Modify Topic AWS::SNS::Topic replacement=False [Properties DisplayName Never Static ParameterReference]
    "#]]
    .assert_eq(&change_lines(&cs));

    // A target group's Port forces replacement; a condition turns a resource on.
    let cs = change_set(&engine, "port", WEB, &[("Port", "8080"), ("WithQueue", "yes")]);
    expect![[r#"
        CREATE_COMPLETE AVAILABLE 
        Modify TargetGroup AWS::ElasticLoadBalancingV2::TargetGroup replacement=True [Properties Port Always Static ParameterReference]
        Add Queue AWS::SQS::Queue replacement=-
    "#]]
    .assert_eq(&change_lines(&cs));

    // Nothing changed.
    let cs = change_set(&engine, "same", WEB, &[]);
    expect![[r#"
        FAILED UNAVAILABLE The submitted information didn't contain changes. Submit different information to create a change set.
    "#]]
    .assert_eq(&change_lines(&cs));

    engine.execute_change_set("port", Some("web")).unwrap();
    let stack = engine.wait_terminal(&stack.stack_id).await.unwrap();
    assert_eq!(stack.status, model::StackStatus::UpdateComplete, "{:?}", stack.status_reason);
    let new_tg = engine.stack_resource("web", "TargetGroup").unwrap().physical_id.unwrap();
    assert_ne!(new_tg, old_tg, "replaced");
    assert_eq!(
        engine.stack_resource("web", "Topic").unwrap().physical_id.unwrap(),
        old_topic,
        "untouched"
    );
    assert!(engine.stack_resource("web", "Queue").is_ok());
    assert_eq!(stack.outputs.iter().find(|o| o.key == "TargetGroup").unwrap().value, new_tg);
    let executed = engine.describe_change_set("port", Some("web")).unwrap();
    assert_eq!(executed.execution_status, model::ExecutionStatus::ExecuteComplete);
    assert!(
        engine.describe_change_set("display", Some("web")).is_err(),
        "other change sets are removed"
    );
    assert!(engine.list_change_sets(&stack.stack_id).unwrap().is_empty());
    let tail: Vec<String> = events(&engine, "web")
        .lines()
        .skip_while(|l| !l.starts_with("web UPDATE_IN_PROGRESS"))
        .map(str::to_string)
        .collect();
    expect![[r#"
        web UPDATE_IN_PROGRESS User Initiated
        Queue CREATE_IN_PROGRESS
        Queue CREATE_IN_PROGRESS Resource creation Initiated
        TargetGroup UPDATE_IN_PROGRESS Requested update requires the creation of a new physical resource; hence creating one.
        Queue CREATE_COMPLETE
        TargetGroup UPDATE_COMPLETE
        web UPDATE_COMPLETE_CLEANUP_IN_PROGRESS
        TargetGroup DELETE_IN_PROGRESS
        TargetGroup DELETE_COMPLETE
        web UPDATE_COMPLETE
    "#]]
    .assert_eq(&(tail.join("\n") + "\n"));

    // The condition flips back: the queue is removed, in the cleanup.
    let cs = change_set(&engine, "noqueue", WEB, &[("Port", "8080"), ("WithQueue", "no")]);
    expect![[r#"
        CREATE_COMPLETE AVAILABLE 
        Remove Queue AWS::SQS::Queue replacement=-
    "#]]
    .assert_eq(&change_lines(&cs));
    engine.execute_change_set(&cs.change_set_id, None).unwrap();
    let stack = engine.wait_terminal(&stack.stack_id).await.unwrap();
    assert_eq!(stack.status, model::StackStatus::UpdateComplete);
    assert!(engine.stack_resource("web", "Queue").is_err());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failed_update_rolls_back_to_the_previous_template() {
    let engine = engine();
    let stack = create(&engine, "web", WEB, &[]).await;
    let topic_before = engine.stack_resource("web", "Topic").unwrap();
    // The update changes the topic in place and adds a wait condition nobody signals.
    let extra = "  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n  Wait:\n    Type: AWS::CloudFormation::WaitCondition\n    DependsOn: Topic\n    Properties: {Handle: !Ref Handle, Timeout: 30}\nOutputs:";
    let body = WEB.replace("Outputs:", extra);
    let result = update(&engine, "web", &body, &[("Display", "pager")]).await;
    assert_eq!(
        result.status,
        model::StackStatus::UpdateRollbackComplete,
        "{:?}",
        result.status_reason
    );
    assert_eq!(result.template_body, WEB, "back to the previous template");
    assert_eq!(result.parameters["Display"], "alerts");
    let topic_after = engine.stack_resource("web", "Topic").unwrap();
    assert_eq!(topic_after.physical_id, topic_before.physical_id);
    assert_eq!(topic_after.properties["DisplayName"], "alerts");
    assert!(
        engine.stack_resource("web", "Wait").is_err()
            && engine.stack_resource("web", "Handle").is_err()
    );
    let tail: Vec<String> = events(&engine, "web")
        .lines()
        .skip_while(|l| !l.starts_with("web UPDATE_IN_PROGRESS"))
        .map(str::to_string)
        .collect();
    expect![[r#"
        web UPDATE_IN_PROGRESS User Initiated
        Topic UPDATE_IN_PROGRESS
        Handle CREATE_IN_PROGRESS
        Handle CREATE_IN_PROGRESS Resource creation Initiated
        Topic UPDATE_COMPLETE
        Handle CREATE_COMPLETE
        Wait CREATE_IN_PROGRESS
        Wait CREATE_IN_PROGRESS Resource creation Initiated
        Wait CREATE_FAILED WaitCondition timed out. Received 0 conditions when expecting 1
        web UPDATE_ROLLBACK_IN_PROGRESS The following resource(s) failed to update: [Wait].
        Topic UPDATE_IN_PROGRESS
        Topic UPDATE_COMPLETE
        web UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS
        Wait DELETE_IN_PROGRESS
        Wait DELETE_COMPLETE
        Handle DELETE_IN_PROGRESS
        Handle DELETE_COMPLETE
        web UPDATE_ROLLBACK_COMPLETE
    "#]]
    .assert_eq(&(tail.join("\n") + "\n"));
    // The stack can be updated again.
    let again = update(&engine, "web", WEB, &[("Display", "pager")]).await;
    assert_eq!(again.status, model::StackStatus::UpdateComplete);
    let _ = stack;
}

/// A topic provider that does its work after a pause (as real services do) and remembers
/// the display name each update left.
struct SlowTopics {
    applied: parking_lot::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ResourceProvider for SlowTopics {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        Ok(generic::model(req, None))
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &model::ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let name = req.properties["DisplayName"].as_str().unwrap_or_default().to_string();
        self.applied.lock().push(name);
        Ok(generic::model(req, Some(current)))
    }

    async fn delete(
        &self,
        _req: &ResourceRequest<'_>,
        _current: &model::ResourceRecord,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_rollback_really_reverts_what_the_failed_update_changed() {
    let topics = Arc::new(SlowTopics { applied: Default::default() });
    let mut providers = Providers::default();
    providers.register(&["AWS::SNS::Topic"], topics.clone());
    let engine = Engine::new(
        Arc::new(Store::in_memory().unwrap()),
        Clock::new(1.0),
        EngineConfig::default(),
        providers,
        Arc::new(cfn_template::public_parameters()),
    );
    create(&engine, "web", WEB, &[]).await;
    // The topic changes; a wait condition nobody signals fails the update.
    let extra = "  Handle:\n    Type: AWS::CloudFormation::WaitConditionHandle\n  Wait:\n    Type: AWS::CloudFormation::WaitCondition\n    DependsOn: Topic\n    Properties: {Handle: !Ref Handle, Timeout: 30}\nOutputs:";
    let body = WEB.replace("Outputs:", extra);
    let result = update(&engine, "web", &body, &[("Display", "pager")]).await;
    assert_eq!(
        result.status,
        model::StackStatus::UpdateRollbackComplete,
        "{:?}",
        result.status_reason
    );
    // The provider was asked to apply the new name, then the old one again.
    assert_eq!(*topics.applied.lock(), ["pager", "alerts"]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn exports_in_use_block_deletion_and_updates() {
    let engine = engine();
    let producer = create(&engine, "web", WEB, &[]).await;
    let consumer = create(
        &engine,
        "consumer",
        "Resources:\n  Sub:\n    Type: AWS::SNS::Subscription\n    Properties: {TopicArn: !ImportValue web-topic, Protocol: email, Endpoint: a@example.com}\n",
        &[],
    )
    .await;
    assert_eq!(consumer.status, model::StackStatus::CreateComplete, "{:?}", consumer.status_reason);
    assert_eq!(consumer.imports, vec!["web-topic".to_string()]);
    assert_eq!(engine.list_imports("web-topic").unwrap(), vec!["consumer".to_string()]);
    // Its export cannot disappear in an update.
    let without_export = WEB.replace(", Export: {Name: web-topic}", "");
    let updated = update(&engine, "web", &without_export, &[]).await;
    assert_eq!(updated.status, model::StackStatus::UpdateRollbackComplete);
    // Nor can the producer go.
    engine.delete_stack("web").unwrap();
    let failed = engine.wait_terminal(&producer.stack_id).await.unwrap();
    assert_eq!(failed.status, model::StackStatus::DeleteFailed);
    assert_eq!(
        failed.status_reason.as_deref(),
        Some("Export web-topic cannot be deleted as it is in use by consumer")
    );
    // Importing a missing export fails at once.
    let err = engine.create_stack(input("orphan", "Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties: {DisplayName: !ImportValue nope}\n", &[])).unwrap_err();
    assert!(err.to_string().contains("No export named nope found."), "{err}");
    // Once the consumer is gone, the producer can be deleted.
    engine.delete_stack("consumer").unwrap();
    engine.wait_terminal(&consumer.stack_id).await.unwrap();
    engine.delete_stack("web").unwrap();
    assert_eq!(
        engine.wait_terminal(&producer.stack_id).await.unwrap().status,
        model::StackStatus::DeleteComplete
    );
    assert!(engine.list_exports().unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn retain_is_skipped_on_delete() {
    let engine = engine();
    let body = "Resources:\n  Logs:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain\n  Topic:\n    Type: AWS::SNS::Topic\n";
    let stack = create(&engine, "keep", body, &[]).await;
    engine.delete_stack("keep").unwrap();
    engine.wait_terminal(&stack.stack_id).await.unwrap();
    let lines = events(&engine, &stack.stack_id);
    assert!(lines.contains("Logs DELETE_SKIPPED"), "{lines}");
    assert!(lines.contains("Topic DELETE_COMPLETE"), "{lines}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn nested_stack_from_a_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let child = dir.path().join("child.yaml");
    std::fs::write(&child, "Parameters:\n  Cidr: {Type: String}\nResources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties: {CidrBlock: !Ref Cidr}\nOutputs:\n  VpcId: {Value: !Ref Vpc}\n").unwrap();
    let engine = engine();
    let parent = format!(
        "Resources:\n  Network:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: {}\n      Parameters: {{Cidr: 10.1.0.0/16}}\n  Group:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {{GroupDescription: g, VpcId: !GetAtt Network.Outputs.VpcId}}\nOutputs:\n  Vpc: {{Value: !GetAtt Network.Outputs.VpcId}}\n",
        child.display()
    );
    let stack = create(&engine, "parent", &parent, &[]).await;
    assert_eq!(stack.status, model::StackStatus::CreateComplete, "{:?}", stack.status_reason);
    let nested = engine.stack_resource("parent", "Network").unwrap();
    let child_stack = engine.find_stack(nested.physical_id.as_deref().unwrap()).unwrap();
    assert_eq!(child_stack.parent_id.as_deref(), Some(stack.stack_id.as_str()));
    assert!(child_stack.name.starts_with("parent-Network-"));
    assert_eq!(stack.outputs[0].value, child_stack.outputs[0].value);
    assert!(stack.outputs[0].value.starts_with("vpc-"));
    engine.delete_stack("parent").unwrap();
    assert_eq!(
        engine.wait_terminal(&stack.stack_id).await.unwrap().status,
        model::StackStatus::DeleteComplete
    );
    assert_eq!(
        engine.find_stack(&child_stack.stack_id).unwrap().status,
        model::StackStatus::DeleteComplete
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let engine = engine_on(Arc::new(Store::open(dir.path()).unwrap()));
        let a = create(&engine, "web", WEB, &[]).await;
        let b = create(
            &engine,
            "other",
            "Resources:\n  T:\n    Type: AWS::SNS::Topic\nOutputs:\n  T: {Value: !Ref T}\n",
            &[],
        )
        .await;
        (a, b)
    };
    let engine = engine_on(Arc::new(Store::open(dir.path()).unwrap()));
    assert_eq!(engine.recover().unwrap(), 0);
    let stacks = engine.describe_stacks(None).unwrap();
    assert_eq!(stacks.len(), 2);
    let again = engine.find_stack("web").unwrap();
    assert_eq!((again.status, &again.outputs), (a.status, &a.outputs));
    assert_eq!(engine.find_stack("other").unwrap().outputs, b.outputs);
    assert_eq!(engine.stack_events("web").unwrap().len(), events(&engine, "web").lines().count());
    assert!(events(&engine, "web").ends_with("web CREATE_COMPLETE\n"));
    // And the restored stack still works.
    let updated = update(&engine, "web", WEB, &[("Display", "x")]).await;
    assert_eq!(updated.status, model::StackStatus::UpdateComplete);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn api_errors_match_aws() {
    let engine = engine();
    create(&engine, "web", WEB, &[]).await;
    let e = engine.create_stack(input("web", WEB, &[])).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("AlreadyExistsException", "Stack [web] already exists")
    );
    let e = engine.update_stack(input("web", WEB, &[])).unwrap_err();
    assert_eq!(e.to_string(), "No updates are to be performed.");
    let e = engine.describe_stacks(Some("nope")).unwrap_err();
    assert_eq!(e.to_string(), "Stack with id nope does not exist");
    let e = engine.create_stack(input("bad_name", WEB, &[])).unwrap_err();
    assert!(e.to_string().contains("Member must satisfy regular expression pattern"));
    let e = engine
        .create_stack(input(
            "p",
            "Parameters:\n  K: {Type: String}\nResources:\n  T: {Type: AWS::SNS::Topic}\n",
            &[],
        ))
        .unwrap_err();
    assert_eq!(e.to_string(), "Parameters: [K] must have values");
    let iam = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: r\n      AssumeRolePolicyDocument: {}\n";
    let mut no_caps = input("iam", iam, &[]);
    no_caps.capabilities.clear();
    let e = engine.create_stack(no_caps).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_NAMED_IAM]")
    );
}

/// Every event broadcast so far (the receiver's backlog).
fn received(
    events: &mut tokio::sync::broadcast::Receiver<model::StackEvent>,
) -> Vec<model::StackEvent> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_create_the_store_refuses_is_an_internal_failure_and_leaves_nothing() {
    let store = Arc::new(Store::in_memory().unwrap());
    let engine = engine_on(store.clone());
    let mut live = engine.subscribe();
    store.inject(store::Faults::Writes);
    let e = engine.create_stack(input("web", WEB, &[])).unwrap_err();
    assert!(matches!(e, CfnError::Store(_)), "{e:?}");
    assert_eq!((e.code(), e.is_client_error()), ("InternalFailure", false));
    let e = engine
        .create_change_set(ChangeSetInput {
            stack: input("review", WEB, &[]),
            change_set_name: "first".into(),
            change_set_type: "CREATE".into(),
            description: None,
        })
        .unwrap_err();
    assert!(matches!(e, CfnError::Store(_)), "{e:?}");
    store.inject(store::Faults::None);
    assert!(engine.describe_stacks(None).unwrap().is_empty(), "no stack was recorded");
    assert!(received(&mut live).is_empty(), "nothing was announced");
    // Nothing was left claimed either: the same calls work once the store does.
    let stack = create(&engine, "web", WEB, &[]).await;
    assert_eq!(stack.status, model::StackStatus::CreateComplete);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_read_failure_is_an_error_not_a_missing_stack() {
    let store = Arc::new(Store::in_memory().unwrap());
    let engine = engine_on(store.clone());
    create(&engine, "web", WEB, &[]).await;
    store.inject(store::Faults::All);
    let store_error = |r: Result<(), CfnError>| matches!(r, Err(CfnError::Store(_)));
    assert!(store_error(engine.find_stack("web").map(drop)));
    assert!(store_error(engine.delete_stack("web")), "not a deletion of nothing");
    assert!(store_error(engine.delete_stack("never-existed")));
    assert!(store_error(engine.create_stack(input("other", WEB, &[])).map(drop)));
    assert!(store_error(engine.stack_events("web").map(drop)));
    store.inject(store::Faults::None);
    assert_eq!(engine.find_stack("web").unwrap().status, model::StackStatus::CreateComplete);
    assert!(engine.lookup_stack("other").unwrap().is_none());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_store_failure_mid_operation_fails_the_stack_and_announces_only_what_was_stored() {
    let store = Arc::new(Store::in_memory().unwrap());
    let engine = engine_on(store.clone());
    let mut live = engine.subscribe();
    let id = engine.create_stack(input("chain", CHAIN, &[])).unwrap();
    // The wait condition waits for its signal (60 s); the store fails meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        engine.stack_resource("chain", "Vpc").unwrap().status,
        model::ResourceStatus::CreateComplete
    );
    store.inject(store::Faults::Writes);
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    let stuck = engine.find_stack(&id).unwrap();
    assert_eq!(stuck.status, model::StackStatus::CreateInProgress, "nothing more was stored");
    store.inject(store::Faults::None);
    let stack = engine.wait_terminal(&id).await.unwrap();
    assert_eq!(stack.status, model::StackStatus::RollbackFailed);
    let reason = stack.status_reason.unwrap_or_default();
    assert!(reason.starts_with("The state store failed: "), "{reason}");
    let mut stored = engine.stack_events(&id).unwrap();
    stored.reverse();
    assert_eq!(received(&mut live), stored, "every announced event is stored, in order");
    assert!(events(&engine, "chain").ends_with(&format!("chain ROLLBACK_FAILED {reason}\n")));
    // The stack can still be deleted, which removes what was created.
    engine.delete_stack(&id).unwrap();
    assert_eq!(engine.wait_terminal(&id).await.unwrap().status, model::StackStatus::DeleteComplete);
    assert!(engine.stack_resources(&id).unwrap().is_empty());
}

/// Topics whose provider gives no physical id, so that a `Ref` to one cannot be known.
struct IdlessTopics;

#[async_trait::async_trait]
impl ResourceProvider for IdlessTopics {
    async fn create(&self, _: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        Ok(Provided::default())
    }

    async fn update(
        &self,
        _: &ResourceRequest<'_>,
        _: &model::ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        Ok(Provided::default())
    }

    async fn delete(
        &self,
        _: &ResourceRequest<'_>,
        _: &model::ResourceRecord,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_property_that_cannot_be_known_fails_its_resource() {
    let mut providers = Providers::default();
    providers.register(&["AWS::SNS::Topic"], Arc::new(IdlessTopics));
    let engine = Engine::new(
        Arc::new(Store::in_memory().unwrap()),
        Clock::new(1.0),
        EngineConfig::default(),
        providers,
        Arc::new(cfn_template::public_parameters()),
    );
    let body = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n  Sub:\n    Type: AWS::SNS::Subscription\n    Properties:\n      Protocol: email\n      Endpoint: a@example.com\n      TopicArn: !Ref Topic\n";
    let stack = create(&engine, "idless", body, &[]).await;
    assert_eq!(stack.status, model::StackStatus::RollbackComplete);
    assert!(events(&engine, "idless").contains(
        "Sub CREATE_FAILED Properties of Sub could not be resolved: TopicArn is not known yet\n"
    ));
}

/// An account that has subnets `subnet-a` and `subnet-b`, and keeps no other type.
struct TwoSubnets;

impl crate::AccountResources for TwoSubnets {
    fn exists(&self, ty: &str, value: &str) -> Result<Option<bool>, store::StoreError> {
        Ok((ty == "AWS::EC2::Subnet::Id").then(|| value == "subnet-a" || value == "subnet-b"))
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn aws_typed_parameters_must_name_what_the_account_has() {
    let engine = Engine::new(
        Arc::new(Store::in_memory().unwrap()),
        Clock::new(1.0),
        EngineConfig { account_resources: Some(Arc::new(TwoSubnets)), ..EngineConfig::default() },
        Providers::default(),
        Arc::new(cfn_template::public_parameters()),
    );
    let body = r#"
Parameters:
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>"}
  Key: {Type: "AWS::EC2::KeyPair::KeyName", Default: anything}
Resources:
  Topic: {Type: AWS::SNS::Topic}
"#;
    let outcome = |subnets: &str| match engine.create_stack(input(
        &format!("s{}", subnets.len()),
        body,
        &[("Subnets", subnets)],
    )) {
        Ok(_) => "accepted".to_string(),
        Err(e) => format!("{}: {e}", e.code()),
    };
    expect_test::expect![[r#"
        accepted
        ValidationError: Parameter validation failed: parameter value subnet-0123456789abcdef0 for parameter name Subnets does not exist"#]]
    .assert_eq(&[outcome("subnet-a,subnet-b"), outcome("subnet-a, subnet-0123456789abcdef0")].join("\n"));
}
