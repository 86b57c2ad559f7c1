//! The network as the API and CloudFormation change it: the default VPC every account has,
//! VPCs, subnets, security groups and their rules, and tags on all of them. One request type
//! per operation, checked as EC2 checks it; the providers and the API both come here.

use super::*;

/// The zones of a region, as `Fn::GetAZs` and DescribeAvailabilityZones give them.
pub fn zones(region: &str) -> Vec<String> {
    cfn_template::eval::availability_zones(region)
}

/// CreateVpc.
#[derive(Clone, Debug, Default)]
pub struct CreateVpc {
    pub cidr: String,
    pub tags: IndexMap<String, String>,
}

/// CreateSubnet.
#[derive(Clone, Debug, Default)]
pub struct CreateSubnet {
    pub vpc_id: String,
    pub cidr: String,
    /// The first zone when none is given.
    pub zone: Option<String>,
    pub map_public_ip: bool,
    pub tags: IndexMap<String, String>,
}

/// CreateSecurityGroup, with the rules a CloudFormation resource declares inline.
#[derive(Clone, Debug, Default)]
pub struct CreateSecurityGroup {
    pub name: String,
    pub description: String,
    /// The default VPC when none is given.
    pub vpc_id: Option<String>,
    pub ingress: Vec<Rule>,
    /// `None`: EC2's default rule (all traffic out).
    pub egress: Option<Vec<Rule>>,
    pub tags: IndexMap<String, String>,
}

fn rejected(code: &'static str, message: impl Into<String>) -> Ec2Error {
    Ec2Error::Rejected { code, message: message.into() }
}

/// All traffic, anywhere: a VPC security group's default egress rule.
fn all_traffic() -> Rule {
    Rule { protocol: "-1".into(), cidr: Some("0.0.0.0/0".into()), ..Rule::default() }
}

/// Two rules grant the same thing (descriptions and owners aside).
fn same_grant(a: &Rule, b: &Rule) -> bool {
    let proto = |p: &str| match p {
        "6" => "tcp".to_string(),
        "17" => "udp".to_string(),
        "1" => "icmp".to_string(),
        "all" => "-1".to_string(),
        other => other.to_lowercase(),
    };
    let ports =
        |r: &Rule| if proto(&r.protocol) == "-1" { (None, None) } else { (r.from_port, r.to_port) };
    proto(&a.protocol) == proto(&b.protocol)
        && ports(a) == ports(b)
        && a.cidr == b.cidr
        && a.source_group == b.source_group
}

/// A rule as EC2 words it in errors: `peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW`.
fn describe_rule(r: &Rule) -> String {
    let peer = r.cidr.clone().or_else(|| r.source_group.clone()).unwrap_or_default();
    let proto = match r.protocol.as_str() {
        "-1" | "all" => "ALL".to_string(),
        p => p.to_uppercase(),
    };
    match (r.from_port, r.to_port) {
        (Some(f), Some(t)) if proto != "ALL" => {
            format!("peer: {peer}, {proto}, from port: {f}, to port: {t}, ALLOW")
        }
        _ => format!("peer: {peer}, {proto}, ALLOW"),
    }
}

impl Ec2 {
    // === the default VPC ===

