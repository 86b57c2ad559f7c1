//! EC2's routing actions: internet gateways, route tables and routes, NAT gateways and
//! Elastic IPs, answered in EC2's XML.

use ec2::Ec2;
use ec2::network::{NatGatewayRecord, RouteTableRecord};
use serde_json::Value as Json;

use super::{Filters, tag_set, tag_specifications, write_page};
use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const ACTIONS: &[&str] = &[
    "CreateInternetGateway",
    "AttachInternetGateway",
    "DetachInternetGateway",
    "DeleteInternetGateway",
    "DescribeInternetGateways",
    "CreateRouteTable",
    "DeleteRouteTable",
    "DescribeRouteTables",
    "CreateRoute",
    "DeleteRoute",
    "AssociateRouteTable",
    "DisassociateRouteTable",
    "AllocateAddress",
    "ReleaseAddress",
    "DescribeAddresses",
    "CreateNatGateway",
    "DeleteNatGateway",
    "DescribeNatGateways",
];

fn write_table(x: &mut XmlOut, owner: &str, t: &RouteTableRecord) {
    x.text("routeTableId", &t.id).text("vpcId", &t.vpc_id).text("ownerId", owner);
    x.open("routeSet", None);
    for r in &t.routes {
        x.open("item", None).text("destinationCidrBlock", &r.destination);
        let key = match r.target.split('-').next().unwrap_or("") {
            "nat" => "natGatewayId",
            "i" => "instanceId",
            _ => "gatewayId",
        };
        x.text(key, &r.target)
            .text("state", "active")
            .text("origin", if r.target == "local" { "CreateRouteTable" } else { "CreateRoute" })
            .close();
    }
    x.close().open("associationSet", None);
    if t.main {
        x.open("item", None)
            .text("routeTableAssociationId", &format!("rtbassoc-main{}", &t.id[4..]))
            .text("routeTableId", &t.id)
            .bool("main", true);
        x.open("associationState", None).text("state", "associated").close().close();
    }
    for (id, subnet) in &t.associations {
        x.open("item", None)
            .text("routeTableAssociationId", id)
            .text("routeTableId", &t.id)
            .text("subnetId", subnet)
            .bool("main", false);
        x.open("associationState", None).text("state", "associated").close().close();
    }
    x.close();
    tag_set(x, &t.tags);
}

fn write_nat(x: &mut XmlOut, n: &NatGatewayRecord) {
    x.text("natGatewayId", &n.id)
        .text("subnetId", &n.subnet_id)
        .text("vpcId", &n.vpc_id)
        .text("state", &n.state)
        .text("connectivityType", &n.connectivity)
        .text("createTime", &n.created);
    x.open("natGatewayAddressSet", None).open("item", None);
    x.opt("allocationId", n.allocation_id.as_deref())
        .opt("publicIp", n.public_ip.as_deref())
        .text("privateIp", &n.private_ip)
        .bool("isPrimary", true)
        .text("status", "succeeded");
    x.close().close();
    tag_set(x, &n.tags);
}

