//! Launching: the launch data from a template version, a configuration or instance
//! properties; subnet, address, ports, role and overrides; the instance record.

use super::*;

impl Ec2 {
    // === launching ===

    /// The default subnet of a zone (the first zone's when none is named), for instances
    /// launched without a subnet, as accounts have.
    pub(super) fn default_subnet(&self, zone: Option<&str>) -> Result<SubnetRecord, Ec2Error> {
        let zones = network::zones(&self.config.account.region);
        let index = match zone.filter(|z| !z.is_empty()) {
            None => 0,
            Some(z) => zones.iter().position(|x| x == z).ok_or_else(|| Ec2Error::Rejected {
                code: "InvalidParameterValue",
                message: format!("Invalid availability zone: [{z}]"),
            })?,
        };
        self.subnet(&network::default_subnet_id(index))?.ok_or_else(|| Ec2Error::Rejected {
            code: "VPCIdNotSpecified",
            message: "No default VPC for this user".into(),
        })
    }

    /// The launch data (LaunchTemplateData shape) and where it came from.
    pub(super) fn launch_data(&self, spec: &LaunchSpec) -> Result<(Json, LaunchSource), Ec2Error> {
        match spec {
            LaunchSpec::Template { id_or_name, version } => {
                let t = self
                    .launch_template(id_or_name)?
                    .ok_or_else(|| Ec2Error::Invalid(format!("The specified launch template, with template ID {id_or_name}, does not exist.")))?;
                let v = t.resolve_version(version.as_deref()).ok_or_else(|| {
                    Ec2Error::Invalid(format!(
                        "The specified launch template version {} does not exist.",
                        version.clone().unwrap_or_default()
                    ))
                })?;
                let data = t.versions.get(&v).cloned().unwrap_or(Json::Null);
                Ok((
                    data,
                    LaunchSource::Template { id: t.id.clone(), name: t.name.clone(), version: v },
                ))
            }
            LaunchSpec::Configuration { name } => {
                let c = self.launch_configuration(name)?.ok_or_else(|| {
                    Ec2Error::Invalid(format!("Launch configuration name not found - {name}"))
                })?;
                Ok((c.data.clone(), LaunchSource::Configuration { name: name.clone() }))
            }
            LaunchSpec::Properties(props) => {
                // An instance may name a launch template; its own properties win.
                let mut data = serde_json::Map::new();
                let mut source = LaunchSource::Properties;
                if let Some(lt) = props.get("LaunchTemplate") {
                    let id = lt
                        .get("LaunchTemplateId")
                        .or_else(|| lt.get("LaunchTemplateName"))
                        .and_then(Json::as_str)
                        .unwrap_or_default();
                    let version = lt.get("Version").and_then(|v| {
                        v.as_str().map(str::to_string).or_else(|| Some(v.to_string()))
                    });
                    let (base, s) =
                        self.launch_data(&LaunchSpec::Template { id_or_name: id.into(), version })?;
                    if let Some(m) = base.as_object() {
                        data.extend(m.clone());
                    }
                    source = s;
                }
                if let Some(m) = props.as_object() {
                    for (k, v) in m {
                        if k != "LaunchTemplate" {
                            data.insert(k.clone(), v.clone());
                        }
                    }
                }
                Ok((Json::Object(data), source))
            }
        }
    }

