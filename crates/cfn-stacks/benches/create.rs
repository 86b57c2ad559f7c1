//! A 75-resource template (a VPC with subnets, route tables, security groups, topics, queues
//! and log groups, with dependencies between them) to CREATE_COMPLETE with modelled resources,
//! on a SQLite store in a temporary data directory; then deleted.
//!
//!     cargo bench -p cfn-stacks --bench create

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cfn_stacks::model::StackStatus;
use cfn_stacks::{Engine, EngineConfig, Providers, StackInput};
use clock::Clock;
use store::Store;

fn template() -> String {
    let mut t = String::from(
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties: {CidrBlock: 10.0.0.0/16}\n",
    );
    // 1 VPC + 12 subnets + 12 route tables + 12 associations + 12 security groups + 10 topics
    // + 8 queues + 8 log groups = 75.
    for i in 0..12 {
        let _ = write!(
            t,
            "  Subnet{i}:\n    Type: AWS::EC2::Subnet\n    Properties: {{VpcId: !Ref Vpc, CidrBlock: !Select [{i}, !Cidr [!GetAtt Vpc.CidrBlock, 12, 8]], AvailabilityZone: !Select [{}, !GetAZs '']}}\n\
               \x20 Routes{i}:\n    Type: AWS::EC2::RouteTable\n    Properties: {{VpcId: !Ref Vpc}}\n\
               \x20 Assoc{i}:\n    Type: AWS::EC2::SubnetRouteTableAssociation\n    Properties: {{SubnetId: !Ref Subnet{i}, RouteTableId: !Ref Routes{i}}}\n\
               \x20 Group{i}:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {{GroupDescription: !Sub 'group {i} of ${{AWS::StackName}}', VpcId: !Ref Vpc}}\n",
            i % 3
        );
    }
    for i in 0..10 {
        let _ = write!(
            t,
            "  Topic{i}:\n    Type: AWS::SNS::Topic\n    Properties: {{DisplayName: !GetAtt Group{i}.GroupId}}\n"
        );
    }
    for i in 0..8 {
        let _ = write!(
            t,
            "  Queue{i}:\n    Type: AWS::SQS::Queue\n    DependsOn: Topic{i}\n  Logs{i}:\n    Type: AWS::Logs::LogGroup\n    Properties: {{LogGroupName: !Sub '/app/${{AWS::StackName}}/{i}'}}\n"
        );
    }
    t
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let body = template();
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(
            Arc::new(Store::open(dir.path()).unwrap()),
            Clock::real(),
            EngineConfig::default(),
            Providers::default(),
            Arc::new(cfn_template::public_parameters()),
        );
        let mut creates = Vec::new();
        let mut deletes = Vec::new();
        for round in 0..12 {
            let start = Instant::now();
            let id = engine
                .create_stack(StackInput {
                    stack_name: format!("bench-{round}"),
                    template_body: Some(body.clone()),
                    ..StackInput::default()
                })
                .unwrap();
            let stack = engine.wait_terminal(&id).await.unwrap();
            let created = start.elapsed();
            assert_eq!(stack.status, StackStatus::CreateComplete, "{:?}", stack.status_reason);
            assert_eq!(engine.stack_resources(&id).unwrap().len(), 75);
            let start = Instant::now();
            engine.delete_stack(&id).unwrap();
            engine.wait_terminal(&id).await.unwrap();
            let deleted = start.elapsed();
            if round >= 2 {
                creates.push(created);
                deletes.push(deleted);
            }
        }
        let report = |name: &str, mut v: Vec<Duration>| {
            v.sort();
            let median = v[v.len() / 2];
            println!(
                "{name:<28} median {:>7.1} ms   min {:>7.1} ms   max {:>7.1} ms   ({} runs)",
                ms(median),
                ms(v[0]),
                ms(v[v.len() - 1]),
                v.len()
            );
        };
        println!("75 modelled resources, SQLite store (WAL) in a temporary directory:");
        report("CreateStack → COMPLETE", creates);
        report("DeleteStack → COMPLETE", deletes);
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
