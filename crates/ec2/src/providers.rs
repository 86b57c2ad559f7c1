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
use crate::service::{Ec2, LaunchRequest, LaunchSpec};

/// Every type this crate provides.
pub const TYPES: &[&str] = &[
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::KeyPair",
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
        let cidr_text = text(req.properties, "CidrBlock").unwrap_or_else(|| "10.0.0.0/16".into());
        let cidr = Cidr::parse(&cidr_text).ok_or_else(|| err(handler_error(&format!("Value ({cidr_text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."), 400)))?;
        if !(16..=28).contains(&cidr.prefix) {
            return Err(err(handler_error(&format!("The CIDR '{cidr_text}' is invalid."), 400)));
        }
        let provided = model(req, None);
        self.ec2
            .store
            .put(
                VPCS,
                &provided.physical_id,
                &VpcRecord { id: provided.physical_id.clone(), cidr: cidr_text },
            )
            .map_err(Self::store_err)?;
        Ok(Provided { modelled: false, ..provided })
    }

    fn create_subnet(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let cidr_text = text(props, "CidrBlock").unwrap_or_default();
        let vpc_id = text(props, "VpcId").unwrap_or_default();
        let cidr = Cidr::parse(&cidr_text).ok_or_else(|| {
            err(handler_error(&format!("The CIDR '{cidr_text}' is invalid."), 400))
        })?;
        if let Ok(Some(vpc)) = self.ec2.store.get::<VpcRecord>(VPCS, &vpc_id) {
            let outer = Cidr::parse(&vpc.cidr);
            if !outer.is_some_and(|o| o.contains(&cidr)) {
                return Err(err(handler_error(
                    &format!("The CIDR '{cidr_text}' is invalid."),
                    400,
                )));
            }
            for other in self.ec2.subnets()?.into_iter().filter(|s| s.vpc_id == vpc_id) {
                if Cidr::parse(&other.cidr).is_some_and(|o| o.overlaps(&cidr)) {
                    return Err(err(handler_error(
                        &format!("The CIDR '{cidr_text}' conflicts with another subnet"),
                        400,
                    )));
                }
            }
        }
        let zones = cfn_zones(&self.ec2.account().region);
        let zone = text(props, "AvailabilityZone").unwrap_or_else(|| zones[0].clone());
        if !zones.contains(&zone) {
            return Err(err(handler_error(
                &format!(
                    "Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                    zones.join(", ")
                ),
                400,
            )));
        }
        let provided = model(req, None);
        let map_public_ip = props
            .get("MapPublicIpOnLaunch")
            .is_some_and(|v| v.as_bool().unwrap_or_else(|| v.as_str() == Some("true")));
        let record = SubnetRecord {
            id: provided.physical_id.clone(),
            vpc_id,
            cidr: cidr_text,
            zone: zone.clone(),
            map_public_ip,
            used: Vec::new(),
        };
        self.ec2.store.put(SUBNETS, &record.id, &record).map_err(Self::store_err)?;
        let mut provided = Provided { modelled: false, ..provided };
        provided.attributes.insert("AvailabilityZone".into(), json!(zone));
        Ok(provided)
    }

    fn create_group(
        &self,
        req: &ResourceRequest<'_>,
        current: Option<&ResourceRecord>,
    ) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let provided = model(req, current);
        let id = provided.physical_id.clone();
        let existing = self.ec2.security_group(&id)?.unwrap_or_default();
        let rules = |key: &str| -> Vec<Rule> {
            props
                .get(key)
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .map(|r| Rule::from_json(r, None))
                .collect()
        };
        // Rules added by SecurityGroupIngress/Egress resources are kept.
        let mut ingress = rules("SecurityGroupIngress");
        ingress.extend(existing.ingress.into_iter().filter(|r| r.owner.is_some()));
        let mut egress = rules("SecurityGroupEgress");
        egress.extend(existing.egress.into_iter().filter(|r| r.owner.is_some()));
        let record = SecurityGroupRecord {
            id: id.clone(),
            vpc_id: text(props, "VpcId"),
            name: text(props, "GroupName")
                .unwrap_or_else(|| aws_ids::physical_name(req.stack_name, req.logical_id, 255)),
            description: text(props, "GroupDescription").unwrap_or_default(),
            ingress,
            egress,
        };
        self.ec2.store.put(GROUPS, &id, &record).map_err(Self::store_err)?;
        Ok(Provided { modelled: false, ..provided })
    }

    fn add_rule(&self, req: &ResourceRequest<'_>, egress: bool) -> Result<Provided, ProviderError> {
        let props = req.properties;
        let group = text(props, "GroupId").or_else(|| text(props, "GroupName")).unwrap_or_default();
        let provided = model(req, None);
        if let Some(mut record) = self.ec2.security_group(&group)? {
            let rule = Rule::from_json(props, Some(&provided.physical_id));
            if egress {
                record.egress.push(rule);
            } else {
                record.ingress.push(rule);
            }
            self.ec2.store.put(GROUPS, &record.id, &record).map_err(Self::store_err)?;
        }
        Ok(Provided { modelled: false, ..provided })
    }

    fn remove_rule(&self, current: &ResourceRecord) -> Result<(), ProviderError> {
        let Some(id) = &current.physical_id else { return Ok(()) };
        let group = text(&current.properties, "GroupId")
            .or_else(|| text(&current.properties, "GroupName"))
            .unwrap_or_default();
        if let Some(mut record) = self.ec2.security_group(&group)? {
            record.ingress.retain(|r| r.owner.as_deref() != Some(id));
            record.egress.retain(|r| r.owner.as_deref() != Some(id));
            self.ec2.store.put(GROUPS, &record.id, &record).map_err(Self::store_err)?;
        }
        Ok(())
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
        let mut record = self.ec2.launch_template(&id)?.unwrap_or(LaunchTemplateRecord {
            id: id.clone(),
            name: name.clone(),
            versions: Default::default(),
            default_version: 1,
            logical_id: None,
        });
        record.logical_id = Some(req.logical_id.to_string());
        // A change of LaunchTemplateData is a new version, which becomes the default.
        if record.versions.get(&record.latest()) != Some(&data) {
            let next = if record.versions.is_empty() { 1 } else { record.latest() + 1 };
            record.versions.insert(next, data);
            record.default_version = next;
        }
        record.name = name.clone();
        self.ec2.store.put(LAUNCH_TEMPLATES, &id, &record).map_err(Self::store_err)?;
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
        let provided = model(req, current);
        let arn =
            provided.attributes.get("Arn").and_then(Json::as_str).unwrap_or_default().to_string();
        if req.type_name == "AWS::IAM::Role" {
            let record = RoleRecord { name: provided.physical_id.clone(), arn };
            self.ec2.store.put(ROLES, &record.name, &record).map_err(Self::store_err)?;
        } else {
            let roles: Vec<String> = req
                .properties
                .get("Roles")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
            let record = InstanceProfileRecord {
                name: provided.physical_id.clone(),
                arn,
                id: format!("AIPA{}", aws_ids::upper_alnum(17)),
                roles,
            };
            self.ec2
                .store
                .put(INSTANCE_PROFILES, &record.name, &record)
                .map_err(Self::store_err)?;
        }
        Ok(Provided { modelled: false, ..provided })
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

/// The zones of a region, as `Fn::GetAZs` gives them.
fn cfn_zones(region: &str) -> Vec<String> {
    ["a", "b", "c"].iter().map(|l| format!("{region}{l}")).collect()
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
            "AWS::EC2::KeyPair" => {
                let mut provided = model(req, None);
                let fingerprint = (0..20).map(|_| aws_ids::hex(2)).collect::<Vec<_>>().join(":");
                let record = KeyPairRecord {
                    name: provided.physical_id.clone(),
                    id: aws_ids::ec2_id("key"),
                    fingerprint: fingerprint.clone(),
                };
                self.ec2.store.put(KEY_PAIRS, &record.name, &record).map_err(Self::store_err)?;
                provided.attributes.insert("KeyPairId".into(), json!(record.id));
                provided.attributes.insert("KeyFingerprint".into(), json!(fingerprint));
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
                if let Some(mut record) = self.ec2.security_group(&group)? {
                    let rule = Rule::from_json(props, Some(&id));
                    if egress {
                        record.egress.push(rule)
                    } else {
                        record.ingress.push(rule)
                    }
                    self.ec2.store.put(GROUPS, &record.id, &record).map_err(Self::store_err)?;
                }
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
            "AWS::EC2::VPC" => store.delete(VPCS, id).map(|_| ()),
            "AWS::EC2::Subnet" => store.delete(SUBNETS, id).map(|_| ()),
            "AWS::EC2::SecurityGroup" => store.delete(GROUPS, id).map(|_| ()),
            "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => {
                return self.remove_rule(current);
            }
            "AWS::EC2::LaunchTemplate" => store.delete(LAUNCH_TEMPLATES, id).map(|_| ()),
            "AWS::AutoScaling::LaunchConfiguration" => {
                store.delete(LAUNCH_CONFIGURATIONS, id).map(|_| ())
            }
            "AWS::EC2::KeyPair" => store.delete(KEY_PAIRS, id).map(|_| ()),
            "AWS::IAM::Role" => store.delete(ROLES, id).map(|_| ()),
            "AWS::IAM::InstanceProfile" => store.delete(INSTANCE_PROFILES, id).map(|_| ()),
            "AWS::EC2::Instance" => {
                return self.ec2.terminate(id).await.map_err(|e| err(e.to_string()));
            }
            _ => Ok(()),
        };
        result.map_err(Self::store_err)
    }
}
