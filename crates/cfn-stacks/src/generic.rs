//! The generic provider: any resource type, created from its schema only ("modelled").
//!
//! The stack completes and `Ref`/`Fn::GetAtt` give well-formed values in AWS's formats: the
//! physical id has the shape AWS gives that type (`vpc-…`, an ARN, a generated name), and every
//! read-only attribute of the schema gets a value of its declared shape.

use async_trait::async_trait;
use aws_ids::{Account, ec2_id, hex, physical_name, physical_name_lower, upper_alnum, uuid};
use indexmap::IndexMap;
use serde_json::{Value as Json, json};

use crate::model::ResourceRecord;
use crate::provider::{Provided, ProviderError, ResourceProvider, ResourceRequest};

pub struct Generic;

#[async_trait]
impl ResourceProvider for Generic {
    async fn create(&self, request: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        Ok(model(request, None))
    }

    async fn update(
        &self,
        request: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        Ok(model(request, Some(current)))
    }

    async fn delete(
        &self,
        _: &ResourceRequest<'_>,
        _: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// The EC2-style id prefix of a type, where it has one.
fn ec2_prefix(type_name: &str) -> Option<&'static str> {
    Some(match type_name {
        "AWS::EC2::VPC" => "vpc",
        "AWS::EC2::Subnet" => "subnet",
        "AWS::EC2::SecurityGroup" => "sg",
        "AWS::EC2::InternetGateway" => "igw",
        "AWS::EC2::EgressOnlyInternetGateway" => "eigw",
        "AWS::EC2::RouteTable" => "rtb",
        "AWS::EC2::NetworkAcl" => "acl",
        "AWS::EC2::NatGateway" => "nat",
        "AWS::EC2::Instance" => "i",
        "AWS::EC2::LaunchTemplate" => "lt",
        "AWS::EC2::NetworkInterface" => "eni",
        "AWS::EC2::VPCEndpoint" => "vpce",
        "AWS::EC2::FlowLog" => "fl",
        "AWS::EC2::DHCPOptions" => "dopt",
        "AWS::EC2::VPCPeeringConnection" => "pcx",
        "AWS::EC2::VPNGateway" => "vgw",
        "AWS::EC2::CustomerGateway" => "cgw",
        "AWS::EC2::TransitGateway" => "tgw",
        "AWS::EC2::Volume" => "vol",
        "AWS::EC2::SubnetRouteTableAssociation" => "rtbassoc",
        "AWS::EC2::SubnetNetworkAclAssociation" => "aclassoc",
        "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => "sgr",
        "AWS::EC2::EIPAssociation" => "eipassoc",
        "AWS::EC2::VPCCidrBlock" => "vpc-cidr-assoc",
        "AWS::EC2::KeyPair" => "key",
        "AWS::EFS::FileSystem" => "fs",
        "AWS::EFS::MountTarget" => "fsmt",
        "AWS::EFS::AccessPoint" => "fsap",
        "AWS::SSM::MaintenanceWindow" => "mw",
        _ => return None,
    })
}

fn prop<'a>(props: &'a Json, name: &str) -> Option<&'a str> {
    props.get(name).and_then(Json::as_str).filter(|s| !s.is_empty())
}

/// The generated or given name of a resource whose name property is `name_prop`.
fn name_or_generated(req: &ResourceRequest<'_>, name_prop: &str, max: usize) -> String {
    prop(req.properties, name_prop)
        .map(str::to_string)
        .unwrap_or_else(|| physical_name(req.stack_name, req.logical_id, max))
}

