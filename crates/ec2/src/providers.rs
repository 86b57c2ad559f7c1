//! EC2 and IAM resource types as CloudFormation creates them: the network model with EC2's
//! checks, launch templates with versions, instances that run.

use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::generic::model;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use indexmap::IndexMap;
use serde_json::{Value as Json, json};

use crate::model::*;
use crate::network::*;
use crate::service::{
    CreateRole, CreateSecurityGroup, CreateSubnet, CreateVpc, Ec2, LaunchRequest, LaunchSpec,
};

/// Every type this crate provides.
pub const TYPES: &[&str] = &[
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::KeyPair",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::NatGateway",
    "AWS::EC2::EIP",
    "AWS::EC2::LaunchTemplate",
    "AWS::AutoScaling::LaunchConfiguration",
    "AWS::EC2::Instance",
    "AWS::IAM::Role",
    "AWS::IAM::InstanceProfile",
];

pub struct Ec2Provider {
    pub ec2: Arc<Ec2>,
}

fn err(message: impl Into<String>) -> ProviderError {
    ProviderError::new(message)
}

use cfn_stacks::props::text;

/// EC2's errors as a resource's failure reason: a store failure is AWS's InternalFailure.
impl From<crate::Ec2Error> for ProviderError {
    fn from(e: crate::Ec2Error) -> ProviderError {
        match e {
            crate::Ec2Error::Store(e) => ProviderError::service("Ec2", "InternalFailure", e),
            other => err(other.to_string()),
        }
    }
}

impl Ec2Provider {
    fn store_err(e: store::StoreError) -> ProviderError {
        ProviderError::from(crate::Ec2Error::Store(e))
    }

    fn create_vpc(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let request = CreateVpc {
            cidr: text(req.properties, "CidrBlock").unwrap_or_else(|| "10.0.0.0/16".into()),
            tags: tags(req),
        };
        let vpc = self.ec2.create_vpc(request).map_err(rejected)?;
        let mut provided = model(req, None);
        provided.physical_id = vpc.id.clone();
        provided.attributes.insert("VpcId".into(), json!(vpc.id));
        provided.attributes.insert("DefaultSecurityGroup".into(), json!(vpc.default_group));
        provided.modelled = false;
        Ok(provided)
    }

    fn create_subnet(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let request = CreateSubnet {
            vpc_id: text(props, "VpcId").unwrap_or_default(),
            cidr: text(props, "CidrBlock").unwrap_or_default(),
            zone: text(props, "AvailabilityZone"),
            map_public_ip: cfn_stacks::props::boolean(props, "MapPublicIpOnLaunch")
                .unwrap_or(false),
            tags: tags(req),
        };
        let subnet = self.ec2.create_subnet(request).map_err(rejected)?;
        let mut provided = model(req, None);
        provided.physical_id = subnet.id.clone();
        provided.attributes.insert("SubnetId".into(), json!(subnet.id));
        provided.attributes.insert("AvailabilityZone".into(), json!(subnet.zone));
        provided.attributes.insert("VpcId".into(), json!(subnet.vpc_id));
        provided.attributes.insert("CidrBlock".into(), json!(subnet.cidr));
        provided.modelled = false;
        Ok(provided)
    }

    fn create_group(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let rules = |key: &str| -> Option<Vec<Rule>> {
            props
                .get(key)
                .and_then(Json::as_array)
                .map(|rules| rules.iter().map(|r| Rule::from_json(r, None)).collect())
        };
        let ingress = rules("SecurityGroupIngress").unwrap_or_default();
        let egress = rules("SecurityGroupEgress");
        let description = text(props, "GroupDescription").unwrap_or_default();
        let group = match current.and_then(|c| c.physical_id.as_deref()) {
            // An update in place changes the inline rules (and the description we keep).
            Some(id) => self
                .ec2
                .replace_inline_rules(id, ingress, egress, Some(description))
                .map_err(rejected)?,
            None => self
                .ec2
                .create_security_group(CreateSecurityGroup {
                    name: text(props, "GroupName").unwrap_or_else(|| {
                        aws_ids::physical_name(req.stack_name, req.logical_id, 255)
                    }),
                    description,
                    vpc_id: text(props, "VpcId"),
                    ingress,
                    egress,
                    tags: tags(req),
                })
                .map_err(rejected)?,
        };
        let mut provided = model(req, current);
        provided.physical_id = group.id.clone();
        provided.attributes.insert("GroupId".into(), json!(group.id));
        provided.attributes.insert("VpcId".into(), json!(group.vpc_id));
        provided.modelled = false;
        Ok(provided)
    }