    /// Launches an instance: records it and starts its processes.
    pub async fn launch(&self, request: LaunchRequest) -> Result<InstanceRecord, Ec2Error> {
        let (data, source) = self.launch_data(&request.spec)?;
        let s = |k: &str| props::text(&data, k);
        let interface =
            data.get("NetworkInterfaces").and_then(|n| n.get(0)).cloned().unwrap_or(Json::Null);
        let subnet_id = request
            .subnet_id
            .clone()
            .or_else(|| s("SubnetId"))
            .or_else(|| interface.get("SubnetId").and_then(Json::as_str).map(str::to_string));
        let zone = request.zone.clone().or_else(|| s("AvailabilityZone")).or_else(|| {
            data.get("Placement")
                .and_then(|p| p.get("AvailabilityZone"))
                .and_then(Json::as_str)
                .map(str::to_string)
        });
        let known = match subnet_id.as_deref() {
            Some(id) => self.subnet(id)?,
            None => None,
        };
        let mut subnet = match (known, &subnet_id) {
            (Some(subnet), _) => subnet,
            (None, Some(id)) => {
                return Err(Ec2Error::Rejected {
                    code: "InvalidSubnetID.NotFound",
                    message: format!("The subnet ID '{id}' does not exist"),
                });
            }
            (None, None) => self.default_subnet(zone.as_deref())?,
        };
        if self.failed_zones.lock().contains(&subnet.zone) {
            return Err(Ec2Error::Launch(format!(
                "InsufficientInstanceCapacity: We currently do not have sufficient capacity in the Availability Zone you requested ({}).",
                subnet.zone
            )));
        }
        let private_ip = allocate_ip(&mut subnet).ok_or_else(|| Ec2Error::Launch(format!("There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.", subnet.id)))?;
        self.store.put(SUBNETS, &subnet.id, &subnet)?;
        let public = props::boolean(&interface, "AssociatePublicIpAddress")
            .or_else(|| props::boolean(&data, "AssociatePublicIpAddress"))
            .unwrap_or(subnet.map_public_ip);
        let mut groups: Vec<String> = props::strings(&data, "SecurityGroupIds")
            .into_iter()
            .chain(props::strings(&data, "SecurityGroups"))
            .chain(props::strings(&interface, "Groups"))
            .collect();
        groups.dedup();
        let mut group_ids: Vec<String> = Vec::new();
        for g in &groups {
            let group = self.security_group(g)?.ok_or_else(|| Ec2Error::Rejected {
                code: "InvalidGroup.NotFound",
                message: format!("The security group '{g}' does not exist"),
            })?;
            group_ids.push(group.id);
        }
        if group_ids.is_empty()
            && let Some(vpc) = self.vpc(&subnet.vpc_id)?
            && let Some(default) = vpc.default_group
        {
            // An instance launched with no group gets its VPC's default group.
            group_ids.push(default);
        }
        let profile = data.get("IamInstanceProfile").and_then(|p| {
            p.as_str().map(str::to_string).or_else(|| {
                p.get("Arn").or_else(|| p.get("Name")).and_then(Json::as_str).map(str::to_string)
            })
        });
        let (role, profile_arn) = match &profile {
            Some(p) => self.role_of_profile(p)?,
            None => (None, None),
        };
        let override_ = request
            .override_key
            .as_ref()
            .and_then(|k| self.config.overrides.get(k))
            .or_else(|| self.config.overrides.get("*"))
            .cloned()
            .unwrap_or_default();
        if let Some(key) = s("KeyName").filter(|k| !k.is_empty())
            && self.key_pair(&key)?.is_none()
        {
            return Err(Ec2Error::Rejected {
                code: "InvalidKeyPair.NotFound",
                message: format!("The key pair '{key}' does not exist"),
            });
        }
        let image = match s("ImageId") {
            Some(id) => self.image(&id)?,
            None => None,
        };
        let mut wanted = request.ports.clone();
        wanted.extend(image.iter().flat_map(|i| i.ports.iter().copied()));
        let ports = self.expected_ports(&override_, &wanted, &group_ids)?;
        let id = aws_ids::ec2_id("i");
        let dir = self.config.runtime_dir.join("instances").join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Ec2Error::Launch(format!("cannot create {}: {e}", dir.display())))?;
        let mut tags = request.tags.clone();
        if let Some(specs) = data.get("TagSpecifications").and_then(Json::as_array) {
            for spec in specs
                .iter()
                .filter(|s| s.get("ResourceType").and_then(Json::as_str) == Some("instance"))
            {
                for t in spec.get("Tags").and_then(Json::as_array).into_iter().flatten() {
                    if let (Some(k), Some(v)) =
                        (t.get("Key").and_then(Json::as_str), t.get("Value").and_then(Json::as_str))
                    {
                        tags.insert(k.into(), v.into());
                    }
                }
            }
        }
        for t in data.get("Tags").and_then(Json::as_array).into_iter().flatten() {
            if let (Some(k), Some(v)) =
                (t.get("Key").and_then(Json::as_str), t.get("Value").and_then(Json::as_str))
            {
                tags.insert(k.into(), v.into());
            }
        }
        if let Some(image) = &image {
            self.unpack_image(image, &dir)?;
        }
        let user_data = match &override_.user_data {
            Some(script) => Some(base64::engine::general_purpose::STANDARD.encode(script)),
            None => s("UserData").or_else(|| image.as_ref().and_then(|i| i.user_data.clone())),
        };
        let mut record = InstanceRecord {
            id: id.clone(),
            state: InstanceState::Pending,
            state_reason: None,
            subnet_id: subnet.id.clone(),
            vpc_id: subnet.vpc_id.clone(),
            zone: subnet.zone.clone(),
            private_ip: private_ip.to_string(),
            public_ip: public.then(|| format!("198.51.100.{}", 1 + fastrand_index(253))),
            image_id: override_
                .image
                .clone()
                .or_else(|| s("ImageId"))
                .unwrap_or_else(|| "ami-00000000000000000".into()),
            instance_type: s("InstanceType").unwrap_or_else(|| "m1.small".into()),
            key_name: s("KeyName"),
            security_groups: group_ids,
            role,
            instance_profile_arn: profile_arn,
            user_data,
            launch: source,
            ports,
            launch_time: clock::iso8601(self.clock.now()),
            tags,
            dir,
            http_tokens: data
                .get("MetadataOptions")
                .and_then(|m| m.get("HttpTokens"))
                .and_then(Json::as_str)
                .unwrap_or("optional")
                .to_string(),
            shutdown_behavior: s("InstanceInitiatedShutdownBehavior")
                .unwrap_or_else(|| "stop".into()),
            command: override_.command.clone(),
            extra_env: override_.env.clone(),
            group: request.group.clone(),
        };
        self.set_state(&mut record, InstanceState::Pending, None)?;
        self.start_processes(&mut record).await?;
        Ok(record)
    }

    pub(super) fn role_of_profile(
        &self,
        profile: &str,
    ) -> Result<(Option<String>, Option<String>), Ec2Error> {
        let name = profile.rsplit('/').next().unwrap_or(profile);
        let found = self
            .store
            .list::<InstanceProfileRecord>(INSTANCE_PROFILES, "")?
            .into_iter()
            .map(|(_, p)| p)
            .find(|p| p.name == name || p.arn == profile);
        Ok(match found {
            Some(p) => (p.roles.first().cloned(), Some(p.arn)),
            None => (None, Some(profile.to_string()).filter(|p| p.starts_with("arn:"))),
        })
    }

    /// The ports the app is expected to answer on: the override's, else the target groups'
    /// and the single TCP ports its security groups open (not SSH or RDP), else 80.
    pub(super) fn expected_ports(
        &self,
        o: &InstanceOverride,
        extra: &[u16],
        groups: &[String],
    ) -> Result<Vec<PortMap>, Ec2Error> {
        let mut expected: Vec<u16> = match &o.ports {
            Some(p) => p.clone(),
            None => {
                let mut v: Vec<u16> = extra.to_vec();
                for g in groups {
                    let Some(g) = self.security_group(g)? else { continue };
                    v.extend(
                        g.ingress
                            .iter()
                            .filter_map(Rule::single_tcp_port)
                            .filter(|p| *p != 22 && *p != 3389),
                    );
                }
                v
            }
        };
        let mut seen = std::collections::HashSet::new();
        expected.retain(|p| seen.insert(*p));
        if expected.is_empty() {
            expected.push(80);
        }
        Ok(expected
            .into_iter()
            .map(|p| PortMap { expected: p, host: self.allocate_port().unwrap_or(0) })
            .collect())
    }
}