/// Modelled physical id and attributes. On update the physical id is kept.
pub fn model(req: &ResourceRequest<'_>, current: Option<&ResourceRecord>) -> Provided {
    let acct = req.account;
    let ty = req.type_name;
    let props = req.properties;
    let kept = current.and_then(|c| c.physical_id.clone());
    let physical_id = kept.clone().unwrap_or_else(|| physical_id(req));
    let mut attrs: IndexMap<String, Json> = IndexMap::new();
    let region = &acct.region;
    let s = |v: &str| Json::String(v.to_string());
    match ty {
        "AWS::EC2::VPC" => {
            attrs.insert("VpcId".into(), s(&physical_id));
            attrs.insert("CidrBlock".into(), s(prop(props, "CidrBlock").unwrap_or("10.0.0.0/16")));
            attrs.insert("CidrBlockAssociations".into(), json!([ec2_id("vpc-cidr-assoc")]));
            attrs.insert("DefaultNetworkAcl".into(), s(&ec2_id("acl")));
            attrs.insert("DefaultSecurityGroup".into(), s(&ec2_id("sg")));
            attrs.insert(
                "Ipv6CidrBlocks".into(),
                json!([format!("2600:1f18:{}:{}00::/56", hex(4), hex(2))]),
            );
        }
        "AWS::EC2::Subnet" => {
            attrs.insert("SubnetId".into(), s(&physical_id));
            attrs.insert(
                "AvailabilityZone".into(),
                s(prop(props, "AvailabilityZone").unwrap_or(&format!("{region}a"))),
            );
            attrs.insert("AvailabilityZoneId".into(), s(&format!("{}-az1", short_region(region))));
            attrs.insert("CidrBlock".into(), s(prop(props, "CidrBlock").unwrap_or("10.0.0.0/24")));
            attrs.insert("VpcId".into(), s(prop(props, "VpcId").unwrap_or_default()));
            attrs.insert("NetworkAclAssociationId".into(), s(&ec2_id("aclassoc")));
            attrs.insert("Ipv6CidrBlocks".into(), json!([]));
        }
        "AWS::EC2::SecurityGroup" => {
            attrs.insert("GroupId".into(), s(&physical_id));
            attrs.insert("Id".into(), s(&physical_id));
            attrs.insert("VpcId".into(), s(prop(props, "VpcId").unwrap_or_default()));
        }
        "AWS::EC2::LaunchTemplate" => {
            let version = current
                .and_then(|c| c.attributes.get("LatestVersionNumber"))
                .and_then(Json::as_str)
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(1, |v| v + 1);
            attrs.insert("LaunchTemplateId".into(), s(&physical_id));
            attrs.insert("LatestVersionNumber".into(), s(&version.to_string()));
            let default = current
                .and_then(|c| c.attributes.get("DefaultVersionNumber"))
                .cloned()
                .unwrap_or(s("1"));
            attrs.insert("DefaultVersionNumber".into(), default);
        }
        "AWS::EC2::EIP" => {
            attrs.insert("PublicIp".into(), s(&physical_id));
            attrs.insert("AllocationId".into(), s(&ec2_id("eipalloc")));
        }
        "AWS::EC2::Instance" => {
            let ip = format!("10.0.{}.{}", fastrand::u8(0..=255), fastrand::u8(4..=250));
            attrs.insert("InstanceId".into(), s(&physical_id));
            attrs.insert(
                "AvailabilityZone".into(),
                s(prop(props, "AvailabilityZone").unwrap_or(&format!("{region}a"))),
            );
            attrs.insert(
                "PrivateDnsName".into(),
                s(&format!("ip-{}.ec2.internal", ip.replace('.', "-"))),
            );
            attrs.insert("PrivateIp".into(), s(&ip));
            let public = format!("198.51.100.{}", fastrand::u8(1..=254));
            attrs.insert(
                "PublicDnsName".into(),
                s(&format!("ec2-{}.compute-1.amazonaws.com", public.replace('.', "-"))),
            );
            attrs.insert("PublicIp".into(), s(&public));
        }
        "AWS::EC2::NetworkInterface" => {
            attrs.insert("Id".into(), s(&physical_id));
            attrs.insert(
                "PrimaryPrivateIpAddress".into(),
                s(&format!("10.0.0.{}", fastrand::u8(4..=250))),
            );
            attrs.insert("SecondaryPrivateIpAddresses".into(), json!([]));
        }
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            let (name, id) = arn_name_and_id(&physical_id, "loadbalancer/app/");
            attrs.insert("LoadBalancerArn".into(), s(&physical_id));
            attrs.insert("LoadBalancerName".into(), s(&name));
            attrs.insert("LoadBalancerFullName".into(), s(&format!("app/{name}/{id}")));
            let internal = prop(props, "Scheme") == Some("internal");
            let dns = format!(
                "{}{name}-{}.{region}.elb.amazonaws.com",
                if internal { "internal-" } else { "" },
                aws_ids::digits(10)
            );
            attrs.insert("DNSName".into(), s(&dns));
            attrs.insert("CanonicalHostedZoneID".into(), s(alb_hosted_zone(region)));
            let groups =
                props.get("SecurityGroups").cloned().unwrap_or_else(|| json!([ec2_id("sg")]));
            attrs.insert("SecurityGroups".into(), groups);
        }
        "AWS::ElasticLoadBalancingV2::TargetGroup" => {
            let (name, id) = arn_name_and_id(&physical_id, "targetgroup/");
            attrs.insert("TargetGroupArn".into(), s(&physical_id));
            attrs.insert("TargetGroupName".into(), s(&name));
            attrs.insert("TargetGroupFullName".into(), s(&format!("targetgroup/{name}/{id}")));
            attrs.insert("LoadBalancerArns".into(), json!([]));
        }
        "AWS::ElasticLoadBalancingV2::Listener" => {
            attrs.insert("ListenerArn".into(), s(&physical_id));
        }
        "AWS::ElasticLoadBalancingV2::ListenerRule" => {
            attrs.insert("RuleArn".into(), s(&physical_id));
            attrs.insert("IsDefault".into(), json!(false));
        }
        "AWS::ElasticLoadBalancing::LoadBalancer" => {
            let dns = format!("{physical_id}-{}.{region}.elb.amazonaws.com", aws_ids::digits(10));
            attrs.insert("DNSName".into(), s(&dns));
            attrs.insert("CanonicalHostedZoneName".into(), s(&dns));
            attrs.insert("CanonicalHostedZoneNameID".into(), s(alb_hosted_zone(region)));
            attrs.insert("SourceSecurityGroup.GroupName".into(), s("amazon-elb-sg"));
            attrs.insert("SourceSecurityGroup.OwnerAlias".into(), s("amazon-elb"));
        }
        "AWS::IAM::Role" => {
            let path = prop(props, "Path").unwrap_or("/");
            attrs.insert(
                "Arn".into(),
                s(&acct.global_arn("iam", &format!("role{path}{physical_id}"))),
            );
            attrs.insert("RoleId".into(), s(&format!("AROA{}", upper_alnum(17))));
        }
        "AWS::IAM::InstanceProfile" => {
            let path = prop(props, "Path").unwrap_or("/");
            attrs.insert(
                "Arn".into(),
                s(&acct.global_arn("iam", &format!("instance-profile{path}{physical_id}"))),
            );
        }
        "AWS::IAM::User" => {
            let path = prop(props, "Path").unwrap_or("/");
            attrs.insert(
                "Arn".into(),
                s(&acct.global_arn("iam", &format!("user{path}{physical_id}"))),
            );
        }
        "AWS::IAM::AccessKey" => {
            attrs.insert("SecretAccessKey".into(), s(&random_secret(40)));
        }
        "AWS::SNS::Topic" => {
            attrs.insert("TopicArn".into(), s(&physical_id));
            attrs.insert("TopicName".into(), s(physical_id.rsplit(':').next().unwrap_or_default()));
        }
        "AWS::Logs::LogGroup" => {
            attrs.insert("Arn".into(), s(&acct.arn("logs", &format!("log-group:{physical_id}:*"))));
        }
        "AWS::CloudWatch::Alarm" => {
            attrs.insert("Arn".into(), s(&acct.arn("cloudwatch", &format!("alarm:{physical_id}"))));
        }
        "AWS::AutoScaling::ScalingPolicy" => {
            attrs.insert("Arn".into(), s(&physical_id));
            attrs
                .insert("PolicyName".into(), s(physical_id.rsplit('/').next().unwrap_or_default()));
        }
        "AWS::S3::Bucket" => {
            attrs.insert("Arn".into(), s(&format!("arn:aws:s3:::{physical_id}")));
            attrs.insert("DomainName".into(), s(&format!("{physical_id}.s3.amazonaws.com")));
            attrs.insert(
                "RegionalDomainName".into(),
                s(&format!("{physical_id}.s3.{region}.amazonaws.com")),
            );
            attrs.insert(
                "DualStackDomainName".into(),
                s(&format!("{physical_id}.s3.dualstack.{region}.amazonaws.com")),
            );
            attrs.insert(
                "WebsiteURL".into(),
                s(&format!("http://{physical_id}.s3-website-{region}.amazonaws.com")),
            );
        }
        "AWS::RDS::DBInstance" | "AWS::RDS::DBCluster" => {
            let engine = prop(props, "Engine").unwrap_or("mysql");
            let port = if engine.contains("postgres") { "5432" } else { "3306" };
            let host = format!("{physical_id}.{}.{region}.rds.amazonaws.com", hex(12));
            attrs.insert("Endpoint.Address".into(), s(&host));
            attrs.insert("Endpoint.Port".into(), s(port));
            attrs.insert("ReadEndpoint.Address".into(), s(&host.replacen('.', ".cluster-ro-", 1)));
        }
        "AWS::EFS::FileSystem" => {
            attrs.insert("FileSystemId".into(), s(&physical_id));
            attrs.insert(
                "Arn".into(),
                s(&acct.arn("elasticfilesystem", &format!("file-system/{physical_id}"))),
            );
        }
        "AWS::CloudFront::Distribution" => {
            attrs.insert("Id".into(), s(&physical_id));
            attrs.insert("DomainName".into(), s(&format!("d{}.cloudfront.net", hex(13))));
        }
        "AWS::Lambda::Function" => {
            attrs.insert("Arn".into(), s(&acct.arn("lambda", &format!("function:{physical_id}"))));
        }
        "AWS::Lambda::Version" => {
            attrs.insert("Version".into(), s("1"));
            attrs.insert("FunctionArn".into(), s(&physical_id));
        }
        "AWS::KMS::Key" => {
            attrs.insert("KeyId".into(), s(&physical_id));
            attrs.insert("Arn".into(), s(&acct.arn("kms", &format!("key/{physical_id}"))));
        }
        "AWS::ElastiCache::CacheCluster" => {
            let host = format!(
                "{physical_id}.{}.cfg.{}.cache.amazonaws.com",
                hex(6),
                short_region(region)
            );
            attrs.insert("ConfigurationEndpoint.Address".into(), s(&host));
            attrs.insert("ConfigurationEndpoint.Port".into(), s("11211"));
            attrs.insert("RedisEndpoint.Address".into(), s(&host));
            attrs.insert("RedisEndpoint.Port".into(), s("6379"));
        }
        "AWS::CloudFormation::WaitCondition" => {
            attrs.insert("Data".into(), json!("{}"));
        }
        _ => {}
    }
    fill_from_schema(req, &physical_id, &mut attrs);
    if let Some(c) = current {
        // Attributes not derived from properties stay what they were.
        for (k, v) in &c.attributes {
            if !attrs.contains_key(k) {
                attrs.insert(k.clone(), v.clone());
            }
        }
    }
    Provided { physical_id, attributes: attrs, modelled: true }
}