    fn add_rule(&self, req: &ResourceRequest<'_>, egress: bool) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let group = text(props, "GroupId").or_else(|| text(props, "GroupName")).unwrap_or_default();
        let provided = model(req, None);
        let rule = Rule::from_json(props, Some(&provided.physical_id));
        self.ec2.add_owned_rule(&group, egress, rule).map_err(rejected)?;
        Ok(Provided { modelled: false, ..provided })
    }

    fn remove_rule(&self, current: &ResourceRecord) -> Result<(), ProviderError> {
        let Some(id) = &current.physical_id else { return Ok(()) };
        let group = text(&current.properties, "GroupId")
            .or_else(|| text(&current.properties, "GroupName"))
            .unwrap_or_default();
        Ok(self.ec2.remove_owned_rules(&group, id)?)
    }

    /// Internet gateways, route tables, routes, NAT gateways and Elastic IPs.
    fn routing(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let t = |k: &str| text(props, k).unwrap_or_default();
        let mut provided = model(req, None);
        match req.type_name {
            "AWS::EC2::InternetGateway" => {
                let g = self.ec2.create_internet_gateway(tags(req)).map_err(rejected)?;
                provided.physical_id = g.id.clone();
                provided.attributes.insert("InternetGatewayId".into(), json!(g.id));
            }
            "AWS::EC2::VPCGatewayAttachment" => {
                if let Some(g) = text(props, "InternetGatewayId") {
                    self.ec2.attach_internet_gateway(&g, &t("VpcId")).map_err(rejected)?;
                }
            }
            "AWS::EC2::RouteTable" => {
                let r = self.ec2.create_route_table(&t("VpcId"), tags(req)).map_err(rejected)?;
                provided.physical_id = r.id.clone();
                provided.attributes.insert("RouteTableId".into(), json!(r.id));
            }
            "AWS::EC2::Route" => {
                let target = ["GatewayId", "NatGatewayId", "InstanceId"]
                    .iter()
                    .find_map(|k| text(props, k))
                    .unwrap_or_default();
                let destination = text(props, "DestinationCidrBlock").unwrap_or_default();
                if !target.is_empty() && !destination.is_empty() {
                    self.ec2
                        .create_route(&t("RouteTableId"), &destination, &target)
                        .map_err(rejected)?;
                }
            }
            "AWS::EC2::SubnetRouteTableAssociation" => {
                let id = self
                    .ec2
                    .associate_route_table(&t("RouteTableId"), &t("SubnetId"))
                    .map_err(rejected)?;
                provided.physical_id = id.clone();
                provided.attributes.insert("Id".into(), json!(id));
            }
            "AWS::EC2::NatGateway" => {
                let private = text(props, "ConnectivityType").as_deref() == Some("private");
                let n = self
                    .ec2
                    .create_nat_gateway(
                        &t("SubnetId"),
                        text(props, "AllocationId").as_deref(),
                        private,
                        tags(req),
                    )
                    .map_err(rejected)?;
                provided.physical_id = n.id.clone();
                provided.attributes.insert("NatGatewayId".into(), json!(n.id));
            }
            "AWS::EC2::EIP" => {
                let a = self.ec2.allocate_address(tags(req)).map_err(rejected)?;
                provided.physical_id = a.public_ip.clone();
                provided.attributes.insert("PublicIp".into(), json!(a.public_ip));
                provided.attributes.insert("AllocationId".into(), json!(a.allocation_id));
            }
            _ => {}
        }
        provided.modelled = false;
        Ok(provided)
    }

