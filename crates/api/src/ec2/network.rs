//! EC2's network actions: VPCs, subnets, security groups and their rules, tags. Requests are
//! read as one parameter tree (`QueryInput::tree`); answers in EC2's XML (`item` lists,
//! lowerCamel names).

use ec2::network::{Rule, SecurityGroupRecord, SubnetRecord, VpcRecord};
use ec2::{CreateSecurityGroup, CreateSubnet, CreateVpc, Ec2};
use indexmap::IndexMap;
use serde_json::Value as Json;

use super::{Filters, tag_set, tag_specifications, write_page};
use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const ACTIONS: &[&str] = &[
    "DescribeVpcs",
    "CreateVpc",
    "DeleteVpc",
    "DescribeSubnets",
    "CreateSubnet",
    "DeleteSubnet",
    "ModifySubnetAttribute",
    "DescribeSecurityGroups",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
];

fn text(j: &Json, key: &str) -> Option<String> {
    j.get(key).and_then(Json::as_str).map(str::to_string)
}

fn list<'a>(j: &'a Json, key: &str) -> impl Iterator<Item = &'a Json> {
    j.get(key).and_then(Json::as_array).into_iter().flatten()
}

fn strings(j: &Json, key: &str) -> Vec<String> {
    list(j, key).filter_map(Json::as_str).map(str::to_string).collect()
}

/// The rules an Authorize/Revoke call names: its `IpPermissions` (one rule per range or
/// group pair), or the old top-level form (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`,
/// `SourceSecurityGroupName`).
fn rules(ec2: &Ec2, tree: &Json) -> Result<Vec<Rule>, ApiError> {
    let port = |j: &Json, k: &str| -> Result<Option<i32>, ApiError> {
        match text(j, k) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::service(
                    "InvalidParameterValue",
                    format!("Invalid value '{v}' for {k}. It must be a number."),
                )
            }),
        }
    };
    let mut out = Vec::new();
    let mut permissions: Vec<&Json> = list(tree, "IpPermissions").collect();
    if permissions.is_empty() && tree.get("IpProtocol").is_some() {
        permissions.push(tree);
    }
    for p in permissions {
        let protocol = text(p, "IpProtocol").unwrap_or_else(|| "-1".into()).to_lowercase();
        let base = Rule {
            protocol,
            from_port: port(p, "FromPort")?,
            to_port: port(p, "ToPort")?,
            ..Rule::default()
        };
        let before = out.len();
        for range in list(p, "IpRanges").chain(list(p, "Ipv6Ranges")) {
            out.push(Rule {
                cidr: text(range, "CidrIp").or_else(|| text(range, "CidrIpv6")),
                description: text(range, "Description"),
                ..base.clone()
            });
        }
        for pair in list(p, "Groups") {
            let source = match (text(pair, "GroupId"), text(pair, "GroupName")) {
                (Some(id), _) => id,
                (None, Some(name)) => ec2.security_group(&name)?.map(|g| g.id).unwrap_or(name),
                (None, None) => continue,
            };
            out.push(Rule {
                source_group: Some(source),
                description: text(pair, "Description"),
                ..base.clone()
            });
        }
        if let Some(cidr) = text(p, "CidrIp") {
            out.push(Rule { cidr: Some(cidr), ..base.clone() });
        }
        if let Some(name) = text(p, "SourceSecurityGroupName") {
            let id = ec2.security_group(&name)?.map(|g| g.id).unwrap_or(name);
            out.push(Rule { source_group: Some(id), ..base.clone() });
        }
        if out.len() == before {
            return Err(ApiError::service(
                "InvalidParameterValue",
                "The request must contain the parameter ipPermissions (a source CIDR or group)",
            ));
        }
    }
    if out.is_empty() {
        return Err(ApiError::service(
            "MissingParameter",
            "The request must contain the parameter ipPermissions",
        ));
    }
    Ok(out)
}

fn write_vpc(x: &mut XmlOut, ec2: &Ec2, v: &VpcRecord) {
    x.text("vpcId", &v.id)
        .text("ownerId", &ec2.account().account_id)
        .text("state", "available")
        .text("cidrBlock", &v.cidr);
    x.open("cidrBlockAssociationSet", None).open("item", None);
    x.text("cidrBlock", &v.cidr).text("associationId", &format!("vpc-cidr-assoc-{}", &v.id[4..]));
    x.open("cidrBlockState", None).text("state", "associated").close();
    x.close().close();
    x.text("dhcpOptionsId", "dopt-00000000000000000")
        .text("instanceTenancy", "default")
        .bool("isDefault", v.is_default);
    tag_set(x, &v.tags);
}

