//! Intrinsic and condition functions, one data-driven case each: a small template goes in, the
//! resolved resources and outputs (or the diagnostics) come out.

use std::collections::BTreeMap;

use cfn_template::{Mode, Options, analyze, public_parameters};
use expect_test::{Expect, expect};

use crate::support::Placeholders;

/// Resolves `template` as CreateStack would (parameters from a `# params: K=V` first line) and
/// prints every resource's properties and every output, or the diagnostics.
fn check(template: &str, expect: Expect) {
    let mut store = public_parameters();
    store.insert("/app/db-host".into(), "db.internal".into());
    let mut options = Options::validate(&store);
    options.mode = Mode::Resolve;
    options.pseudo.stack_name = Some("demo".into());
    options.pseudo.stack_id =
        Some("arn:aws:cloudformation:us-east-1:000000000000:stack/demo/1".into());
    if let Some(params) = template.lines().next().and_then(|l| l.strip_prefix("# params:")) {
        for pair in params.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap();
            options.parameters.insert(k.into(), v.into());
        }
    }
    let analysis = analyze(template, &options);
    let mut out = String::new();
    for d in &analysis.diagnostics {
        out.push_str(&format!("{}:{}: {}\n", d.span.start.line, d.span.start.col, d.message));
    }
    if let Some(stack) = &analysis.stack {
        let resolver = Placeholders { template: &stack.template };
        for name in stack.template.resources.keys() {
            match stack.present(name) {
                Some(false) => out.push_str(&format!("{name}: (condition false)\n")),
                _ => match stack.resolve_properties(name, &resolver, &store) {
                    Ok(Some(v)) => out.push_str(&format!("{name}: {}\n", v.to_json())),
                    Ok(None) => out.push_str(&format!("{name}: (no properties)\n")),
                    Err(_) => {}
                },
            }
        }
        let (outputs, _) = stack.resolve_outputs(&resolver, &store);
        for o in outputs {
            out.push_str(&format!("output {}: {}\n", o.name, o.value.to_json()));
        }
    }
    expect.assert_eq(&out);
}