    /// Undoes what `routing` made (what is already gone is fine).
    fn remove_routing(&self, current: &ResourceRecord) -> Result<(), ProviderError> {
        let Some(id) = current.physical_id.as_deref() else { return Ok(()) };
        let props = &current.properties;
        let t = |k: &str| text(props, k).unwrap_or_default();
        let result = match current.type_name.as_str() {
            "AWS::EC2::InternetGateway" => self.ec2.delete_internet_gateway(id),
            "AWS::EC2::VPCGatewayAttachment" => match text(props, "InternetGatewayId") {
                Some(g) => self.ec2.detach_internet_gateway(&g, &t("VpcId")),
                None => Ok(()),
            },
            "AWS::EC2::RouteTable" => self.ec2.delete_route_table(id),
            "AWS::EC2::Route" => {
                self.ec2.delete_route(&t("RouteTableId"), &t("DestinationCidrBlock"))
            }
            "AWS::EC2::SubnetRouteTableAssociation" => self.ec2.disassociate_route_table(id),
            "AWS::EC2::NatGateway" => self.ec2.delete_nat_gateway(id),
            "AWS::EC2::EIP" => {
                let allocation = current.attributes.get("AllocationId").and_then(Json::as_str);
                match allocation {
                    Some(a) => self.ec2.release_address(a),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        };
        match result {
            Err(e) if e.code().contains("NotFound") || e.code() == "Gateway.NotAttached" => Ok(()),
            other => other.map_err(rejected),
        }
    }

    fn launch_template(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let data = req.properties.get("LaunchTemplateData").cloned().unwrap_or(json!({}));
        let mut provided = model(req, current);
        let id = provided.physical_id.clone();
        let name = text(req.properties, "LaunchTemplateName")
            .unwrap_or_else(|| aws_ids::physical_name(req.stack_name, req.logical_id, 128));
        let record = self
            .ec2
            .put_launch_template_data(&id, &name, data, Some(req.logical_id.to_string()))
            .map_err(rejected)?;
        provided
            .attributes
            .insert("LatestVersionNumber".into(), json!(record.latest().to_string()));
        provided
            .attributes
            .insert("DefaultVersionNumber".into(), json!(record.default_version.to_string()));
        provided.modelled = false;
        Ok(provided)
    }

    fn launch_configuration(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let provided = model(req, None);
        self.ec2
            .put_launch_configuration(
                &provided.physical_id,
                req.properties.clone(),
                Some(req.logical_id.to_string()),
            )
            .map_err(|e| match e {
                crate::Ec2Error::Store(e) => Self::store_err(e),
                other => ProviderError::new(other.to_string()),
            })?;
        Ok(Provided { modelled: false, ..provided })
    }

    fn iam(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let mut provided = model(req, current);
        let name = provided.physical_id.clone();
        let document = |v: Option<&Json>| match v {
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "{}".to_string(),
        };
        let arn = if req.type_name == "AWS::IAM::Role" {
            if current.is_none() {
                self.ec2
                    .create_role(CreateRole {
                        name: name.clone(),
                        path: text(props, "Path"),
                        assume_role_policy: document(props.get("AssumeRolePolicyDocument")),
                        description: text(props, "Description"),
                        tags: tags(req),
                    })
                    .map_err(rejected)?;
            }
            let role = self
                .ec2
                .change_role(&name, |r| {
                    r.assume_role_policy = document(props.get("AssumeRolePolicyDocument"));
                    r.attached = cfn_stacks::props::strings(props, "ManagedPolicyArns");
                    r.inline = props
                        .get("Policies")
                        .and_then(Json::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| {
                            Some((text(p, "PolicyName")?, document(p.get("PolicyDocument"))))
                        })
                        .collect();
                    Ok(())
                })
                .map_err(rejected)?;
            provided.attributes.insert("RoleId".into(), json!(role.id));
            role.arn
        } else {
            let roles = cfn_stacks::props::strings(props, "Roles");
            if current.is_some() {
                self.ec2.delete_instance_profile_roles(&name).map_err(rejected)?;
            }
            let profile = match self.ec2.instance_profile(&name)? {
                Some(p) => p,
                None => self
                    .ec2
                    .create_instance_profile(&name, text(props, "Path").as_deref(), Vec::new())
                    .map_err(rejected)?,
            };
            for role in &roles {
                self.ec2.add_role_to_instance_profile(&name, role).map_err(rejected)?;
            }
            profile.arn
        };
        provided.attributes.insert("Arn".into(), json!(arn));
        provided.modelled = false;
        Ok(provided)
    }

    async fn instance(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let tags: IndexMap<String, String> = [
            ("aws:cloudformation:stack-name".to_string(), req.stack_name.to_string()),
            ("aws:cloudformation:stack-id".to_string(), req.stack_id.to_string()),
            ("aws:cloudformation:logical-id".to_string(), req.logical_id.to_string()),
        ]
        .into_iter()
        .collect();
        let launch = LaunchRequest {
            spec: LaunchSpec::Properties(req.properties.clone()),
            subnet_id: None,
            zone: None,
            ports: Vec::new(),
            tags,
            override_key: Some(req.logical_id.to_string()),
            group: None,
        };
        let record =
            self.ec2.launch(launch).await.map_err(|e| err(handler_error(&e.to_string(), 400)))?;
        Ok(instance_provided(&record))
    }
}

/// The `Ref` and `Fn::GetAtt` values of a running instance.
pub fn instance_provided(record: &InstanceRecord) -> Provided {
    let mut attributes = IndexMap::new();
    attributes.insert("InstanceId".into(), json!(record.id));
    attributes.insert("AvailabilityZone".into(), json!(record.zone));
    attributes.insert("PrivateIp".into(), json!(record.private_ip));
    attributes.insert("PrivateDnsName".into(), json!(record.private_dns_name()));
    attributes.insert("PublicIp".into(), json!(record.public_ip.clone().unwrap_or_default()));
    attributes.insert("PublicDnsName".into(), json!(record.public_dns_name().unwrap_or_default()));
    attributes.insert("VpcId".into(), json!(record.vpc_id));
    attributes.insert(
        "State".into(),
        json!({"Code": record.state.code().to_string(), "Name": record.state.name()}),
    );
    Provided { physical_id: record.id.clone(), attributes, modelled: false }
}

/// A resource's tags as its template gives them, with the tags CloudFormation adds.
fn tags(req: &ResourceRequest<'_>) -> IndexMap<String, String> {
    let mut tags: IndexMap<String, String> = [
        ("aws:cloudformation:stack-name".to_string(), req.stack_name.to_string()),
        ("aws:cloudformation:stack-id".to_string(), req.stack_id.to_string()),
        ("aws:cloudformation:logical-id".to_string(), req.logical_id.to_string()),
    ]
    .into_iter()
    .collect();
    for t in req.properties.get("Tags").and_then(Json::as_array).into_iter().flatten() {
        if let (Some(k), Some(v)) = (text(t, "Key"), text(t, "Value")) {
            tags.insert(k, v);
        }
    }
    tags
}

/// EC2's refusal as a resource's failure reason, in the handler's wording.
fn rejected(e: crate::Ec2Error) -> ProviderError {
    match e {
        crate::Ec2Error::Store(e) => ProviderError::from(crate::Ec2Error::Store(e)),
        other => err(handler_error(&other.to_string(), 400)),
    }
}

/// A delete of what is already gone succeeds (CloudFormation deletes idempotently).
fn gone_already(e: crate::Ec2Error) -> Result<(), ProviderError> {
    match e.code() {
        "InvalidVpcID.NotFound"
        | "InvalidSubnetID.NotFound"
        | "InvalidGroup.NotFound"
        | "NoSuchEntity" => Ok(()),
        _ => Err(rejected(e)),
    }
}

#[async_trait]
impl ResourceProvider for Ec2Provider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::EC2::VPC" => self.create_vpc(req),
            "AWS::EC2::Subnet" => self.create_subnet(req),
            "AWS::EC2::SecurityGroup" => self.create_group(req, None),
            "AWS::EC2::SecurityGroupIngress" => self.add_rule(req, false),
            "AWS::EC2::SecurityGroupEgress" => self.add_rule(req, true),
            "AWS::EC2::LaunchTemplate" => self.launch_template(req, None),
            "AWS::AutoScaling::LaunchConfiguration" => self.launch_configuration(req),
            "AWS::IAM::Role" | "AWS::IAM::InstanceProfile" => self.iam(req, None),
            "AWS::EC2::Instance" => self.instance(req).await,
            "AWS::EC2::InternetGateway"
            | "AWS::EC2::VPCGatewayAttachment"
            | "AWS::EC2::RouteTable"
            | "AWS::EC2::Route"
            | "AWS::EC2::SubnetRouteTableAssociation"
            | "AWS::EC2::NatGateway"
            | "AWS::EC2::EIP" => self.routing(req),
            "AWS::EC2::KeyPair" => {
                let mut provided = model(req, None);
                let name = text(req.properties, "KeyName").unwrap_or(provided.physical_id.clone());
                let key_type = text(req.properties, "KeyType");
                let (record, _material) = self
                    .ec2
                    .create_key_pair(&name, key_type.as_deref(), tags(req))
                    .map_err(rejected)?;
                provided.physical_id = record.name.clone();
                provided.attributes.insert("KeyPairId".into(), json!(record.id));
                provided.attributes.insert("KeyFingerprint".into(), json!(record.fingerprint));
                provided.modelled = false;
                Ok(provided)
            }
            other => Err(err(format!("{other} is not an EC2 type"))),
        }
    }

    async fn update(
        &self,
        req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<Provided, ProviderError> {
        match req.type_name {
            "AWS::EC2::SecurityGroup" => self.create_group(req, Some(current)),
            "AWS::EC2::LaunchTemplate" => self.launch_template(req, Some(current)),
            "AWS::IAM::Role" | "AWS::IAM::InstanceProfile" => self.iam(req, Some(current)),
            "AWS::EC2::Instance" => {
                // UserData and InstanceType changes: stop, change, start (some interruption).
                let id = current.physical_id.clone().unwrap_or_default();
                let old = &current.properties;
                let changed = |k: &str| old.get(k) != req.properties.get(k);
                if changed("UserData") || changed("InstanceType") {
                    self.ec2.stop(&id).await.map_err(|e| err(e.to_string()))?;
                    self.ec2
                        .update_stopped(
                            &id,
                            text(req.properties, "UserData"),
                            text(req.properties, "InstanceType"),
                        )
                        .map_err(|e| err(e.to_string()))?;
                    self.ec2.start(&id).await.map_err(|e| err(e.to_string()))?;
                }
                let record =
                    self.ec2.instance(&id)?.ok_or_else(|| err(format!("instance {id} is gone")))?;
                Ok(instance_provided(&record))
            }
            "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
                self.remove_rule(current)?;
                let egress = req.type_name.ends_with("Egress");
                let props = req.properties;
                let group =
                    text(props, "GroupId").or_else(|| text(props, "GroupName")).unwrap_or_default();
                let id = current.physical_id.clone().unwrap_or_default();
                let rule = Rule::from_json(props, Some(&id));
                self.ec2.add_owned_rule(&group, egress, rule).map_err(rejected)?;
                Ok(Provided {
                    physical_id: id,
                    attributes: current.attributes.clone(),
                    modelled: false,
                })
            }
            _ => Ok(Provided { modelled: false, ..model(req, Some(current)) }),
        }
    }

    async fn delete(
        &self,
        _req: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        let Some(id) = current.physical_id.as_deref() else { return Ok(()) };
        let store = &self.ec2.store;
        let result = match current.type_name.as_str() {
            "AWS::EC2::VPC" => return self.ec2.delete_vpc(id).or_else(gone_already),
            "AWS::EC2::Subnet" => return self.ec2.delete_subnet(id).or_else(gone_already),
            "AWS::EC2::SecurityGroup" => {
                return self.ec2.delete_security_group(id).or_else(gone_already);
            }
            "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
                return self.remove_rule(current);
            }
            "AWS::EC2::LaunchTemplate" => {
                return match self.ec2.delete_launch_template(id) {
                    Ok(_) => Ok(()),
                    Err(e) if e.code().ends_with("NotFound") => Ok(()),
                    Err(e) => Err(rejected(e)),
                };
            }
            "AWS::AutoScaling::LaunchConfiguration" => {
                store.delete(LAUNCH_CONFIGURATIONS, id).map(|_| ())
            }
            "AWS::EC2::KeyPair" => return self.ec2.delete_key_pair(id).map_err(rejected),
            "AWS::EC2::InternetGateway"
            | "AWS::EC2::VPCGatewayAttachment"
            | "AWS::EC2::RouteTable"
            | "AWS::EC2::Route"
            | "AWS::EC2::SubnetRouteTableAssociation"
            | "AWS::EC2::NatGateway"
            | "AWS::EC2::EIP" => return self.remove_routing(current),
            // CloudFormation detaches what the role's own properties attached.
            "AWS::IAM::Role" => {
                let detached = self.ec2.change_role(id, |r| {
                    r.attached.clear();
                    r.inline.clear();
                    Ok(())
                });
                return match detached {
                    Ok(_) => self.ec2.delete_role(id).or_else(gone_already),
                    Err(e) => gone_already(e),
                };
            }
            "AWS::IAM::InstanceProfile" => {
                return self
                    .ec2
                    .delete_instance_profile_roles(id)
                    .and_then(|_| self.ec2.delete_instance_profile(id))
                    .or_else(gone_already);
            }
            "AWS::EC2::Instance" => {
                return self.ec2.terminate(id).await.map_err(|e| err(e.to_string()));
            }
            _ => Ok(()),
        };
        result.map_err(Self::store_err)
    }
}