fn write_subnet(x: &mut XmlOut, ec2: &Ec2, s: &SubnetRecord) {
    let account = ec2.account();
    let free = ec2::network::Cidr::parse(&s.cidr)
        .map(|c| (c.size() as usize).saturating_sub(5 + s.used.len()))
        .unwrap_or(0);
    x.text("subnetId", &s.id)
        .text(
            "subnetArn",
            &format!("arn:aws:ec2:{}:{}:subnet/{}", account.region, account.account_id, s.id),
        )
        .text("state", "available")
        .text("vpcId", &s.vpc_id)
        .text("cidrBlock", &s.cidr)
        .text("availableIpAddressCount", &free.to_string())
        .text("availabilityZone", &s.zone)
        .text("availabilityZoneId", &super::zone_id(&account.region, &s.zone))
        .bool("defaultForAz", s.default_for_az)
        .bool("mapPublicIpOnLaunch", s.map_public_ip)
        .text("ownerId", &account.account_id)
        .bool("assignIpv6AddressOnCreation", false);
    x.open("ipv6CidrBlockAssociationSet", None).close();
    tag_set(x, &s.tags);
}

/// A group's rules as EC2 lists them: one permission per protocol and port range, with its
/// ranges and group pairs.
fn write_permissions(x: &mut XmlOut, name: &str, rules: &[Rule], owner: &str) {
    /// Protocol and port range.
    type Permission = (String, Option<i32>, Option<i32>);
    let mut grouped: IndexMap<Permission, Vec<&Rule>> = IndexMap::new();
    for r in rules {
        grouped.entry((r.protocol.clone(), r.from_port, r.to_port)).or_default().push(r);
    }
    x.open(name, None);
    for ((protocol, from, to), rules) in grouped {
        x.open("item", None).text("ipProtocol", &protocol);
        if protocol != "-1" {
            x.opt("fromPort", from.map(|p| p.to_string()).as_deref());
            x.opt("toPort", to.map(|p| p.to_string()).as_deref());
        }
        x.open("groups", None);
        for r in rules.iter().filter(|r| r.source_group.is_some()) {
            x.open("item", None).text("userId", owner);
            x.opt("groupId", r.source_group.as_deref())
                .opt("description", r.description.as_deref());
            x.close();
        }
        x.close().open("ipRanges", None);
        for r in rules.iter().filter(|r| r.cidr.as_deref().is_some_and(|c| !c.contains(':'))) {
            x.open("item", None).opt("cidrIp", r.cidr.as_deref());
            x.opt("description", r.description.as_deref()).close();
        }
        x.close().open("ipv6Ranges", None);
        for r in rules.iter().filter(|r| r.cidr.as_deref().is_some_and(|c| c.contains(':'))) {
            x.open("item", None).opt("cidrIpv6", r.cidr.as_deref());
            x.opt("description", r.description.as_deref()).close();
        }
        x.close().open("prefixListIds", None).close();
        x.close();
    }
    x.close();
}

fn write_group(x: &mut XmlOut, ec2: &Ec2, g: &SecurityGroupRecord) {
    let account = ec2.account();
    x.text("ownerId", &account.account_id)
        .text("groupId", &g.id)
        .text("groupName", &g.name)
        .text("groupDescription", &g.description)
        .opt("vpcId", g.vpc_id.as_deref());
    write_permissions(x, "ipPermissions", &g.ingress, &account.account_id);
    write_permissions(x, "ipPermissionsEgress", &g.egress, &account.account_id);
    x.text(
        "securityGroupArn",
        &format!("arn:aws:ec2:{}:{}:security-group/{}", account.region, account.account_id, g.id),
    );
    tag_set(x, &g.tags);
}

