//! How a VPC reaches the rest of the world, recorded as EC2 keeps it: internet gateways and
//! their attachments, route tables with routes and subnet associations (each VPC has a main
//! table with its `local` route), NAT gateways and Elastic IPs. Traffic on this machine is
//! all loopback, so routes decide nothing; they are kept, checked and described.

use super::*;

fn rejected(code: &'static str, message: impl Into<String>) -> Ec2Error {
    Ec2Error::Rejected { code, message: message.into() }
}

fn no_gateway(id: &str) -> Ec2Error {
    rejected(
        "InvalidInternetGatewayID.NotFound",
        format!("The internetGateway ID '{id}' does not exist"),
    )
}

fn no_table(id: &str) -> Ec2Error {
    rejected("InvalidRouteTableID.NotFound", format!("The routeTable ID '{id}' does not exist"))
}

/// A public address from TEST-NET-2 (what instances' public IPs look like too).
pub(crate) fn public_address() -> String {
    format!("198.51.100.{}", 1 + fastrand::u8(..254))
}

impl Ec2 {
    // === internet gateways ===

    pub fn gateways(&self) -> Result<Vec<GatewayRecord>, Ec2Error> {
        Ok(self.store.list::<GatewayRecord>(GATEWAYS, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn create_internet_gateway(
        &self,
        tags: IndexMap<String, String>,
    ) -> Result<GatewayRecord, Ec2Error> {
        let record = GatewayRecord { id: aws_ids::ec2_id("igw"), vpc_id: None, tags };
        self.store.put(GATEWAYS, &record.id, &record)?;
        Ok(record)
    }

    pub fn attach_internet_gateway(&self, id: &str, vpc_id: &str) -> Result<(), Ec2Error> {
        let mut g = self.store.get::<GatewayRecord>(GATEWAYS, id)?.ok_or_else(|| no_gateway(id))?;
        if self.vpc(vpc_id)?.is_none() {
            return Err(rejected(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{vpc_id}' does not exist"),
            ));
        }
        if let Some(other) = &g.vpc_id {
            return Err(rejected(
                "Resource.AlreadyAssociated",
                format!("resource {id} is already attached to network {other}"),
            ));
        }
        g.vpc_id = Some(vpc_id.to_string());
        self.store.put(GATEWAYS, id, &g)?;
        Ok(())
    }

    pub fn detach_internet_gateway(&self, id: &str, vpc_id: &str) -> Result<(), Ec2Error> {
        let mut g = self.store.get::<GatewayRecord>(GATEWAYS, id)?.ok_or_else(|| no_gateway(id))?;
        if g.vpc_id.as_deref() != Some(vpc_id) {
            return Err(rejected(
                "Gateway.NotAttached",
                format!("resource {id} is not attached to network {vpc_id}"),
            ));
        }
        g.vpc_id = None;
        self.store.put(GATEWAYS, id, &g)?;
        Ok(())
    }

    pub fn delete_internet_gateway(&self, id: &str) -> Result<(), Ec2Error> {
        let g = self.store.get::<GatewayRecord>(GATEWAYS, id)?.ok_or_else(|| no_gateway(id))?;
        if g.vpc_id.is_some() {
            return Err(rejected(
                "DependencyViolation",
                format!("The internetGateway '{id}' has dependencies and cannot be deleted."),
            ));
        }
        self.store.delete(GATEWAYS, id)?;
        Ok(())
    }

    // === route tables ===

    pub fn route_tables(&self) -> Result<Vec<RouteTableRecord>, Ec2Error> {
        Ok(self
            .store
            .list::<RouteTableRecord>(ROUTE_TABLES, "")?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    fn existing_table(&self, id: &str) -> Result<RouteTableRecord, Ec2Error> {
        self.store.get::<RouteTableRecord>(ROUTE_TABLES, id)?.ok_or_else(|| no_table(id))
    }

    /// A VPC's main table, with its `local` route (made with the VPC).
    pub(crate) fn create_main_table(&self, vpc: &VpcRecord) -> Result<(), Ec2Error> {
        let record = RouteTableRecord {
            id: aws_ids::ec2_id("rtb"),
            vpc_id: vpc.id.clone(),
            main: true,
            routes: vec![Route { destination: vpc.cidr.clone(), target: "local".into() }],
            associations: Vec::new(),
            tags: IndexMap::new(),
        };
        self.store.put(ROUTE_TABLES, &record.id, &record)?;
        Ok(())
    }

    pub fn create_route_table(
        &self,
        vpc_id: &str,
        tags: IndexMap<String, String>,
    ) -> Result<RouteTableRecord, Ec2Error> {
        let vpc = self.vpc(vpc_id)?.ok_or_else(|| {
            rejected("InvalidVpcID.NotFound", format!("The vpc ID '{vpc_id}' does not exist"))
        })?;
        let record = RouteTableRecord {
            id: aws_ids::ec2_id("rtb"),
            vpc_id: vpc.id.clone(),
            main: false,
            routes: vec![Route { destination: vpc.cidr, target: "local".into() }],
            associations: Vec::new(),
            tags,
        };
        self.store.put(ROUTE_TABLES, &record.id, &record)?;
        Ok(record)
    }

    /// CreateRoute: to an internet gateway, a NAT gateway or an instance that exists.
    pub fn create_route(
        &self,
        table: &str,
        destination: &str,
        target: &str,
    ) -> Result<(), Ec2Error> {
        let mut t = self.existing_table(table)?;
        if Cidr::parse(destination).is_none() {
            return Err(rejected(
                "InvalidParameterValue",
                format!(
                    "Value ({destination}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."
                ),
            ));
        }
        let known = match target.split('-').next().unwrap_or("") {
            "igw" => self.store.get::<GatewayRecord>(GATEWAYS, target)?.is_some(),
            "nat" => self.store.get::<NatGatewayRecord>(NAT_GATEWAYS, target)?.is_some(),
            "i" => self.instance(target)?.is_some(),
            _ => false,
        };
        if !known {
            return Err(match target.split('-').next().unwrap_or("") {
                "igw" => rejected(
                    "InvalidGatewayID.NotFound",
                    format!("The gateway ID '{target}' does not exist"),
                ),
                "nat" => rejected(
                    "InvalidNatGatewayID.NotFound",
                    format!("The natGateway ID '{target}' does not exist"),
                ),
                _ => rejected("InvalidParameterValue", format!("Invalid route target: {target}")),
            });
        }
        if t.routes.iter().any(|r| r.destination == destination) {
            return Err(rejected(
                "RouteAlreadyExists",
                format!("The route identified by {destination} already exists."),
            ));
        }
        t.routes.push(Route { destination: destination.to_string(), target: target.to_string() });
        self.store.put(ROUTE_TABLES, table, &t)?;
        Ok(())
    }

    pub fn delete_route(&self, table: &str, destination: &str) -> Result<(), Ec2Error> {
        let mut t = self.existing_table(table)?;
        let before = t.routes.len();
        t.routes.retain(|r| r.destination != destination || r.target == "local");
        if t.routes.len() == before {
            return Err(rejected(
                "InvalidRoute.NotFound",
                format!(
                    "no route with destination-cidr-block {destination} in route table {table}"
                ),
            ));
        }
        self.store.put(ROUTE_TABLES, table, &t)?;
        Ok(())
    }

    /// AssociateRouteTable: a subnet has one table; returns the association id.
    pub fn associate_route_table(&self, table: &str, subnet: &str) -> Result<String, Ec2Error> {
        let mut t = self.existing_table(table)?;
        let s = self.subnet(subnet)?.ok_or_else(|| {
            rejected("InvalidSubnetID.NotFound", format!("The subnet ID '{subnet}' does not exist"))
        })?;
        if s.vpc_id != t.vpc_id {
            return Err(rejected(
                "InvalidParameterValue",
                format!("Route table {table} and subnet {subnet} belong to different networks"),
            ));
        }
        if self.route_tables()?.iter().any(|o| o.associations.iter().any(|(_, sub)| sub == subnet))
        {
            return Err(rejected(
                "Resource.AlreadyAssociated",
                format!(
                    "the specified association for route table {table} conflicts with an existing association"
                ),
            ));
        }
        let id = aws_ids::ec2_id("rtbassoc");
        t.associations.push((id.clone(), subnet.to_string()));
        self.store.put(ROUTE_TABLES, table, &t)?;
        Ok(id)
    }

    pub fn disassociate_route_table(&self, association: &str) -> Result<(), Ec2Error> {
        for mut t in self.route_tables()? {
            if t.associations.iter().any(|(a, _)| a == association) {
                t.associations.retain(|(a, _)| a != association);
                self.store.put(ROUTE_TABLES, &t.id.clone(), &t)?;
                return Ok(());
            }
        }
        Err(rejected(
            "InvalidAssociationID.NotFound",
            format!("The association ID '{association}' does not exist"),
        ))
    }

    pub fn delete_route_table(&self, id: &str) -> Result<(), Ec2Error> {
        let t = self.existing_table(id)?;
        if t.main || !t.associations.is_empty() {
            return Err(rejected(
                "DependencyViolation",
                format!("The routeTable '{id}' has dependencies and cannot be deleted."),
            ));
        }
        self.store.delete(ROUTE_TABLES, id)?;
        Ok(())
    }

    // === Elastic IPs and NAT gateways ===

    pub fn addresses(&self) -> Result<Vec<AddressRecord>, Ec2Error> {
        Ok(self.store.list::<AddressRecord>(ADDRESSES, "")?.into_iter().map(|(_, r)| r).collect())
    }

    pub fn allocate_address(
        &self,
        tags: IndexMap<String, String>,
    ) -> Result<AddressRecord, Ec2Error> {
        let record = AddressRecord {
            allocation_id: aws_ids::ec2_id("eipalloc"),
            public_ip: public_address(),
            association_id: None,
            associated_with: None,
            tags,
        };
        self.store.put(ADDRESSES, &record.allocation_id, &record)?;
        Ok(record)
    }

    pub fn release_address(&self, allocation: &str) -> Result<(), Ec2Error> {
        let a = self.store.get::<AddressRecord>(ADDRESSES, allocation)?.ok_or_else(|| {
            rejected(
                "InvalidAllocationID.NotFound",
                format!("The allocation ID '{allocation}' does not exist"),
            )
        })?;
        if a.associated_with.is_some() {
            return Err(rejected(
                "InvalidIPAddress.InUse",
                format!("Address {} is in use.", a.public_ip),
            ));
        }
        self.store.delete(ADDRESSES, allocation)?;
        Ok(())
    }

    pub fn nat_gateways(&self) -> Result<Vec<NatGatewayRecord>, Ec2Error> {
        Ok(self
            .store
            .list::<NatGatewayRecord>(NAT_GATEWAYS, "")?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// CreateNatGateway: a public one takes an Elastic IP that is free.
    pub fn create_nat_gateway(
        &self,
        subnet: &str,
        allocation: Option<&str>,
        private: bool,
        tags: IndexMap<String, String>,
    ) -> Result<NatGatewayRecord, Ec2Error> {
        let mut s = self.subnet(subnet)?.ok_or_else(|| {
            rejected("InvalidSubnetID.NotFound", format!("The subnet ID '{subnet}' does not exist"))
        })?;
        let id = aws_ids::ec2_id("nat");
        let address = match (private, allocation) {
            (true, _) => None,
            (false, None) => {
                return Err(rejected(
                    "MissingParameter",
                    "The request must contain the parameter AllocationId",
                ));
            }
            (false, Some(a)) => {
                let mut address =
                    self.store.get::<AddressRecord>(ADDRESSES, a)?.ok_or_else(|| {
                        rejected(
                            "InvalidAllocationID.NotFound",
                            format!("The allocation ID '{a}' does not exist"),
                        )
                    })?;
                if address.associated_with.is_some() {
                    return Err(rejected(
                        "Resource.AlreadyAssociated",
                        format!("Elastic IP address [{a}] is already associated"),
                    ));
                }
                address.associated_with = Some(id.clone());
                address.association_id = Some(aws_ids::ec2_id("eipassoc"));
                Some(address)
            }
        };
        let private_ip = allocate_ip(&mut s).ok_or_else(|| {
            rejected(
                "InsufficientFreeAddressesInSubnet",
                format!("There are not enough free addresses in subnet '{subnet}'"),
            )
        })?;
        let record = NatGatewayRecord {
            id: id.clone(),
            subnet_id: s.id.clone(),
            vpc_id: s.vpc_id.clone(),
            allocation_id: address.as_ref().map(|a| a.allocation_id.clone()),
            public_ip: address.as_ref().map(|a| a.public_ip.clone()),
            private_ip: private_ip.to_string(),
            connectivity: if private { "private" } else { "public" }.into(),
            state: "available".into(),
            created: clock::iso8601(self.clock.now()),
            tags,
        };
        self.store.put(SUBNETS, &s.id, &s)?;
        if let Some(a) = &address {
            self.store.put(ADDRESSES, &a.allocation_id, a)?;
        }
        self.store.put(NAT_GATEWAYS, &id, &record)?;
        Ok(record)
    }

    /// DeleteNatGateway: it is `deleted` (and stays listed, as in EC2), its address is free.
    pub fn delete_nat_gateway(&self, id: &str) -> Result<(), Ec2Error> {
        let mut n = self.store.get::<NatGatewayRecord>(NAT_GATEWAYS, id)?.ok_or_else(|| {
            rejected("NatGatewayNotFound", format!("The Nat Gateway {id} was not found"))
        })?;
        if let Some(a) = &n.allocation_id
            && let Some(mut address) = self.store.get::<AddressRecord>(ADDRESSES, a)?
        {
            address.associated_with = None;
            address.association_id = None;
            self.store.put(ADDRESSES, a, &address)?;
        }
        if let Some(mut s) = self.subnet(&n.subnet_id)? {
            release_ip(&mut s, &n.private_ip);
            self.store.put(SUBNETS, &s.id, &s)?;
        }
        n.state = "deleted".into();
        self.store.put(NAT_GATEWAYS, id, &n)?;
        Ok(())
    }
}