    /// The default VPC (172.31.0.0/16) with a default subnet per zone and its `default`
    /// security group, as every account has them: made once, kept in the store.
    pub(crate) fn ensure_default_network(&self) -> Result<(), Ec2Error> {
        let vpc = match self.store.get::<VpcRecord>(VPCS, DEFAULT_VPC)? {
            Some(vpc) => vpc,
            None => VpcRecord {
                id: DEFAULT_VPC.into(),
                cidr: "172.31.0.0/16".into(),
                is_default: true,
                default_group: None,
                tags: IndexMap::new(),
            },
        };
        if vpc.default_group.is_none() || !vpc.is_default {
            let group = self.default_group_for(DEFAULT_VPC, "sg-default00000000")?;
            let vpc = VpcRecord { is_default: true, default_group: Some(group), ..vpc };
            self.store.put(VPCS, DEFAULT_VPC, &vpc)?;
            // Its internet gateway, and a main table that routes to it.
            let gateway = GatewayRecord {
                id: "igw-default00000000".into(),
                vpc_id: Some(DEFAULT_VPC.into()),
                tags: IndexMap::new(),
            };
            self.store.put(GATEWAYS, &gateway.id, &gateway)?;
            let table = RouteTableRecord {
                id: "rtb-default00000000".into(),
                vpc_id: DEFAULT_VPC.into(),
                main: true,
                routes: vec![
                    Route { destination: vpc.cidr.clone(), target: "local".into() },
                    Route { destination: "0.0.0.0/0".into(), target: gateway.id.clone() },
                ],
                associations: Vec::new(),
                tags: IndexMap::new(),
            };
            self.store.put(ROUTE_TABLES, &table.id, &table)?;
        }
        for (index, zone) in zones(&self.config.account.region).into_iter().enumerate() {
            let id = default_subnet_id(index);
            match self.subnet(&id)? {
                Some(s) if s.default_for_az => continue,
                Some(s) => {
                    self.store.put(SUBNETS, &id, &SubnetRecord { default_for_az: true, ..s })?
                }
                None => self.store.put(
                    SUBNETS,
                    &id,
                    &SubnetRecord {
                        id: id.clone(),
                        vpc_id: DEFAULT_VPC.into(),
                        cidr: format!("172.31.{}.0/20", index * 16),
                        zone,
                        map_public_ip: true,
                        default_for_az: true,
                        tags: IndexMap::new(),
                        used: Vec::new(),
                    },
                )?,
            }
        }
        Ok(())
    }

    /// A VPC's `default` group: in from its own members, out to anywhere.
    fn default_group_for(&self, vpc_id: &str, id: &str) -> Result<String, Ec2Error> {
        let group = SecurityGroupRecord {
            id: id.to_string(),
            vpc_id: Some(vpc_id.to_string()),
            name: "default".into(),
            description: "default VPC security group".into(),
            ingress: vec![Rule {
                protocol: "-1".into(),
                source_group: Some(id.to_string()),
                ..Rule::default()
            }],
            egress: vec![all_traffic()],
            tags: IndexMap::new(),
        };
        self.store.put(GROUPS, id, &group)?;
        Ok(id.to_string())
    }

    /// The account's default VPC.
    pub fn default_vpc(&self) -> Result<Option<VpcRecord>, Ec2Error> {
        Ok(self.store.get(VPCS, DEFAULT_VPC)?)
    }

    // === VPCs ===

    pub fn vpc(&self, id: &str) -> Result<Option<VpcRecord>, Ec2Error> {
        Ok(self.store.get(VPCS, id)?)
    }

