//! The network model: VPCs and subnets with their CIDRs checked as EC2 checks them, private
//! addresses handed out per subnet, security groups with their rules, public addresses.

use std::net::Ipv4Addr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub(crate) const VPCS: &str = "ec2/vpc";
pub(crate) const SUBNETS: &str = "ec2/subnet";
pub(crate) const GROUPS: &str = "ec2/sg";
pub(crate) const GATEWAYS: &str = "ec2/igw";
pub(crate) const ROUTE_TABLES: &str = "ec2/rtb";
pub(crate) const NAT_GATEWAYS: &str = "ec2/nat";
pub(crate) const ADDRESSES: &str = "ec2/eip";

/// An internet gateway and the VPC it is attached to.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub id: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

/// A route: a destination and where it goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    /// `local`, an internet gateway, a NAT gateway, or an instance.
    pub target: String,
}

/// A route table, its routes and the subnets associated with it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RouteTableRecord {
    pub id: String,
    pub vpc_id: String,
    /// The VPC's main table (subnets with no association use it).
    #[serde(default)]
    pub main: bool,
    pub routes: Vec<Route>,
    /// (association id, subnet id).
    #[serde(default)]
    pub associations: Vec<(String, String)>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

/// A NAT gateway in a subnet, with its Elastic IP.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NatGatewayRecord {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    #[serde(default)]
    pub allocation_id: Option<String>,
    #[serde(default)]
    pub public_ip: Option<String>,
    pub private_ip: String,
    /// `public` or `private`.
    pub connectivity: String,
    /// `available` or `deleted`.
    pub state: String,
    pub created: String,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

/// An Elastic IP address and what it is associated with.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AddressRecord {
    pub allocation_id: String,
    pub public_ip: String,
    #[serde(default)]
    pub association_id: Option<String>,
    /// An instance or a NAT gateway.
    #[serde(default)]
    pub associated_with: Option<String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VpcRecord {
    pub id: String,
    pub cidr: String,
    /// The account's default VPC (`isDefault`).
    #[serde(default)]
    pub is_default: bool,
    /// The security group named `default` that every VPC has.
    #[serde(default)]
    pub default_group: Option<String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubnetRecord {
    pub id: String,
    pub vpc_id: String,
    pub cidr: String,
    pub zone: String,
    #[serde(default)]
    pub map_public_ip: bool,
    /// A default VPC's subnet for its zone (`defaultForAz`).
    #[serde(default)]
    pub default_for_az: bool,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// Host offsets in use (from the start of the CIDR).
    #[serde(default)]
    pub used: Vec<u32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecurityGroupRecord {
    pub id: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub ingress: Vec<Rule>,
    #[serde(default)]
    pub egress: Vec<Rule>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
}

/// A security group rule (ingress or egress).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default)]
    pub source_group: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The stack resource that added this rule (SecurityGroupIngress), to remove it again.
    #[serde(default)]
    pub owner: Option<String>,
}

impl Rule {
    pub fn from_json(j: &Json, owner: Option<&str>) -> Rule {
        let s = |k: &str| {
            j.get(k)
                .and_then(|v| v.as_str().map(str::to_string).or_else(|| Some(v.to_string())))
                .filter(|v| v != "null")
        };
        let n = |k: &str| {
            j.get(k).and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok())).map(|v| v as i32)
        };
        Rule {
            protocol: s("IpProtocol").unwrap_or_else(|| "-1".into()).to_lowercase(),
            from_port: n("FromPort"),
            to_port: n("ToPort"),
            cidr: s("CidrIp").or_else(|| s("CidrIpv6")),
            source_group: s("SourceSecurityGroupId")
                .or_else(|| s("DestinationSecurityGroupId"))
                .or_else(|| s("SourceSecurityGroupName")),
            description: s("Description"),
            owner: owner.map(str::to_string),
        }
    }

    /// The single TCP port this rule opens, if it opens exactly one.
    pub fn single_tcp_port(&self) -> Option<u16> {
        if !(self.protocol == "tcp" || self.protocol == "6") {
            return None;
        }
        match (self.from_port, self.to_port) {
            (Some(a), Some(b)) if a == b && a > 0 => u16::try_from(a).ok(),
            _ => None,
        }
    }
}

/// An IPv4 CIDR block, parsed by the one CIDR parser (cfn-template's, which `Fn::Cidr` uses).
pub use cfn_template::cidr::Ipv4Cidr as Cidr;

/// The next free private address of a subnet: the first four and the last are AWS's.
pub fn allocate_ip(subnet: &mut SubnetRecord) -> Option<Ipv4Addr> {
    let cidr = Cidr::parse(&subnet.cidr)?;
    let size = cidr.size() as u32;
    let offset = (4..size.saturating_sub(1)).find(|o| !subnet.used.contains(o))?;
    subnet.used.push(offset);
    Some(cidr.addr(offset))
}

pub fn release_ip(subnet: &mut SubnetRecord, ip: &str) {
    let (Some(cidr), Ok(ip)) = (Cidr::parse(&subnet.cidr), ip.parse::<Ipv4Addr>()) else { return };
    let offset = u32::from(ip).wrapping_sub(cidr.base);
    subnet.used.retain(|o| *o != offset);
}

/// AWS's wording for service errors surfaced in a resource event.
pub fn handler_error(message: &str, code: u16) -> String {
    format!(
        "Resource handler returned message: \"{message} (Service: Ec2, Status Code: {code}, Request ID: {})\"",
        aws_ids::uuid()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_the_reserved_ones() {
        let mut s = SubnetRecord {
            id: "s".into(),
            vpc_id: "v".into(),
            cidr: "10.0.1.0/28".into(),
            zone: "a".into(),
            map_public_ip: false,
            default_for_az: false,
            tags: Default::default(),
            used: vec![],
        };
        let ips: Vec<String> =
            (0..11).filter_map(|_| allocate_ip(&mut s)).map(|i| i.to_string()).collect();
        assert_eq!(ips.first().map(String::as_str), Some("10.0.1.4"));
        assert_eq!(ips.last().map(String::as_str), Some("10.0.1.14"));
        assert_eq!(ips.len(), 11);
        assert_eq!(allocate_ip(&mut s), None, "/28 holds 11 instances");
        release_ip(&mut s, "10.0.1.7");
        assert_eq!(allocate_ip(&mut s).unwrap().to_string(), "10.0.1.7");
    }
}