/// Runs one of its `ACTIONS`.
pub(super) fn run(ec2: &Ec2, action: &str, q: &QueryInput, x: &mut XmlOut) -> Result<(), ApiError> {
    let tree = q.tree();
    let required = |k: &str| super::required(&tree, k);
    let filters = Filters::from(q);
    let account = ec2.account().account_id.clone();
    match action {
        "DescribeVpcs" => {
            let ids = strings(&tree, "VpcId");
            let mut all = ec2.vpcs()?;
            super::check_ids(&ids, &all, |v| &v.id, "InvalidVpcID.NotFound", "vpc ID")?;
            all.retain(|v| ids.is_empty() || ids.contains(&v.id));
            let chosen = filters.select(
                all,
                |v| &v.tags,
                |v, name| {
                    Some(match name {
                        "vpc-id" => vec![v.id.clone()],
                        "cidr" | "cidr-block-association.cidr-block" | "cidrBlock" => {
                            vec![v.cidr.clone()]
                        }
                        "is-default" | "isDefault" => vec![v.is_default.to_string()],
                        "state" => vec!["available".into()],
                        "owner-id" => vec![account.clone()],
                        "dhcp-options-id" => vec!["dopt-00000000000000000".into()],
                        _ => return None,
                    })
                },
            )?;
            write_page(x, q, "vpcSet", chosen, |v| &v.id, |x, v| write_vpc(x, ec2, v))?;
        }
        "CreateVpc" => {
            let vpc = ec2.create_vpc(CreateVpc {
                cidr: required("CidrBlock")?,
                tags: tag_specifications(&tree, "vpc"),
            })?;
            x.open("vpc", None);
            write_vpc(x, ec2, &vpc);
            x.close();
        }
        "DeleteVpc" => {
            ec2.delete_vpc(&required("VpcId")?)?;
            x.bool("return", true);
        }
        "DescribeSubnets" => {
            let ids = strings(&tree, "SubnetId");
            let mut all = ec2.subnets()?;
            super::check_ids(&ids, &all, |s| &s.id, "InvalidSubnetID.NotFound", "subnet ID")?;
            all.retain(|s| ids.is_empty() || ids.contains(&s.id));
            let region = ec2.account().region.clone();
            let chosen = filters.select(
                all,
                |s| &s.tags,
                |s, name| {
                    Some(match name {
                        "subnet-id" => vec![s.id.clone()],
                        "vpc-id" => vec![s.vpc_id.clone()],
                        "availability-zone" | "availabilityZone" => vec![s.zone.clone()],
                        "availability-zone-id" | "availabilityZoneId" => {
                            vec![super::zone_id(&region, &s.zone)]
                        }
                        "cidr" | "cidr-block" | "cidrBlock" => vec![s.cidr.clone()],
                        "default-for-az" | "defaultForAz" => vec![s.default_for_az.to_string()],
                        "map-public-ip-on-launch" => vec![s.map_public_ip.to_string()],
                        "state" => vec!["available".into()],
                        "owner-id" => vec![account.clone()],
                        _ => return None,
                    })
                },
            )?;
            write_page(x, q, "subnetSet", chosen, |s| &s.id, |x, s| write_subnet(x, ec2, s))?;
        }
        "CreateSubnet" => {
            let subnet = ec2.create_subnet(CreateSubnet {
                vpc_id: required("VpcId")?,
                cidr: required("CidrBlock")?,
                zone: text(&tree, "AvailabilityZone"),
                map_public_ip: false,
                tags: tag_specifications(&tree, "subnet"),
            })?;
            x.open("subnet", None);
            write_subnet(x, ec2, &subnet);
            x.close();
        }
        "DeleteSubnet" => {
            ec2.delete_subnet(&required("SubnetId")?)?;
            x.bool("return", true);
        }
        "ModifySubnetAttribute" => {
            let id = required("SubnetId")?;
            let value = tree.get("MapPublicIpOnLaunch").and_then(|m| text(m, "Value")).ok_or_else(
                || {
                    ApiError::service(
                        "InvalidParameterCombination",
                        "No attribute to modify: give MapPublicIpOnLaunch.Value",
                    )
                },
            )?;
            ec2.set_map_public_ip(&id, value.eq_ignore_ascii_case("true"))?;
            x.bool("return", true);
        }
        "DescribeSecurityGroups" => {
            let ids = strings(&tree, "GroupId");
            let names = strings(&tree, "GroupName");
            let mut all = ec2.security_groups()?;
            super::check_ids(&ids, &all, |g| &g.id, "InvalidGroup.NotFound", "security group")?;
            super::check_ids(&names, &all, |g| &g.name, "InvalidGroup.NotFound", "security group")?;
            all.retain(|g| {
                (ids.is_empty() || ids.contains(&g.id))
                    && (names.is_empty() || names.contains(&g.name))
            });
            let ports = |rules: &[Rule], from: bool| -> Vec<String> {
                rules
                    .iter()
                    .filter_map(|r| if from { r.from_port } else { r.to_port })
                    .map(|p| p.to_string())
                    .collect()
            };
            let chosen = filters.select(
                all,
                |g| &g.tags,
                |g, name| {
                    Some(match name {
                        "group-id" => vec![g.id.clone()],
                        "group-name" => vec![g.name.clone()],
                        "description" => vec![g.description.clone()],
                        "vpc-id" => g.vpc_id.clone().into_iter().collect(),
                        "owner-id" => vec![account.clone()],
                        "ip-permission.protocol" => {
                            g.ingress.iter().map(|r| r.protocol.clone()).collect()
                        }
                        "ip-permission.from-port" => ports(&g.ingress, true),
                        "ip-permission.to-port" => ports(&g.ingress, false),
                        "ip-permission.cidr" => {
                            g.ingress.iter().filter_map(|r| r.cidr.clone()).collect()
                        }
                        "ip-permission.group-id" => {
                            g.ingress.iter().filter_map(|r| r.source_group.clone()).collect()
                        }
                        _ => return None,
                    })
                },
            )?;
            write_page(
                x,
                q,
                "securityGroupInfo",
                chosen,
                |g| &g.id,
                |x, g| write_group(x, ec2, g),
            )?;
        }
        "CreateSecurityGroup" => {
            let group = ec2.create_security_group(CreateSecurityGroup {
                name: required("GroupName")?,
                description: required("GroupDescription")?,
                vpc_id: text(&tree, "VpcId"),
                ingress: Vec::new(),
                egress: None,
                tags: tag_specifications(&tree, "security-group"),
            })?;
            let region = &ec2.account().region;
            x.bool("return", true).text("groupId", &group.id).text(
                "securityGroupArn",
                &format!("arn:aws:ec2:{region}:{account}:security-group/{}", group.id),
            );
            tag_set(x, &group.tags);
        }
        "DeleteSecurityGroup" => {
            let group = text(&tree, "GroupId").or_else(|| text(&tree, "GroupName"));
            let group = group.ok_or_else(|| {
                ApiError::service(
                    "MissingParameter",
                    "The request must contain the parameter groupName or groupId",
                )
            })?;
            ec2.delete_security_group(&group)?;
            x.bool("return", true).text("groupId", &group);
        }
        "AuthorizeSecurityGroupIngress"
        | "AuthorizeSecurityGroupEgress"
        | "RevokeSecurityGroupIngress"
        | "RevokeSecurityGroupEgress" => {
            let group = text(&tree, "GroupId").or_else(|| text(&tree, "GroupName"));
            let group = group.ok_or_else(|| {
                ApiError::service(
                    "MissingParameter",
                    "The request must contain the parameter groupId",
                )
            })?;
            let egress = action.ends_with("Egress");
            let rules = rules(ec2, &tree)?;
            x.bool("return", true);
            if action.starts_with("Authorize") {
                let record = ec2.authorize(&group, egress, rules.clone())?;
                x.open("securityGroupRuleSet", None);
                for r in &rules {
                    x.open("item", None)
                        .text("securityGroupRuleId", &aws_ids::ec2_id("sgr"))
                        .text("groupId", &record.id)
                        .text("groupOwnerId", &account)
                        .bool("isEgress", egress)
                        .text("ipProtocol", &r.protocol)
                        .text("fromPort", &r.from_port.unwrap_or(-1).to_string())
                        .text("toPort", &r.to_port.unwrap_or(-1).to_string())
                        .opt("cidrIpv4", r.cidr.as_deref())
                        .opt("description", r.description.as_deref());
                    if let Some(g) = &r.source_group {
                        x.open("referencedGroupInfo", None).text("groupId", g).close();
                    }
                    x.close();
                }
                x.close();
            } else {
                ec2.revoke(&group, egress, &rules)?;
            }
        }
        "CreateTags" => {
            let ids = strings(&tree, "ResourceId");
            let tags: IndexMap<String, String> = list(&tree, "Tag")
                .filter_map(|t| Some((text(t, "Key")?, text(t, "Value").unwrap_or_default())))
                .collect();
            ec2.create_tags(&ids, &tags)?;
            x.bool("return", true);
        }
        "DeleteTags" => {
            let ids = strings(&tree, "ResourceId");
            let tags: Vec<(String, Option<String>)> = list(&tree, "Tag")
                .filter_map(|t| Some((text(t, "Key")?, text(t, "Value"))))
                .collect();
            ec2.delete_tags(&ids, &tags)?;
            x.bool("return", true);
        }
        "DescribeTags" => {
            let mut rows: Vec<(String, &'static str, String, String)> = Vec::new();
            let mut add = |id: &str, kind: &'static str, tags: &IndexMap<String, String>| {
                for (k, v) in tags {
                    rows.push((id.to_string(), kind, k.clone(), v.clone()));
                }
            };
            for v in ec2.vpcs()? {
                add(&v.id, "vpc", &v.tags);
            }
            for s in ec2.subnets()? {
                add(&s.id, "subnet", &s.tags);
            }
            for g in ec2.security_groups()? {
                add(&g.id, "security-group", &g.tags);
            }
            for i in ec2.instances()? {
                add(&i.id, "instance", &i.tags);
            }
            let mut chosen = Vec::new();
            for row in rows {
                let keep = filters.check(&IndexMap::new(), |name| {
                    Some(match name {
                        "resource-id" => vec![row.0.clone()],
                        "resource-type" => vec![row.1.to_string()],
                        "key" => vec![row.2.clone()],
                        "value" => vec![row.3.clone()],
                        _ => return None,
                    })
                })?;
                if keep {
                    chosen.push(row);
                }
            }
            x.open("tagSet", None);
            for (id, kind, k, v) in &chosen {
                x.open("item", None)
                    .text("resourceId", id)
                    .text("resourceType", kind)
                    .text("key", k)
                    .text("value", v)
                    .close();
            }
            x.close();
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    Ok(())
}