/// Every read-only attribute of the schema not set above gets a value of its declared shape.
fn fill_from_schema(
    req: &ResourceRequest<'_>,
    physical_id: &str,
    attrs: &mut IndexMap<String, Json>,
) {
    let Some(schema) = cfn_schema::get(req.type_name) else { return };
    let primary: Vec<&str> = schema.primary_identifier.iter().map(String::as_str).collect();
    for attr in &schema.attributes {
        if attrs.contains_key(attr) {
            continue;
        }
        let top = attr.split('.').next().unwrap_or_default();
        let sub = attr.rsplit('.').next().unwrap_or_default();
        let declared = property_schema(&schema, attr);
        let ty = declared.and_then(|d| d.get("type")).and_then(Json::as_str).unwrap_or("string");
        let value = match ty {
            "object" => continue, // nested attributes are listed on their own (`Endpoint.Address`)
            "array" => json!([generated_string(req, physical_id, sub, false)]),
            "integer" | "number" => json!(if sub.ends_with("Port") { 443 } else { 1 }),
            "boolean" => json!(false),
            _ => Json::String(generated_string(
                req,
                physical_id,
                sub,
                primary.contains(&top) && attr == top,
            )),
        };
        attrs.insert(attr.clone(), value);
    }
}

fn property_schema<'a>(schema: &'a cfn_schema::ResourceSchema, path: &str) -> Option<&'a Json> {
    let mut current = schema.schema.get("properties")?;
    let mut found = None;
    for part in path.split('.') {
        let sub = schema.resolve(current.get(part)?);
        found = Some(sub);
        current = sub.get("properties").unwrap_or(&Json::Null);
    }
    found
}