/// Runs one of its `ACTIONS`.
pub(super) fn run(ec2: &Ec2, action: &str, q: &QueryInput, x: &mut XmlOut) -> Result<(), ApiError> {
    let tree = q.tree();
    let text = |k: &str| tree.get(k).and_then(Json::as_str).map(str::to_string);
    let required = |k: &str| super::required(&tree, k);
    let filters = Filters::from(q);
    let owner = ec2.account().account_id.clone();
    match action {
        "CreateInternetGateway" => {
            let g = ec2.create_internet_gateway(tag_specifications(&tree, "internet-gateway"))?;
            x.open("internetGateway", None).text("internetGatewayId", &g.id);
            x.open("attachmentSet", None).close().text("ownerId", &owner);
            tag_set(x, &g.tags);
            x.close();
        }
        "AttachInternetGateway" => {
            ec2.attach_internet_gateway(&required("InternetGatewayId")?, &required("VpcId")?)?;
            x.bool("return", true);
        }
        "DetachInternetGateway" => {
            ec2.detach_internet_gateway(&required("InternetGatewayId")?, &required("VpcId")?)?;
            x.bool("return", true);
        }
        "DeleteInternetGateway" => {
            ec2.delete_internet_gateway(&required("InternetGatewayId")?)?;
            x.bool("return", true);
        }
        "DescribeInternetGateways" => {
            let ids = q.list_flat("InternetGatewayId");
            let mut all = ec2.gateways()?;
            super::check_ids(
                &ids,
                &all,
                |g| &g.id,
                "InvalidInternetGatewayID.NotFound",
                "internetGateway ID",
            )?;
            all.retain(|g| ids.is_empty() || ids.contains(&g.id));
            let chosen = filters.select(
                all,
                |g| &g.tags,
                |g, name| {
                    Some(match name {
                        "internet-gateway-id" => vec![g.id.clone()],
                        "attachment.vpc-id" => g.vpc_id.clone().into_iter().collect(),
                        "attachment.state" => {
                            g.vpc_id.as_ref().map(|_| "available".to_string()).into_iter().collect()
                        }
                        "owner-id" => vec![owner.clone()],
                        _ => return None,
                    })
                },
            )?;
            write_page(
                x,
                q,
                "internetGatewaySet",
                chosen,
                |g| &g.id,
                |x, g| {
                    x.text("internetGatewayId", &g.id).text("ownerId", &owner);
                    x.open("attachmentSet", None);
                    if let Some(v) = &g.vpc_id {
                        x.open("item", None).text("vpcId", v).text("state", "available").close();
                    }
                    x.close();
                    tag_set(x, &g.tags);
                },
            )?;
        }
        "CreateRouteTable" => {
            let t = ec2.create_route_table(
                &required("VpcId")?,
                tag_specifications(&tree, "route-table"),
            )?;
            x.open("routeTable", None);
            write_table(x, &owner, &t);
            x.close();
        }
        "DeleteRouteTable" => {
            ec2.delete_route_table(&required("RouteTableId")?)?;
            x.bool("return", true);
        }
        "DescribeRouteTables" => {
            let ids = q.list_flat("RouteTableId");
            let mut all = ec2.route_tables()?;
            super::check_ids(
                &ids,
                &all,
                |t| &t.id,
                "InvalidRouteTableID.NotFound",
                "routeTable ID",
            )?;
            all.retain(|t| ids.is_empty() || ids.contains(&t.id));
            let chosen = filters.select(
                all,
                |t| &t.tags,
                |t, name| {
                    Some(match name {
                        "route-table-id" => vec![t.id.clone()],
                        "vpc-id" => vec![t.vpc_id.clone()],
                        "association.main" => vec![t.main.to_string()],
                        "association.subnet-id" => {
                            t.associations.iter().map(|(_, s)| s.clone()).collect()
                        }
                        "association.route-table-association-id" => {
                            t.associations.iter().map(|(a, _)| a.clone()).collect()
                        }
                        "route.destination-cidr-block" => {
                            t.routes.iter().map(|r| r.destination.clone()).collect()
                        }
                        "route.gateway-id" | "route.nat-gateway-id" => {
                            t.routes.iter().map(|r| r.target.clone()).collect()
                        }
                        "owner-id" => vec![owner.clone()],
                        _ => return None,
                    })
                },
            )?;
            write_page(x, q, "routeTableSet", chosen, |t| &t.id, |x, t| write_table(x, &owner, t))?;
        }
        "CreateRoute" | "DeleteRoute" => {
            let table = required("RouteTableId")?;
            let destination = required("DestinationCidrBlock")?;
            if action == "CreateRoute" {
                let target = ["GatewayId", "NatGatewayId", "InstanceId"]
                    .iter()
                    .find_map(|k| text(k))
                    .ok_or_else(|| {
                        ApiError::service(
                            "MissingParameter",
                            "The request must contain exactly one of gatewayId, natGatewayId, instanceId",
                        )
                    })?;
                ec2.create_route(&table, &destination, &target)?;
            } else {
                ec2.delete_route(&table, &destination)?;
            }
            x.bool("return", true);
        }
        "AssociateRouteTable" => {
            let id =
                ec2.associate_route_table(&required("RouteTableId")?, &required("SubnetId")?)?;
            x.text("associationId", &id);
            x.open("associationState", None).text("state", "associated").close();
        }
        "DisassociateRouteTable" => {
            ec2.disassociate_route_table(&required("AssociationId")?)?;
            x.bool("return", true);
        }
        "AllocateAddress" => {
            let a = ec2.allocate_address(tag_specifications(&tree, "elastic-ip"))?;
            x.text("publicIp", &a.public_ip)
                .text("domain", "vpc")
                .text("allocationId", &a.allocation_id)
                .text("publicIpv4Pool", "amazon")
                .text("networkBorderGroup", &ec2.account().region);
        }
        "ReleaseAddress" => {
            ec2.release_address(&required("AllocationId")?)?;
            x.bool("return", true);
        }
        "DescribeAddresses" => {
            let ids = q.list_flat("AllocationId");
            let ips = q.list_flat("PublicIp");
            let all = ec2.addresses()?;
            super::check_ids(
                &ids,
                &all,
                |a| &a.allocation_id,
                "InvalidAllocationID.NotFound",
                "allocation ID",
            )?;
            x.open("addressesSet", None);
            for a in all {
                let named = (ids.is_empty() || ids.contains(&a.allocation_id))
                    && (ips.is_empty() || ips.contains(&a.public_ip));
                let keep = filters.check(&a.tags, |name| {
                    Some(match name {
                        "allocation-id" => vec![a.allocation_id.clone()],
                        "public-ip" => vec![a.public_ip.clone()],
                        "domain" => vec!["vpc".into()],
                        "association-id" => a.association_id.clone().into_iter().collect(),
                        _ => return None,
                    })
                })?;
                if !named || !keep {
                    continue;
                }
                x.open("item", None)
                    .text("publicIp", &a.public_ip)
                    .text("allocationId", &a.allocation_id)
                    .text("domain", "vpc")
                    .opt("associationId", a.association_id.as_deref());
                tag_set(x, &a.tags);
                x.close();
            }
            x.close();
        }
        "CreateNatGateway" => {
            let private = text("ConnectivityType").as_deref() == Some("private");
            let n = ec2.create_nat_gateway(
                &required("SubnetId")?,
                text("AllocationId").as_deref(),
                private,
                tag_specifications(&tree, "natgateway"),
            )?;
            x.open("natGateway", None);
            write_nat(x, &NatGatewayRecord { state: "pending".into(), ..n });
            x.close();
        }
        "DeleteNatGateway" => {
            let id = required("NatGatewayId")?;
            ec2.delete_nat_gateway(&id)?;
            x.text("natGatewayId", &id);
        }
        "DescribeNatGateways" => {
            let ids = q.list_flat("NatGatewayId");
            let mut all = ec2.nat_gateways()?;
            super::check_ids(&ids, &all, |n| &n.id, "NatGatewayNotFound", "Nat Gateway")?;
            all.retain(|n| ids.is_empty() || ids.contains(&n.id));
            let chosen = filters.select(
                all,
                |n| &n.tags,
                |n, name| {
                    Some(match name {
                        "nat-gateway-id" => vec![n.id.clone()],
                        "subnet-id" => vec![n.subnet_id.clone()],
                        "vpc-id" => vec![n.vpc_id.clone()],
                        "state" => vec![n.state.clone()],
                        _ => return None,
                    })
                },
            )?;
            write_page(x, q, "natGatewaySet", chosen, |n| &n.id, write_nat)?;
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    Ok(())
}
