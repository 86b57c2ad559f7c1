//! SSM parameters created by one stack are read by another (`{{resolve:ssm:...}}` and
//! `AWS::SSM::Parameter::Value<String>`), and go away with their stack.

use cfn_stacks::StackInput;
use cfn_stacks::model::StackStatus;
use region::{Region, RegionConfig};

fn input(name: &str, body: &str) -> StackInput {
    StackInput {
        stack_name: name.into(),
        template_body: Some(body.into()),
        ..StackInput::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_flow_between_stacks() {
    let config = RegionConfig { listen: "127.0.0.1:0".parse().unwrap(), ..RegionConfig::default() };
    let region = Region::start(config).await.unwrap();
    let engine = region.engine.clone();
    let writer = "Resources:\n  Db:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /app/db-host, Type: String, Value: db.internal}\n";
    let id = engine.create_stack(input("writer", writer)).unwrap();
    assert_eq!(engine.wait_terminal(&id).await.unwrap().status, StackStatus::CreateComplete);
    let reader = "Parameters:\n  Host: {Type: \"AWS::SSM::Parameter::Value<String>\", Default: /app/db-host}\nResources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties: {DisplayName: \"{{resolve:ssm:/app/db-host}}\"}\nOutputs:\n  Host: {Value: !Ref Host}\n";
    let id = engine.create_stack(input("reader", reader)).unwrap();
    let stack = engine.wait_terminal(&id).await.unwrap();
    assert_eq!(stack.status, StackStatus::CreateComplete, "{:?}", stack.status_reason);
    assert_eq!(stack.outputs[0].value, "db.internal");
    assert_eq!(
        engine.stack_resource("reader", "T").unwrap().properties["DisplayName"],
        "db.internal"
    );
    // Gone with its stack: a new reader cannot resolve it.
    let id = engine.find_stack("writer").unwrap().stack_id;
    engine.delete_stack(&id).unwrap();
    engine.wait_terminal(&id).await.unwrap();
    let err = engine.create_stack(input("late", reader)).unwrap_err();
    assert!(err.to_string().contains("Unable to fetch parameters [/app/db-host]"), "{err}");
    region.shutdown().await;
}