#[test]
fn ref_parameters_pseudo_parameters_and_resources() {
    check(
        r##"# params: Size=3 Zones=us-east-1a,us-east-1b Subnets=subnet-1,subnet-2
Parameters:
  Size: {Type: Number}
  Zones: {Type: CommaDelimitedList}
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>"}
  Name: {Type: String, Default: web}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Size: {Value: !Ref Size}
  Zones: {Value: !Join [";", !Ref Zones]}
  Subnets: {Value: !Select [1, !Ref Subnets]}
  Name: {Value: !Ref Name}
  Region: {Value: !Ref "AWS::Region"}
  Account: {Value: !Ref AWS::AccountId}
  Stack: {Value: !Ref AWS::StackName}
  Partition: {Value: !Sub "${AWS::Partition}.${AWS::URLSuffix}"}
  Topic: {Value: !Ref Topic}
"##,
        expect![[r##"
            Topic: (no properties)
            output Size: "3"
            output Zones: "us-east-1a;us-east-1b"
            output Subnets: "subnet-2"
            output Name: "web"
            output Region: "us-east-1"
            output Account: "000000000000"
            output Stack: "demo"
            output Partition: "aws.amazonaws.com"
            output Topic: "id-of-Topic"
        "##]],
    );
}

#[test]
fn get_att_both_forms() {
    check(
        r##"
Resources:
  Topic: {Type: AWS::SNS::Topic}
  Lb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {Subnets: [subnet-1, subnet-2]}
Outputs:
  Short: {Value: !GetAtt Topic.TopicName}
  Long: {Value: {"Fn::GetAtt": [Lb, DNSName]}}
  List: {Value: !Select [0, !GetAtt Lb.SecurityGroups]}
"##,
        expect![[r##"
            Topic: (no properties)
            Lb: {"Subnets":["subnet-1","subnet-2"]}
            output Short: "Topic-TopicName-0"
            output Long: "Lb-DNSName-0"
            output List: "Lb-SecurityGroups-0"
        "##]],
    );
}

#[test]
fn sub_both_forms_with_literals() {
    check(
        r##"# params: Env=prod
Parameters:
  Env: {Type: String}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Plain: {Value: !Sub "${Env}-${AWS::Region}-${Topic}-${Topic.TopicName}"}
  Literal: {Value: !Sub "${!Literal} and ${Env} and ${!Env}"}
  Vars: {Value: !Sub ["${Env}/${Name}/${AWS::Region}", {Name: !Join ["-", [a, b]], Env: shadowed}]}
  NotAVariable: {Value: !Sub "${Region}"}
  Script:
    Value: !Sub |
      #!/bin/bash
      echo "${Env}" > /tmp/env
"##,
        expect![[r##"
            10:25: Template format error: Unresolved resource dependencies [Region] in the Outputs block of the template
            Topic: (no properties)
            output Plain: "prod-us-east-1-id-of-Topic-Topic-TopicName-0"
            output Literal: "${Literal} and prod and ${Env}"
            output Vars: "shadowed/a-b/us-east-1"
            output Script: "#!/bin/bash\necho \"prod\" > /tmp/env\n"
        "##]],
    );
}

#[test]
fn join_select_split() {
    check(
        r##"
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Join: {Value: !Join ["", ["a", 1, true, !Ref "AWS::Region"]]}
  JoinEmpty: {Value: !Join [",", []]}
  SelectString: {Value: !Select ["1", [a, b, c]]}
  Split: {Value: !Select [2, !Split [",", "x,y,z"]]}
  SplitJoin: {Value: !Join ["|", !Split ["/", "a/b//c"]]}
"##,
        expect![[r##"
            Topic: (no properties)
            output Join: "a1trueus-east-1"
            output JoinEmpty: ""
            output SelectString: "b"
            output Split: "z"
            output SplitJoin: "a|b||c"
        "##]],
    );
}

#[test]
fn select_out_of_range() {
    check(
        r##"
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Bad: {Value: !Select [5, [a, b]]}
  Negative: {Value: !Select [-1, [a, b]]}
"##,
        expect![[r##"
            5:16: Template error: Fn::Select cannot select nonexistent value at index 5
            6:21: Template error: Fn::Select cannot select nonexistent value at index -1
            Topic: (no properties)
        "##]],
    );
}

#[test]
fn conditions_and_if() {
    check(
        r##"# params: Env=prod Size=large
Parameters:
  Env: {Type: String}
  Size: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsLarge: !Equals [large, !Ref Size]
  ProdAndLarge: !And [!Condition IsProd, !Condition IsLarge]
  DevOrSmall: !Or [!Not [!Condition IsProd], !Equals [!Ref Size, small]]
  NumbersEqualStrings: !Equals [1, "1"]
Resources:
  Big:
    Type: AWS::SNS::Topic
    Condition: ProdAndLarge
  Small:
    Type: AWS::SNS::Topic
    Condition: DevOrSmall
Outputs:
  Choice: {Value: !If [IsProd, production, development]}
  Nested: {Value: !If [DevOrSmall, a, !If [NumbersEqualStrings, b, c]]}
  OnlyIfSmall:
    Condition: DevOrSmall
    Value: !Ref Small
"##,
        expect![[r##"
            Big: (no properties)
            Small: (condition false)
            output Choice: "production"
            output Nested: "b"
        "##]],
    );
}

#[test]
fn no_value_removes_properties_and_list_items() {
    check(
        r##"# params: Env=dev
Parameters:
  Env: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Group:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      MinSize: "1"
      MaxSize: !If [IsProd, "10", "2"]
      DesiredCapacity: !If [IsProd, "4", !Ref AWS::NoValue]
      AvailabilityZones:
        - us-east-1a
        - !If [IsProd, us-east-1b, !Ref AWS::NoValue]
        - !If [IsProd, !Ref AWS::NoValue, us-east-1c]
      Tags:
        - !If
          - IsProd
          - {Key: tier, Value: prod, PropagateAtLaunch: true}
          - !Ref AWS::NoValue
"##,
        expect![[r##"
            Group: {"MinSize":"1","MaxSize":"2","AvailabilityZones":["us-east-1a","us-east-1c"],"Tags":[]}
        "##]],
    );
}

#[test]
fn find_in_map() {
    check(
        r##"# params: Env=prod
Parameters:
  Env: {Type: String}
Mappings:
  RegionMap:
    us-east-1: {AMI: ami-0123456789abcdef0, Zones: [a, b]}
  EnvMap:
    prod: {Size: 4}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Ami: {Value: !FindInMap [RegionMap, !Ref "AWS::Region", AMI]}
  Zones: {Value: !Join [",", !FindInMap [RegionMap, us-east-1, Zones]]}
  Size: {Value: !FindInMap [EnvMap, !Ref Env, Size]}
  Missing: {Value: !FindInMap [EnvMap, dev, Size]}
  NoMap: {Value: !FindInMap [Nope, a, b]}
"##,
        expect![[r#"
            15:20: Template error: Unable to get mapping for EnvMap::dev::Size
            16:30: Template error: Mapping named 'Nope' is not present in the 'Mappings' section of template.
            Topic: (no properties)
            output Ami: "ami-0123456789abcdef0"
            output Zones: "a,b"
            output Size: 4
        "#]],
    );
}

#[test]
fn get_azs_base64_cidr_import_value() {
    check(
        r##"
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Azs: {Value: !Join [",", !GetAZs ""]}
  OtherRegion: {Value: !Select [0, !GetAZs eu-west-1]}
  CurrentRegion: {Value: !Select [2, !GetAZs {Ref: "AWS::Region"}]}
  Base64: {Value: !Base64 "#!/bin/bash\necho hi"}
  Cidr: {Value: !Join [" ", !Cidr ["10.0.0.0/16", 3, 8]]}
  Cidr6: {Value: !Select [1, !Cidr ["2600:1f18::/56", 2, 64]]}
  Import: {Value: !ImportValue {"Fn::Sub": "${AWS::Region}-vpc"}}
"##,
        expect![[r##"
            Topic: (no properties)
            output Azs: "us-east-1a,us-east-1b,us-east-1c"
            output OtherRegion: "eu-west-1a"
            output CurrentRegion: "us-east-1c"
            output Base64: "IyEvYmluL2Jhc2gKZWNobyBoaQ=="
            output Cidr: "10.0.0.0/24 10.0.1.0/24 10.0.2.0/24"
            output Cidr6: "2600:1f18:0:1::/64"
            output Import: "export-us-east-1-vpc"
        "##]],
    );
}

#[test]
fn dynamic_references_and_ssm_parameter_types() {
    check(
        r##"
Parameters:
  Ami:
    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>
    Default: /aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2
Resources:
  Instance:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !Ref Ami
      UserData: !Base64 "DB={{resolve:ssm:/app/db-host}}"
      Tags: [{Key: ami, Value: "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64}}"}]
"##,
        expect![[r#"
            Instance: {"ImageId":"ami-55879613dc7fb03ae","UserData":"REI9ZGIuaW50ZXJuYWw=","Tags":[{"Key":"ami","Value":"ami-0ded214023a6632bd"}]}
        "#]],
    );
}

#[test]
fn language_extensions() {
    check(
        r##"
Transform: AWS::LanguageExtensions
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Length: {Value: !Length [a, b, c]}
  Json: {Value: !ToJsonString {a: 1, b: [x]}}
  Default: {Value: !FindInMap [M, x, y, {DefaultValue: fallback}]}
Mappings:
  M: {z: {y: 1}}
"##,
        expect![[r#"
            Topic: (no properties)
            output Length: 3
            output Json: "{\"a\":1,\"b\":[\"x\"]}"
            output Default: "fallback"
        "#]],
    );
    check(
        r##"
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Length: {Value: !Length [a, b, c]}
"##,
        expect![[r#"
            5:19: Template format error: Fn::Length needs the AWS::LanguageExtensions transform
            Topic: (no properties)
        "#]],
    );
}

#[test]
fn transforms_cumulo_does_not_run() {
    check(
        r##"
Transform: [AWS::Serverless-2016-10-31, MyMacro]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {Runtime: python3.12}
"##,
        expect![[r##"
            2:41: Transform MyMacro is not supported by Cumulo
            5:11: Transform AWS::Serverless-2016-10-31 is not supported by Cumulo (resource Fn of type AWS::Serverless::Function needs it)
            Fn: {"Runtime":"python3.12"}
        "##]],
    );
}

#[test]
fn rules_assertions() {
    check(
        r##"# params: Env=prod Size=t3.micro
Parameters:
  Env: {Type: String}
  Size: {Type: String}
Rules:
  ProdNeedsLarge:
    RuleCondition: !Equals [!Ref Env, prod]
    Assertions:
      - Assert: !Contains [[m5.large, m5.xlarge], !Ref Size]
        AssertDescription: Production needs an m5 instance
      - Assert: !EachMemberIn [[!Ref Size], [t3.micro, m5.large]]
Resources:
  Topic: {Type: AWS::SNS::Topic}
"##,
        expect![[r##"
            9:17: Template error: Production needs an m5 instance
            Topic: (no properties)
        "##]],
    );
}

#[test]
fn fn_sub_variable_that_is_a_list_is_an_error() {
    check(
        r##"# params: Zones=a,b
Parameters:
  Zones: {Type: CommaDelimitedList}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Bad: {Value: !Sub "${Zones}"}
"##,
        expect![[r##"
            7:16: Template error: variable Zones in Fn::Sub expression does not resolve to a string
            Topic: (no properties)
        "##]],
    );
}

/// The pieces a resource depends on come out in creation waves.
#[test]
fn creation_waves() {
    let template = r#"
Resources:
  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}
  SubnetA: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/24}}
  SubnetB: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24}}
  Topic: {Type: AWS::SNS::Topic}
  Lb:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {Subnets: [!Ref SubnetA, !Ref SubnetB]}
  Queue: {Type: AWS::SQS::Queue, DependsOn: Lb}
"#;
    let store = public_parameters();
    let analysis = analyze(template, &Options::validate(&store));
    assert!(!analysis.has_errors());
    let waves = analysis.stack.unwrap().graph.waves;
    let shown: BTreeMap<usize, Vec<String>> = waves.into_iter().enumerate().collect();
    expect![[r##"
        {
            0: [
                "Vpc",
                "Topic",
            ],
            1: [
                "SubnetA",
                "SubnetB",
            ],
            2: [
                "Lb",
            ],
            3: [
                "Queue",
            ],
        }
    "##]]
    .assert_debug_eq(&shown);
}