    pub fn vpcs(&self) -> Result<Vec<VpcRecord>, Ec2Error> {
        Ok(self.store.list::<VpcRecord>(VPCS, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn create_vpc(&self, request: CreateVpc) -> Result<VpcRecord, Ec2Error> {
        let cidr = Cidr::parse(&request.cidr).ok_or_else(|| {
            rejected(
                "InvalidParameterValue",
                format!(
                    "Value ({}) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
                    request.cidr
                ),
            )
        })?;
        if !(16..=28).contains(&cidr.prefix) {
            return Err(rejected(
                "InvalidVpc.Range",
                format!("The CIDR '{}' is invalid.", request.cidr),
            ));
        }
        let id = aws_ids::ec2_id("vpc");
        let group = self.default_group_for(&id, &aws_ids::ec2_id("sg"))?;
        let record = VpcRecord {
            id: id.clone(),
            cidr: request.cidr,
            is_default: false,
            default_group: Some(group),
            tags: request.tags,
        };
        self.store.put(VPCS, &id, &record)?;
        self.create_main_table(&record)?;
        Ok(record)
    }

    /// DeleteVpc: only once its subnets and its own security groups are gone.
    pub fn delete_vpc(&self, id: &str) -> Result<(), Ec2Error> {
        let vpc = self.vpc(id)?.ok_or_else(|| {
            rejected("InvalidVpcID.NotFound", format!("The vpc ID '{id}' does not exist"))
        })?;
        let subnets = self.subnets()?.into_iter().any(|s| s.vpc_id == id);
        let groups = self
            .security_groups()?
            .into_iter()
            .any(|g| g.vpc_id.as_deref() == Some(id) && Some(&g.id) != vpc.default_group.as_ref());
        let gateways = self.gateways()?.iter().any(|g| g.vpc_id.as_deref() == Some(id));
        let tables =
            self.route_tables()?.into_iter().filter(|t| t.vpc_id == id).collect::<Vec<_>>();
        if subnets || groups || gateways || tables.iter().any(|t| !t.main) {
            return Err(rejected(
                "DependencyViolation",
                format!("The vpc '{id}' has dependencies and cannot be deleted."),
            ));
        }
        for t in tables {
            self.store.delete(ROUTE_TABLES, &t.id)?;
        }
        if let Some(g) = &vpc.default_group {
            self.store.delete(GROUPS, g)?;
        }
        self.store.delete(VPCS, id)?;
        Ok(())
    }

    // === subnets ===

    pub fn create_subnet(&self, request: CreateSubnet) -> Result<SubnetRecord, Ec2Error> {
        let vpc = self.vpc(&request.vpc_id)?.ok_or_else(|| {
            rejected(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{}' does not exist", request.vpc_id),
            )
        })?;
        let invalid =
            || rejected("InvalidSubnet.Range", format!("The CIDR '{}' is invalid.", request.cidr));
        let cidr = Cidr::parse(&request.cidr).ok_or_else(invalid)?;
        let outer = Cidr::parse(&vpc.cidr);
        if !outer.is_some_and(|o| o.contains(&cidr)) || !(16..=28).contains(&cidr.prefix) {
            return Err(invalid());
        }
        for other in self.subnets()?.into_iter().filter(|s| s.vpc_id == vpc.id) {
            if Cidr::parse(&other.cidr).is_some_and(|o| o.overlaps(&cidr)) {
                return Err(rejected(
                    "InvalidSubnet.Conflict",
                    format!("The CIDR '{}' conflicts with another subnet", request.cidr),
                ));
            }
        }
        let zones = zones(&self.config.account.region);
        let zone = request.zone.filter(|z| !z.is_empty()).unwrap_or_else(|| zones[0].clone());
        if !zones.contains(&zone) {
            return Err(rejected(
                "InvalidParameterValue",
                format!(
                    "Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                    zones.join(", ")
                ),
            ));
        }
        let record = SubnetRecord {
            id: aws_ids::ec2_id("subnet"),
            vpc_id: vpc.id,
            cidr: request.cidr,
            zone,
            map_public_ip: request.map_public_ip,
            default_for_az: false,
            tags: request.tags,
            used: Vec::new(),
        };
        self.store.put(SUBNETS, &record.id, &record)?;
        Ok(record)
    }

    fn existing_subnet(&self, id: &str) -> Result<SubnetRecord, Ec2Error> {
        self.subnet(id)?.ok_or_else(|| {
            rejected("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist"))
        })
    }

    /// DeleteSubnet: only once no instance runs in it.
    pub fn delete_subnet(&self, id: &str) -> Result<(), Ec2Error> {
        self.existing_subnet(id)?;
        let used = self
            .instances()?
            .iter()
            .any(|i| i.subnet_id == id && i.state != InstanceState::Terminated);
        if used {
            return Err(rejected(
                "DependencyViolation",
                format!("The subnet '{id}' has dependencies and cannot be deleted."),
            ));
        }
        for mut t in self.route_tables()? {
            if t.associations.iter().any(|(_, s)| s == id) {
                t.associations.retain(|(_, s)| s != id);
                self.store.put(ROUTE_TABLES, &t.id.clone(), &t)?;
            }
        }
        self.store.delete(SUBNETS, id)?;
        Ok(())
    }

    /// ModifySubnetAttribute `MapPublicIpOnLaunch`.
    pub fn set_map_public_ip(&self, id: &str, value: bool) -> Result<(), Ec2Error> {
        let subnet = self.existing_subnet(id)?;
        self.store.put(SUBNETS, id, &SubnetRecord { map_public_ip: value, ..subnet })?;
        Ok(())
    }

    // === security groups ===

    pub fn security_groups(&self) -> Result<Vec<SecurityGroupRecord>, Ec2Error> {
        Ok(self
            .store
            .list::<SecurityGroupRecord>(GROUPS, "")?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn existing_group(&self, id_or_name: &str) -> Result<SecurityGroupRecord, Ec2Error> {
        self.security_group(id_or_name)?.ok_or_else(|| {
            rejected(
                "InvalidGroup.NotFound",
                format!("The security group '{id_or_name}' does not exist"),
            )
        })
    }

    pub fn create_security_group(
        &self,
        request: CreateSecurityGroup,
    ) -> Result<SecurityGroupRecord, Ec2Error> {
        let vpc_id = request.vpc_id.filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_VPC.into());
        if self.vpc(&vpc_id)?.is_none() {
            return Err(rejected(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{vpc_id}' does not exist"),
            ));
        }
        if request.name == "default" || request.name.starts_with("sg-") {
            return Err(rejected(
                "InvalidParameterValue",
                format!("Invalid security group name: '{}'", request.name),
            ));
        }
        let taken = self
            .security_groups()?
            .into_iter()
            .any(|g| g.name == request.name && g.vpc_id.as_deref() == Some(&vpc_id));
        if taken {
            return Err(rejected(
                "InvalidGroup.Duplicate",
                format!("The security group '{}' already exists for VPC '{vpc_id}'", request.name),
            ));
        }
        let record = SecurityGroupRecord {
            id: aws_ids::ec2_id("sg"),
            vpc_id: Some(vpc_id),
            name: request.name,
            description: request.description,
            ingress: request.ingress,
            egress: request.egress.unwrap_or_else(|| vec![all_traffic()]),
            tags: request.tags,
        };
        self.store.put(GROUPS, &record.id, &record)?;
        Ok(record)
    }

    /// A CloudFormation update of a group's inline rules: the rules other resources added
    /// (SecurityGroupIngress/Egress, the API) stay.
    pub fn replace_inline_rules(
        &self,
        id: &str,
        ingress: Vec<Rule>,
        egress: Option<Vec<Rule>>,
        description: Option<String>,
    ) -> Result<SecurityGroupRecord, Ec2Error> {
        let mut group = self.existing_group(id)?;
        let kept = |rules: &[Rule]| -> Vec<Rule> {
            rules.iter().filter(|r| r.owner.is_some()).cloned().collect()
        };
        let mut new_ingress = ingress;
        new_ingress.extend(kept(&group.ingress));
        let mut new_egress = egress.unwrap_or_else(|| vec![all_traffic()]);
        new_egress.extend(kept(&group.egress));
        group.ingress = new_ingress;
        group.egress = new_egress;
        if let Some(d) = description {
            group.description = d;
        }
        self.store.put(GROUPS, &group.id, &group)?;
        Ok(group)
    }

    /// AuthorizeSecurityGroupIngress / Egress: every rule is new, or nothing changes.
    pub fn authorize(
        &self,
        group: &str,
        egress: bool,
        rules: Vec<Rule>,
    ) -> Result<SecurityGroupRecord, Ec2Error> {
        let mut record = self.existing_group(group)?;
        for rule in &rules {
            if let Some(g) = &rule.source_group {
                self.existing_group(g)?;
            }
        }
        let list = if egress { &mut record.egress } else { &mut record.ingress };
        for (i, rule) in rules.iter().enumerate() {
            let twice = rules[..i].iter().any(|r| same_grant(r, rule));
            if twice || list.iter().any(|r| same_grant(r, rule)) {
                return Err(rejected(
                    "InvalidPermission.Duplicate",
                    format!("the specified rule \"{}\" already exists", describe_rule(rule)),
                ));
            }
        }
        list.extend(rules);
        self.store.put(GROUPS, &record.id, &record)?;
        Ok(record)
    }

    /// RevokeSecurityGroupIngress / Egress: every rule must be there.
    pub fn revoke(
        &self,
        group: &str,
        egress: bool,
        rules: &[Rule],
    ) -> Result<SecurityGroupRecord, Ec2Error> {
        let mut record = self.existing_group(group)?;
        let list = if egress { &mut record.egress } else { &mut record.ingress };
        for rule in rules {
            if !list.iter().any(|r| same_grant(r, rule)) {
                return Err(rejected(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                ));
            }
        }
        list.retain(|r| !rules.iter().any(|gone| same_grant(r, gone)));
        self.store.put(GROUPS, &record.id, &record)?;
        Ok(record)
    }

    /// A rule a stack resource owns (SecurityGroupIngress / Egress), removed with it.
    pub fn add_owned_rule(&self, group: &str, egress: bool, rule: Rule) -> Result<(), Ec2Error> {
        let mut record = self.existing_group(group)?;
        if egress {
            record.egress.push(rule)
        } else {
            record.ingress.push(rule)
        }
        self.store.put(GROUPS, &record.id, &record)?;
        Ok(())
    }

    pub fn remove_owned_rules(&self, group: &str, owner: &str) -> Result<(), Ec2Error> {
        let Some(mut record) = self.security_group(group)? else { return Ok(()) };
        record.ingress.retain(|r| r.owner.as_deref() != Some(owner));
        record.egress.retain(|r| r.owner.as_deref() != Some(owner));
        self.store.put(GROUPS, &record.id, &record)?;
        Ok(())
    }

    /// DeleteSecurityGroup: not a VPC's default group, not while an instance uses it.
    pub fn delete_security_group(&self, id_or_name: &str) -> Result<(), Ec2Error> {
        let group = self.existing_group(id_or_name)?;
        if group.name == "default" {
            return Err(rejected(
                "CannotDelete",
                format!(
                    "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                    group.id
                ),
            ));
        }
        let used = self
            .instances()?
            .iter()
            .any(|i| i.state != InstanceState::Terminated && i.security_groups.contains(&group.id));
        let referenced = self.security_groups()?.iter().any(|g| {
            g.id != group.id
                && g.ingress
                    .iter()
                    .chain(&g.egress)
                    .any(|r| r.source_group.as_deref() == Some(&group.id))
        });
        if used || referenced {
            return Err(rejected(
                "DependencyViolation",
                format!("resource {} has a dependent object", group.id),
            ));
        }
        self.store.delete(GROUPS, &group.id)?;
        Ok(())
    }

    // === tags ===

    /// CreateTags: on VPCs, subnets, security groups and instances (all or none).
    pub fn create_tags(
        &self,
        ids: &[String],
        tags: &IndexMap<String, String>,
    ) -> Result<(), Ec2Error> {
        self.change_tags(ids, |t| t.extend(tags.clone()))
    }

    /// DeleteTags: keys, or keys with the value they must have.
    pub fn delete_tags(
        &self,
        ids: &[String],
        tags: &[(String, Option<String>)],
    ) -> Result<(), Ec2Error> {
        self.change_tags(ids, |t| {
            t.retain(|k, v| {
                !tags.iter().any(|(key, value)| key == k && value.as_ref().is_none_or(|x| x == v))
            })
        })
    }

    fn change_tags(
        &self,
        ids: &[String],
        change: impl Fn(&mut IndexMap<String, String>),
    ) -> Result<(), Ec2Error> {
        // Check every id first: a bad one changes nothing.
        for id in ids {
            if self.tags_of(id)?.is_none() {
                return Err(not_found_id(id));
            }
        }
        for id in ids {
            match id.split('-').next().unwrap_or("") {
                "vpc" => {
                    let mut r = self.vpc(id)?.ok_or_else(|| not_found_id(id))?;
                    change(&mut r.tags);
                    self.store.put(VPCS, id, &r)?;
                }
                "subnet" => {
                    let mut r = self.existing_subnet(id)?;
                    change(&mut r.tags);
                    self.store.put(SUBNETS, id, &r)?;
                }
                "sg" => {
                    let mut r = self.existing_group(id)?;
                    change(&mut r.tags);
                    self.store.put(GROUPS, id, &r)?;
                }
                "i" => {
                    let mut r = self.instance(id)?.ok_or_else(|| not_found_id(id))?;
                    change(&mut r.tags);
                    self.store.put(INSTANCES, id, &r)?;
                }
                "igw" => {
                    self.change_tags_of::<GatewayRecord>(GATEWAYS, id, |r| &mut r.tags, &change)?
                }
                "rtb" => self.change_tags_of::<RouteTableRecord>(
                    ROUTE_TABLES,
                    id,
                    |r| &mut r.tags,
                    &change,
                )?,
                "nat" => self.change_tags_of::<NatGatewayRecord>(
                    NAT_GATEWAYS,
                    id,
                    |r| &mut r.tags,
                    &change,
                )?,
                "eipalloc" => {
                    self.change_tags_of::<AddressRecord>(ADDRESSES, id, |r| &mut r.tags, &change)?
                }
                _ => return Err(not_found_id(id)),
            }
        }
        Ok(())
    }

    fn change_tags_of<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        namespace: &str,
        id: &str,
        tags: impl Fn(&mut T) -> &mut IndexMap<String, String>,
        change: &impl Fn(&mut IndexMap<String, String>),
    ) -> Result<(), Ec2Error> {
        let mut r = self.store.get::<T>(namespace, id)?.ok_or_else(|| not_found_id(id))?;
        change(tags(&mut r));
        self.store.put(namespace, id, &r)?;
        Ok(())
    }

    /// A resource's tags, `None` when there is no such resource.
    pub fn tags_of(&self, id: &str) -> Result<Option<IndexMap<String, String>>, Ec2Error> {
        Ok(match id.split('-').next().unwrap_or("") {
            "vpc" => self.vpc(id)?.map(|r| r.tags),
            "subnet" => self.subnet(id)?.map(|r| r.tags),
            "sg" => self.store.get::<SecurityGroupRecord>(GROUPS, id)?.map(|r| r.tags),
            "i" => self.instance(id)?.map(|r| r.tags),
            "igw" => self.store.get::<GatewayRecord>(GATEWAYS, id)?.map(|r| r.tags),
            "rtb" => self.store.get::<RouteTableRecord>(ROUTE_TABLES, id)?.map(|r| r.tags),
            "nat" => self.store.get::<NatGatewayRecord>(NAT_GATEWAYS, id)?.map(|r| r.tags),
            "eipalloc" => self.store.get::<AddressRecord>(ADDRESSES, id)?.map(|r| r.tags),
            _ => None,
        })
    }
}

/// The id of the default subnet of a region's `index`th zone.
pub(crate) fn default_subnet_id(index: usize) -> String {
    format!("subnet-default{index:08x}")
}

fn not_found_id(id: &str) -> Ec2Error {
    let (code, what) = match id.split('-').next().unwrap_or("") {
        "vpc" => ("InvalidVpcID.NotFound", "vpc ID"),
        "subnet" => ("InvalidSubnetID.NotFound", "subnet ID"),
        "sg" => ("InvalidGroup.NotFound", "security group"),
        "i" => ("InvalidInstanceID.NotFound", "instance ID"),
        _ => ("InvalidID", "ID"),
    };
    if code == "InvalidID" {
        return rejected(code, format!("The ID '{id}' is not valid"));
    }
    rejected(code, format!("The {what} '{id}' does not exist"))
}

/// The EC2 parameter types CloudFormation checks before a stack operation starts.
impl cfn_stacks::AccountResources for Ec2 {
    fn exists(&self, ty: &str, value: &str) -> Result<Option<bool>, store::StoreError> {
        let found = |r: Result<bool, Ec2Error>| match r {
            Ok(b) => Ok(Some(b)),
            Err(Ec2Error::Store(e)) => Err(e),
            Err(_) => Ok(Some(false)),
        };
        match ty {
            "AWS::EC2::Subnet::Id" => found(self.subnet(value).map(|s| s.is_some())),
            "AWS::EC2::VPC::Id" => found(self.vpc(value).map(|v| v.is_some())),
            "AWS::EC2::SecurityGroup::Id" => found(
                self.store
                    .get::<SecurityGroupRecord>(GROUPS, value)
                    .map(|g| g.is_some())
                    .map_err(Ec2Error::from),
            ),
            "AWS::EC2::SecurityGroup::GroupName" => {
                found(self.security_groups().map(|all| all.iter().any(|g| g.name == value)))
            }
            "AWS::EC2::KeyPair::KeyName" => found(self.key_pair(value).map(|k| k.is_some())),
            "AWS::EC2::Instance::Id" => found(self.instance(value).map(|i| i.is_some())),
            "AWS::EC2::AvailabilityZone::Name" => {
                Ok(Some(zones(&self.config.account.region).iter().any(|z| z == value)))
            }
            _ => Ok(None),
        }
    }
}