fn generated_string(
    req: &ResourceRequest<'_>,
    physical_id: &str,
    name: &str,
    is_primary: bool,
) -> String {
    let acct = req.account;
    if is_primary {
        return physical_id.to_string();
    }
    let service = req.type_name.split("::").nth(1).unwrap_or("service").to_lowercase();
    let kind = req.type_name.rsplit("::").next().unwrap_or("resource").to_lowercase();
    if name.ends_with("Arn") || name.ends_with("ARN") {
        return acct.arn(&service, &format!("{kind}/{physical_id}"));
    }
    if name.ends_with("Address")
        || name.ends_with("DnsName")
        || name.ends_with("DomainName")
        || name.ends_with("Endpoint")
    {
        return format!(
            "{}.{service}.{}.amazonaws.com",
            physical_id.rsplit([':', '/']).next().unwrap_or(physical_id).to_lowercase(),
            acct.region
        );
    }
    if name.ends_with("Port") {
        return "443".into();
    }
    if name.ends_with("Id") {
        return hex(17);
    }
    if name.ends_with("Name") {
        return physical_id.rsplit([':', '/']).next().unwrap_or(physical_id).to_string();
    }
    if name.ends_with("Time") || name.ends_with("Date") {
        return "2026-01-01T00:00:00.000Z".into();
    }
    format!("{physical_id}-{name}")
}

/// The physical id (what `Ref` returns) AWS would give a new resource of this type.
fn physical_id(req: &ResourceRequest<'_>) -> String {
    let acct: &Account = req.account;
    let props = req.properties;
    let ty = req.type_name;
    if let Some(prefix) = ec2_prefix(ty) {
        if ty == "AWS::EC2::KeyPair" {
            return name_or_generated(req, "KeyName", 255);
        }
        return ec2_id(prefix);
    }
    match ty {
        "AWS::EC2::EIP" => format!("198.51.100.{}", fastrand::u8(1..=254)),
        "AWS::EC2::VPCGatewayAttachment" => {
            format!("IGW|{}", prop(props, "VpcId").unwrap_or_default())
        }
        "AWS::EC2::Route" => format!(
            "{}|{}",
            prop(props, "RouteTableId").unwrap_or_default(),
            prop(props, "DestinationCidrBlock")
                .or(prop(props, "DestinationIpv6CidrBlock"))
                .unwrap_or_default()
        ),
        "AWS::EC2::NetworkAclEntry" => format!(
            "{}|{}|{}",
            prop(props, "NetworkAclId").unwrap_or_default(),
            props
                .get("RuleNumber")
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default(),
            props
                .get("Egress")
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| "false".into())
        ),
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            let name = name_or_generated(req, "Name", 32);
            acct.arn("elasticloadbalancing", &format!("loadbalancer/app/{name}/{}", hex(16)))
        }
        "AWS::ElasticLoadBalancingV2::TargetGroup" => {
            let name = name_or_generated(req, "Name", 32);
            acct.arn("elasticloadbalancing", &format!("targetgroup/{name}/{}", hex(16)))
        }
        "AWS::ElasticLoadBalancingV2::Listener" => {
            let lb = prop(props, "LoadBalancerArn").unwrap_or_default();
            let (name, id) = arn_name_and_id(lb, "loadbalancer/app/");
            acct.arn("elasticloadbalancing", &format!("listener/app/{name}/{id}/{}", hex(16)))
        }
        "AWS::ElasticLoadBalancingV2::ListenerRule" => {
            let listener = prop(props, "ListenerArn").unwrap_or_default();
            let tail = listener.split_once(":listener/").map(|(_, t)| t).unwrap_or("app/lb/0/0");
            acct.arn("elasticloadbalancing", &format!("listener-rule/{tail}/{}", hex(16)))
        }
        "AWS::ElasticLoadBalancingV2::ListenerCertificate" => {
            prop(props, "ListenerArn").unwrap_or_default().to_string()
        }
        "AWS::ElasticLoadBalancing::LoadBalancer" => name_or_generated(req, "LoadBalancerName", 32),
        "AWS::AutoScaling::AutoScalingGroup" => name_or_generated(req, "AutoScalingGroupName", 255),
        "AWS::AutoScaling::LaunchConfiguration" => {
            name_or_generated(req, "LaunchConfigurationName", 255)
        }
        "AWS::AutoScaling::ScalingPolicy" => {
            let group = prop(props, "AutoScalingGroupName").unwrap_or_default();
            let name = name_or_generated(req, "PolicyName", 255);
            acct.arn(
                "autoscaling",
                &format!("scalingPolicy:{}:autoScalingGroupName/{group}:policyName/{name}", uuid()),
            )
        }
        "AWS::AutoScaling::ScheduledAction" => name_or_generated(req, "ScheduledActionName", 255),
        "AWS::AutoScaling::LifecycleHook" => name_or_generated(req, "LifecycleHookName", 255),
        "AWS::IAM::Role" => name_or_generated(req, "RoleName", 64),
        "AWS::IAM::InstanceProfile" => name_or_generated(req, "InstanceProfileName", 128),
        "AWS::IAM::User" => name_or_generated(req, "UserName", 64),
        "AWS::IAM::Group" => name_or_generated(req, "GroupName", 128),
        "AWS::IAM::Policy" => {
            format!("{}-{}", physical_name(req.stack_name, req.logical_id, 50), upper_alnum(4))
        }
        "AWS::IAM::ManagedPolicy" => {
            let path = prop(props, "Path").unwrap_or("/");
            let name = name_or_generated(req, "ManagedPolicyName", 128);
            acct.global_arn("iam", &format!("policy{path}{name}"))
        }
        "AWS::IAM::AccessKey" => format!("AKIA{}", upper_alnum(16)),
        "AWS::SNS::Topic" => acct.arn("sns", &name_or_generated(req, "TopicName", 256)),
        "AWS::SNS::Subscription" => {
            format!("{}:{}", prop(props, "TopicArn").unwrap_or_default(), uuid())
        }
        "AWS::SQS::Queue" => {
            let name = name_or_generated(req, "QueueName", 80);
            format!("https://sqs.{}.amazonaws.com/{}/{name}", acct.region, acct.account_id)
        }
        "AWS::Logs::LogGroup" => name_or_generated(req, "LogGroupName", 512),
        "AWS::Logs::LogStream" => name_or_generated(req, "LogStreamName", 512),
        "AWS::Logs::MetricFilter" => name_or_generated(req, "FilterName", 512),
        "AWS::CloudWatch::Alarm" => name_or_generated(req, "AlarmName", 255),
        "AWS::CloudWatch::Dashboard" => name_or_generated(req, "DashboardName", 255),
        "AWS::S3::Bucket" => prop(props, "BucketName")
            .map(str::to_string)
            .unwrap_or_else(|| physical_name_lower(req.stack_name, req.logical_id, 63)),
        "AWS::S3::BucketPolicy" => prop(props, "Bucket").unwrap_or_default().to_string(),
        "AWS::Lambda::Function" => name_or_generated(req, "FunctionName", 64),
        "AWS::Lambda::Version" => format!("{}:1", prop(props, "FunctionName").unwrap_or_default()),
        "AWS::RDS::DBInstance" => prop(props, "DBInstanceIdentifier")
            .map(str::to_lowercase)
            .unwrap_or_else(|| physical_name_lower(req.stack_name, req.logical_id, 63)),
        "AWS::RDS::DBCluster" => prop(props, "DBClusterIdentifier")
            .map(str::to_lowercase)
            .unwrap_or_else(|| physical_name_lower(req.stack_name, req.logical_id, 63)),
        "AWS::RDS::DBSubnetGroup" => prop(props, "DBSubnetGroupName")
            .map(str::to_lowercase)
            .unwrap_or_else(|| physical_name_lower(req.stack_name, req.logical_id, 255)),
        "AWS::ElastiCache::CacheCluster" => prop(props, "ClusterName")
            .map(str::to_lowercase)
            .unwrap_or_else(|| physical_name_lower(req.stack_name, req.logical_id, 40)),
        "AWS::KMS::Key" => uuid(),
        "AWS::KMS::Alias" => prop(props, "AliasName").unwrap_or_default().to_string(),
        "AWS::Route53::RecordSet" => prop(props, "Name").unwrap_or_default().to_string(),
        "AWS::Route53::HostedZone" => format!("Z{}", upper_alnum(13)),
        "AWS::CloudFront::Distribution" => format!("E{}", upper_alnum(13)),
        "AWS::CloudFormation::WaitConditionHandle" => format!(
            "https://cloudformation-waitcondition-{}.s3.amazonaws.com/{}/{}/{}",
            acct.region,
            urlencode(req.stack_id),
            req.logical_id,
            uuid()
        ),
        "AWS::CloudFormation::WaitCondition" => {
            acct.arn("cloudformation", &format!("waitcondition/{}", req.logical_id))
        }
        "AWS::SSM::Parameter" => name_or_generated(req, "Name", 2048),
        _ => fallback_id(req),
    }
}

/// By the schema's primary identifier: an ARN, an id or a name.
fn fallback_id(req: &ResourceRequest<'_>) -> String {
    let schema = cfn_schema::get(req.type_name);
    let primary =
        schema.as_ref().and_then(|s| s.primary_identifier.first().cloned()).unwrap_or_default();
    let service = req.type_name.split("::").nth(1).unwrap_or("service").to_lowercase();
    let kind = req.type_name.rsplit("::").next().unwrap_or("resource").to_lowercase();
    if let Some(given) = prop(req.properties, &primary) {
        return given.to_string();
    }
    if primary.ends_with("Arn") || primary.ends_with("ARN") {
        return req.account.arn(
            &service,
            &format!("{kind}/{}", physical_name(req.stack_name, req.logical_id, 128)),
        );
    }
    if primary.ends_with("Id") {
        return format!("{kind}-{}", hex(17));
    }
    physical_name(req.stack_name, req.logical_id, 128)
}

/// `(name, id)` from an ELBv2 ARN with the given resource prefix.
pub fn arn_name_and_id(arn: &str, prefix: &str) -> (String, String) {
    let tail = arn.split_once(prefix).map(|(_, t)| t).unwrap_or_default();
    let mut parts = tail.split('/');
    let name = parts.next().unwrap_or("lb").to_string();
    let id = parts.next().unwrap_or("0000000000000000").to_string();
    (name, id)
}

/// The ALB hosted zone of a region (spec §8).
pub fn alb_hosted_zone(region: &str) -> &'static str {
    match region {
        "us-east-2" => "Z3AADJGX6KTTL2",
        "us-west-2" => "Z1H1FL5HABSF5",
        "eu-west-1" => "Z32O12XQLNTSW2",
        _ => "Z35SXDOTRQ7X7K",
    }
}

fn short_region(region: &str) -> String {
    // us-east-1 -> use1
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [a, b, n] => format!("{a}{}{n}", b.chars().next().unwrap_or('x')),
        _ => region.to_string(),
    }
}

fn random_secret(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n).map(|_| SET[fastrand::usize(..SET.len())] as char).collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
