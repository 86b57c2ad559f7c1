//! The EC2 service: the records of the network model and of instances, and instances as running
//! process trees with their own metadata service.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use aws_ids::Account;
use base64::Engine as _;
use clock::Clock;
use indexmap::IndexMap;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value as Json;
use store::Store;
use supervisor::{ProcessTable, Spec, Supervised};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::model::*;
use crate::network::*;

#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("{0}")]
    Invalid(String),
    #[error("The instance ID '{0}' does not exist")]
    NoSuchInstance(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Launch(String),
}

/// Local changes to what a launch template, launch configuration or instance runs, from the
/// overrides file: the template itself stays deployable to AWS.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceOverride {
    /// Run this command instead of the UserData.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Run this script instead of the UserData.
    #[serde(default)]
    pub user_data: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The image (isolated mode; recorded as the instance's ImageId).
    #[serde(default)]
    pub image: Option<String>,
    /// The ports the app is expected to listen on (each gets a loopback port).
    #[serde(default)]
    pub ports: Option<Vec<u16>>,
}

#[derive(Clone)]
pub struct Ec2Config {
    pub account: Account,
    /// Where instance directories and the helper `bin/` live.
    pub runtime_dir: PathBuf,
    /// The cumulo executable (instances run its helpers and its supervisor).
    pub exe: PathBuf,
    /// The AWS API endpoint instances talk to (cfn-signal, the aws CLI, SDKs).
    pub api_endpoint: String,
    /// Run instance processes as this uid/gid (when Cumulo runs as root).
    pub run_as: Option<(u32, u32)>,
    /// Overrides by logical id (`*` for every instance).
    pub overrides: BTreeMap<String, InstanceOverride>,
    /// How long processes get between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// What to launch.
#[derive(Clone, Debug)]
pub enum LaunchSpec {
    Template {
        id_or_name: String,
        version: Option<String>,
    },
    Configuration {
        name: String,
    },
    /// An `AWS::EC2::Instance`'s resolved properties.
    Properties(Json),
}

#[derive(Clone, Debug)]
pub struct LaunchRequest {
    pub spec: LaunchSpec,
    pub subnet_id: Option<String>,
    pub zone: Option<String>,
    /// Ports the app must answer on besides those its security groups open (target groups).
    pub ports: Vec<u16>,
    pub tags: IndexMap<String, String>,
    /// Whose overrides apply (the launch template's, configuration's or instance's logical id).
    pub override_key: Option<String>,
    pub group: Option<String>,
}

/// An instance changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceChange {
    pub id: String,
    pub state: InstanceState,
    pub group: Option<String>,
}

/// CPU and memory of an instance's processes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InstanceUsage {
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub processes: usize,
}

struct Running {
    shim_pid: u32,
    imds_port: u16,
    imds: JoinHandle<()>,
    /// 0: nothing asked, 1: stop, 2: terminate.
    asked: Arc<AtomicU8>,
}

pub struct Ec2 {
    pub(crate) store: Arc<Store>,
    pub(crate) clock: Clock,
    pub(crate) config: Ec2Config,
    running: Mutex<HashMap<String, Running>>,
    /// Loopback ports given to instances, and where the next search starts.
    ports: Mutex<(std::collections::HashSet<u16>, u16)>,
    changes: broadcast::Sender<InstanceChange>,
    /// Last CPU sample per instance: (ticks, when).
    samples: Mutex<HashMap<String, (u64, tokio::time::Instant, InstanceUsage)>>,
    shutting_down: std::sync::atomic::AtomicBool,
    /// Zones taken down (chaos): their instances were stopped and launches there fail.
    failed_zones: Mutex<std::collections::BTreeSet<String>>,
    me: Weak<Ec2>,
}

const DEFAULT_VPC: &str = "vpc-default0000000";

/// Instances' loopback ports come from here: below Linux's ephemeral range (32768-60999).
const INSTANCE_PORTS: (u16, u16) = (20_000, 32_000);

impl Ec2 {
    pub fn new(store: Arc<Store>, clock: Clock, config: Ec2Config) -> Result<Arc<Ec2>, Ec2Error> {
        let bin = config.runtime_dir.join("bin");
        std::fs::create_dir_all(&bin)
            .map_err(|e| Ec2Error::Launch(format!("cannot create {}: {e}", bin.display())))?;
        // The helpers every instance has on its PATH, all the cumulo binary.
        for name in ["cumulo", "cfn-signal", "cfn-init", "cfn-hup", "cfn-get-metadata"] {
            let link = bin.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&config.exe, &link)
                .map_err(|e| Ec2Error::Launch(format!("cannot link {}: {e}", link.display())))?;
        }
        let (changes, _) = broadcast::channel(4096);
        Ok(Arc::new_cyclic(|me| Ec2 {
            store,
            clock,
            config,
            running: Mutex::new(HashMap::new()),
            ports: Mutex::new((std::collections::HashSet::new(), 0)),
            changes,
            samples: Mutex::new(HashMap::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            failed_zones: Mutex::new(std::collections::BTreeSet::new()),
            me: me.clone(),
        }))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<InstanceChange> {
        self.changes.subscribe()
    }

    pub fn account(&self) -> &Account {
        &self.config.account
    }

    // === records ===

    pub fn instance(&self, id: &str) -> Option<InstanceRecord> {
        self.store.get(INSTANCES, id).ok().flatten()
    }

    pub fn instances(&self) -> Vec<InstanceRecord> {
        self.store
            .list::<InstanceRecord>(INSTANCES, "")
            .map(|v| v.into_iter().map(|(_, r)| r).collect())
            .unwrap_or_default()
    }

    pub fn subnet(&self, id: &str) -> Option<SubnetRecord> {
        self.store.get(SUBNETS, id).ok().flatten()
    }

    pub fn subnets(&self) -> Vec<SubnetRecord> {
        self.store
            .list::<SubnetRecord>(SUBNETS, "")
            .map(|v| v.into_iter().map(|(_, r)| r).collect())
            .unwrap_or_default()
    }

    pub fn security_group(&self, id_or_name: &str) -> Option<SecurityGroupRecord> {
        if let Ok(Some(g)) = self.store.get::<SecurityGroupRecord>(GROUPS, id_or_name) {
            return Some(g);
        }
        self.store
            .list::<SecurityGroupRecord>(GROUPS, "")
            .ok()?
            .into_iter()
            .map(|(_, g)| g)
            .find(|g| g.name == id_or_name)
    }

    pub fn launch_template(&self, id_or_name: &str) -> Option<LaunchTemplateRecord> {
        if let Ok(Some(t)) = self.store.get::<LaunchTemplateRecord>(LAUNCH_TEMPLATES, id_or_name) {
            return Some(t);
        }
        self.store
            .list::<LaunchTemplateRecord>(LAUNCH_TEMPLATES, "")
            .ok()?
            .into_iter()
            .map(|(_, t)| t)
            .find(|t| t.name == id_or_name)
    }

    pub fn launch_configuration(&self, name: &str) -> Option<LaunchConfigurationRecord> {
        self.store.get(LAUNCH_CONFIGURATIONS, name).ok().flatten()
    }

    /// The loopback address where `instance` answers for `port` (what target groups route to).
    pub fn target_address(&self, instance: &str, port: u16) -> Option<SocketAddr> {
        let record = self.instance(instance)?;
        let host = record.host_port(port)?;
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, host)))
    }

    /// The console output (the last 64 KiB, as EC2 keeps).
    pub fn console_output(&self, id: &str) -> Result<String, Ec2Error> {
        let record = self.instance(id).ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        let bytes = std::fs::read(record.dir.join("console.log")).unwrap_or_default();
        let start = bytes.len().saturating_sub(64 * 1024);
        Ok(String::from_utf8_lossy(&bytes[start..]).into_owned())
    }

    /// The pid of the instance's app (its UserData process), while it runs.
    pub fn app_pid(&self, id: &str) -> Option<u32> {
        let record = self.instance(id)?;
        let pid: u32 = std::fs::read_to_string(record.dir.join(supervisor::APP_PID))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        supervisor::alive(pid).then_some(pid)
    }

    /// The pid of the instance's supervisor (its "machine").
    pub fn machine_pid(&self, id: &str) -> Option<u32> {
        self.running.lock().get(id).map(|r| r.shim_pid)
    }

    /// The instance's machine dies at once (`cumulo chaos kill-instance`): every process of it
    /// gets SIGKILL, and EC2 then sees it stop as it sees any machine die.
    pub fn power_off(&self, id: &str) -> bool {
        match self.running.lock().get(id) {
            Some(r) => {
                supervisor::power_off(r.shim_pid);
                true
            }
            None => false,
        }
    }

    /// The IMDS port of a running instance.
    pub fn imds_port(&self, id: &str) -> Option<u16> {
        self.running.lock().get(id).map(|r| r.imds_port)
    }

    pub fn usage(&self, id: &str) -> Option<InstanceUsage> {
        self.samples.lock().get(id).map(|(_, _, u)| *u)
    }

    fn save(&self, record: &InstanceRecord) {
        if let Err(e) = self.store.put(INSTANCES, &record.id, record) {
            tracing::error!("cannot save instance {}: {e}", record.id);
        }
    }

    fn set_state(&self, record: &mut InstanceRecord, state: InstanceState, reason: Option<String>) {
        record.state = state;
        record.state_reason = reason;
        self.save(record);
        let _ = self.changes.send(InstanceChange {
            id: record.id.clone(),
            state,
            group: record.group.clone(),
        });
    }

    // === launching ===

    /// The default VPC and its subnets (one per zone), for instances launched without a
    /// subnet, as accounts have.
    fn default_subnet(&self, zone: Option<&str>) -> Result<SubnetRecord, Ec2Error> {
        if self.store.get::<VpcRecord>(VPCS, DEFAULT_VPC)?.is_none() {
            self.store.put(
                VPCS,
                DEFAULT_VPC,
                &VpcRecord { id: DEFAULT_VPC.into(), cidr: "172.31.0.0/16".into() },
            )?;
        }
        let region = &self.config.account.region;
        let zone = zone
            .filter(|z| !z.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{region}a"));
        let letter = zone.chars().last().unwrap_or('a');
        let index = (letter as u32).saturating_sub('a' as u32).min(15);
        let id = format!("subnet-default{:08x}", index);
        if let Some(s) = self.subnet(&id) {
            return Ok(s);
        }
        let subnet = SubnetRecord {
            id: id.clone(),
            vpc_id: DEFAULT_VPC.into(),
            cidr: format!("172.31.{}.0/20", index * 16),
            zone,
            map_public_ip: true,
            used: Vec::new(),
        };
        self.store.put(SUBNETS, &id, &subnet)?;
        Ok(subnet)
    }

    /// The launch data (LaunchTemplateData shape) and where it came from.
    fn launch_data(&self, spec: &LaunchSpec) -> Result<(Json, LaunchSource), Ec2Error> {
        match spec {
            LaunchSpec::Template { id_or_name, version } => {
                let t = self
                    .launch_template(id_or_name)
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
                let c = self.launch_configuration(name).ok_or_else(|| {
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
        let s = |k: &str| {
            data.get(k).and_then(|v| {
                v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string()))
            })
        };
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
        let mut subnet = match subnet_id.as_deref().and_then(|id| self.subnet(id)) {
            Some(subnet) => subnet,
            None => match &subnet_id {
                // A subnet of a network Cumulo did not create (a parameter): modelled on the fly.
                Some(id) => {
                    let z =
                        zone.clone().unwrap_or_else(|| format!("{}a", self.config.account.region));
                    let subnet = SubnetRecord {
                        id: id.clone(),
                        vpc_id: "vpc-external".into(),
                        cidr: "10.255.0.0/16".into(),
                        zone: z,
                        map_public_ip: false,
                        used: Vec::new(),
                    };
                    self.store.put(SUBNETS, id, &subnet)?;
                    subnet
                }
                None => self.default_subnet(zone.as_deref())?,
            },
        };
        if self.failed_zones.lock().contains(&subnet.zone) {
            return Err(Ec2Error::Launch(format!(
                "InsufficientInstanceCapacity: We currently do not have sufficient capacity in the Availability Zone you requested ({}).",
                subnet.zone
            )));
        }
        let private_ip = allocate_ip(&mut subnet).ok_or_else(|| Ec2Error::Launch(format!("There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.", subnet.id)))?;
        self.store.put(SUBNETS, &subnet.id, &subnet)?;
        let public = interface
            .get("AssociatePublicIpAddress")
            .and_then(json_bool)
            .or_else(|| data.get("AssociatePublicIpAddress").and_then(json_bool))
            .unwrap_or(subnet.map_public_ip);
        let mut groups: Vec<String> = ["SecurityGroupIds", "SecurityGroups"]
            .iter()
            .flat_map(|k| data.get(*k).and_then(Json::as_array).cloned().unwrap_or_default())
            .chain(interface.get("Groups").and_then(Json::as_array).cloned().unwrap_or_default())
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect();
        groups.dedup();
        let group_ids: Vec<String> = groups
            .iter()
            .map(|g| self.security_group(g).map(|r| r.id).unwrap_or_else(|| g.clone()))
            .collect();
        let profile = data.get("IamInstanceProfile").and_then(|p| {
            p.as_str().map(str::to_string).or_else(|| {
                p.get("Arn").or_else(|| p.get("Name")).and_then(Json::as_str).map(str::to_string)
            })
        });
        let (role, profile_arn) = match &profile {
            Some(p) => self.role_of_profile(p),
            None => (None, None),
        };
        let override_ = request
            .override_key
            .as_ref()
            .and_then(|k| self.config.overrides.get(k))
            .or_else(|| self.config.overrides.get("*"))
            .cloned()
            .unwrap_or_default();
        let ports = self.expected_ports(&override_, &request.ports, &group_ids);
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
        let user_data = match &override_.user_data {
            Some(script) => Some(base64::engine::general_purpose::STANDARD.encode(script)),
            None => s("UserData"),
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
        self.set_state(&mut record, InstanceState::Pending, None);
        self.start_processes(&mut record).await?;
        Ok(record)
    }

    fn role_of_profile(&self, profile: &str) -> (Option<String>, Option<String>) {
        let name = profile.rsplit('/').next().unwrap_or(profile);
        let found = self
            .store
            .list::<InstanceProfileRecord>(INSTANCE_PROFILES, "")
            .unwrap_or_default()
            .into_iter()
            .map(|(_, p)| p)
            .find(|p| p.name == name || p.arn == profile);
        match found {
            Some(p) => (p.roles.first().cloned(), Some(p.arn)),
            None => (None, Some(profile.to_string()).filter(|p| p.starts_with("arn:"))),
        }
    }

    /// The ports the app is expected to answer on: the override's, else the target groups'
    /// and the single TCP ports its security groups open (not SSH or RDP), else 80.
    fn expected_ports(
        &self,
        o: &InstanceOverride,
        extra: &[u16],
        groups: &[String],
    ) -> Vec<PortMap> {
        let mut expected: Vec<u16> = match &o.ports {
            Some(p) => p.clone(),
            None => {
                let mut v: Vec<u16> = extra.to_vec();
                for g in groups.iter().filter_map(|g| self.security_group(g)) {
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
        expected
            .into_iter()
            .map(|p| PortMap { expected: p, host: self.allocate_port().unwrap_or(0) })
            .collect()
    }

    /// A loopback port for an instance's app, from a range outside the kernel's ephemeral
    /// ports (so that no `bind(0)` elsewhere takes it before the app binds it), unused by any
    /// other instance, and bindable now.
    fn allocate_port(&self) -> Option<u16> {
        let mut ports = self.ports.lock();
        let (low, high) = INSTANCE_PORTS;
        let span = u32::from(high - low);
        if ports.1 == 0 {
            // Regions running side by side (tests, two `up`s) start at different places, so
            // they do not race for the same port before an app binds it.
            ports.1 = low + fastrand::u16(..high - low);
        }
        for _ in 0..span {
            ports.1 = if ports.1 < low || ports.1 >= high { low } else { ports.1 + 1 };
            let candidate = ports.1;
            if !ports.0.contains(&candidate)
                && std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok()
            {
                ports.0.insert(candidate);
                return Some(candidate);
            }
        }
        free_port()
    }

    fn release_ports(&self, record: &InstanceRecord) {
        let mut ports = self.ports.lock();
        for p in &record.ports {
            ports.0.remove(&p.host);
        }
    }

    /// Starts (or restarts) an instance's processes: its metadata service and its supervisor.
    async fn start_processes(&self, record: &mut InstanceRecord) -> Result<(), Ec2Error> {
        // Ports are kept across restarts when still free.
        for p in &mut record.ports {
            let mine = self.ports.lock().0.insert(p.host);
            if p.host == 0 || (mine && std::net::TcpListener::bind(("127.0.0.1", p.host)).is_err())
            {
                self.ports.lock().0.remove(&p.host);
                p.host = self.allocate_port().unwrap_or(0);
            }
        }
        let (imds_port, imds) = crate::imds::serve(
            record.clone(),
            self.config.account.region.clone(),
            self.config.account.account_id.clone(),
            self.clock.clone(),
        )
        .await
        .map_err(|e| Ec2Error::Launch(format!("cannot start the metadata service: {e}")))?;
        let (program, args, notes) = self.program(record);
        let console = record.dir.join("console.log");
        let mut banner = format!(
            "Cumulo instance {} ({}) booting in {} — private IP {}, IMDS at http://127.0.0.1:{imds_port}/\n",
            record.id, record.instance_type, record.zone, record.private_ip
        );
        for p in &record.ports {
            banner.push_str(&format!(
                "Cumulo: port {} of this instance is 127.0.0.1:{} (PORT_{})\n",
                p.expected, p.host, p.expected
            ));
        }
        for n in notes {
            banner.push_str(&format!("Cumulo: {n}\n"));
        }
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&console)
            .and_then(|mut f| std::io::Write::write_all(&mut f, banner.as_bytes()));
        if let Some((uid, gid)) = self.config.run_as {
            chown_tree(&record.dir, uid, gid);
        }
        let spec = Spec {
            dir: record.dir.clone(),
            program,
            args,
            env: self.environment(record, imds_port),
            user: self.config.run_as,
            grace_ms: self.config.grace.as_millis() as u64,
            parent_pid: std::process::id(),
        };
        let mut supervised = match Supervised::spawn(&self.config.exe, &spec) {
            Ok(s) => s,
            Err(e) => {
                imds.abort();
                return Err(Ec2Error::Launch(e.to_string()));
            }
        };
        let asked = Arc::new(AtomicU8::new(0));
        self.running.lock().insert(
            record.id.clone(),
            Running { shim_pid: supervised.pid(), imds_port, imds, asked: asked.clone() },
        );
        self.set_state(record, InstanceState::Running, None);
        // Watch the machine: when it goes, the instance stops (or is terminated).
        let me = self.me.clone();
        let id = record.id.clone();
        tokio::spawn(async move {
            supervised.wait().await;
            if let Some(ec2) = me.upgrade() {
                ec2.machine_gone(&id, asked.load(Ordering::SeqCst));
            }
        });
        Ok(())
    }

    /// What the instance runs: the override command, or its UserData script.
    fn program(&self, record: &InstanceRecord) -> (String, Vec<String>, Vec<String>) {
        let mut notes = Vec::new();
        if let Some(cmd) = record.command.as_ref().filter(|c| !c.is_empty()) {
            notes.push(format!(
                "running the overrides file's command instead of the user data: {}",
                cmd.join(" ")
            ));
            return (cmd[0].clone(), cmd[1..].to_vec(), notes);
        }
        let script = record
            .user_data
            .as_ref()
            .map(|u| {
                base64::engine::general_purpose::STANDARD
                    .decode(u.trim())
                    .unwrap_or_else(|_| u.as_bytes().to_vec())
            })
            .unwrap_or_default();
        let path = record.dir.join("user-data");
        let _ = std::fs::write(&path, &script);
        let text = String::from_utf8_lossy(&script);
        if text.trim().is_empty() {
            notes.push("no user data; the instance runs nothing".into());
            return ("/bin/sh".into(), vec!["-c".into(), "exec sleep infinity".into()], notes);
        }
        if text.starts_with("#cloud-config") || text.starts_with("Content-Type: multipart") {
            notes.push("this user data is cloud-init configuration, which Cumulo does not run; use the overrides file to run a command".into());
            return ("/bin/sh".into(), vec!["-c".into(), "exec sleep infinity".into()], notes);
        }
        if let Some(first) = text.lines().next().filter(|l| l.starts_with("#!")) {
            let mut parts = first[2..].split_whitespace();
            if let Some(interpreter) = parts.next() {
                let mut args: Vec<String> = parts.map(str::to_string).collect();
                args.push(path.display().to_string());
                return (interpreter.to_string(), args, notes);
            }
        }
        ("/bin/bash".into(), vec![path.display().to_string()], notes)
    }

    fn environment(&self, record: &InstanceRecord, imds_port: u16) -> Vec<(String, String)> {
        let bin = self.config.runtime_dir.join("bin");
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    bin.display()
                ),
            ),
            ("HOME".into(), record.dir.display().to_string()),
            (
                "USER".into(),
                if self.config.run_as.is_some() { "nobody".into() } else { "cumulo".into() },
            ),
            ("SHELL".into(), "/bin/bash".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("AWS_REGION".into(), self.config.account.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.config.account.region.clone()),
            ("AWS_ENDPOINT_URL".into(), self.config.api_endpoint.clone()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), format!("http://127.0.0.1:{imds_port}/")),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE".into(), "IPv4".into()),
            ("CUMULO_INSTANCE_ID".into(), record.id.clone()),
            ("CUMULO_AVAILABILITY_ZONE".into(), record.zone.clone()),
            ("CUMULO_PRIVATE_IP".into(), record.private_ip.clone()),
            ("CUMULO_INSTANCE_TYPE".into(), record.instance_type.clone()),
        ];
        if let Some(ip) = &record.public_ip {
            env.push(("CUMULO_PUBLIC_IP".into(), ip.clone()));
        }
        // Where the instance comes from, for scripts in overrides files (`cfn-init --stack`).
        for (tag, var) in [
            ("aws:cloudformation:stack-name", "CUMULO_STACK_NAME"),
            ("aws:cloudformation:logical-id", "CUMULO_LOGICAL_ID"),
        ] {
            if let Some(v) = record.tags.get(tag) {
                env.push((var.into(), v.clone()));
            }
        }
        env.push(("CUMULO_TIME_SCALE".into(), self.clock.scale().to_string()));
        if let Some(port) = record.primary_port() {
            env.push(("PORT".into(), port.to_string()));
        }
        for p in &record.ports {
            env.push((format!("PORT_{}", p.expected), p.host.to_string()));
        }
        env.extend(record.extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    fn machine_gone(&self, id: &str, asked: u8) {
        let running = self.running.lock().remove(id);
        if let Some(r) = running {
            r.imds.abort();
        }
        self.samples.lock().remove(id);
        if self.shutting_down.load(Ordering::SeqCst) {
            return; // The region is stopping: the record stays as it was, to start again.
        }
        let Some(mut record) = self.instance(id) else { return };
        let terminate = asked == 2 || (asked == 0 && record.shutdown_behavior == "terminate");
        let reason = match asked {
            0 => Some("Client.InstanceInitiatedShutdown: Instance initiated shutdown".to_string()),
            1 | 2 => Some("Client.UserInitiatedShutdown: User initiated shutdown".to_string()),
            _ => Some(format!(
                "Server.InternalError: The availability zone {} failed (cumulo chaos fail-zone)",
                record.zone
            )),
        };
        if terminate {
            self.release_ports(&record);
            if let Some(mut subnet) = self.subnet(&record.subnet_id) {
                release_ip(&mut subnet, &record.private_ip);
                let _ = self.store.put(SUBNETS, &subnet.id, &subnet);
            }
            self.set_state(&mut record, InstanceState::Terminated, reason);
        } else {
            self.set_state(&mut record, InstanceState::Stopped, reason);
        }
    }

    fn ask(&self, id: &str, what: u8) -> bool {
        let running = self.running.lock();
        match running.get(id) {
            Some(r) => {
                r.asked.store(what, Ordering::SeqCst);
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(r.shim_pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                true
            }
            None => false,
        }
    }

    /// Takes a zone down: every running instance there stops at once (its processes are
    /// killed) and launches into the zone fail until it is restored. Returns the stopped ids.
    pub fn fail_zone(&self, zone: &str) -> Vec<String> {
        self.failed_zones.lock().insert(zone.to_string());
        let ids: Vec<String> = self
            .instances()
            .into_iter()
            .filter(|i| i.zone == zone && i.state == InstanceState::Running)
            .map(|i| i.id)
            .collect();
        let running = self.running.lock();
        for id in &ids {
            if let Some(r) = running.get(id) {
                r.asked.store(3, Ordering::SeqCst);
                supervisor::power_off(r.shim_pid);
            }
        }
        ids
    }

    /// Brings a failed zone back: launches there work again.
    pub fn restore_zone(&self, zone: &str) -> bool {
        self.failed_zones.lock().remove(zone)
    }

    pub fn failed_zones(&self) -> Vec<String> {
        self.failed_zones.lock().iter().cloned().collect()
    }

    /// TerminateInstances: shutting-down, then terminated once its processes are gone.
    pub async fn terminate(&self, id: &str) -> Result<(), Ec2Error> {
        let mut record = self.instance(id).ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        match record.state {
            InstanceState::Terminated => return Ok(()),
            InstanceState::Stopped => {
                self.release_ports(&record);
                if let Some(mut subnet) = self.subnet(&record.subnet_id) {
                    release_ip(&mut subnet, &record.private_ip);
                    let _ = self.store.put(SUBNETS, &subnet.id, &subnet);
                }
                self.set_state(
                    &mut record,
                    InstanceState::Terminated,
                    Some("Client.UserInitiatedShutdown: User initiated shutdown".into()),
                );
                return Ok(());
            }
            _ => {}
        }
        let mut changes = self.subscribe();
        self.set_state(&mut record, InstanceState::ShuttingDown, None);
        if !self.ask(id, 2) {
            self.machine_gone(id, 2);
        }
        self.wait_for(&mut changes, id, InstanceState::Terminated).await;
        Ok(())
    }

    /// StopInstances.
    pub async fn stop(&self, id: &str) -> Result<(), Ec2Error> {
        let mut record = self.instance(id).ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if record.state != InstanceState::Running && record.state != InstanceState::Pending {
            return Ok(());
        }
        let mut changes = self.subscribe();
        self.set_state(&mut record, InstanceState::Stopping, None);
        if !self.ask(id, 1) {
            self.machine_gone(id, 1);
        }
        self.wait_for(&mut changes, id, InstanceState::Stopped).await;
        Ok(())
    }

    /// StartInstances (a stopped instance boots again; new public address).
    pub async fn start(&self, id: &str) -> Result<(), Ec2Error> {
        let mut record = self.instance(id).ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if record.state != InstanceState::Stopped {
            return Err(Ec2Error::Invalid(format!(
                "The instance '{id}' is not in a state from which it can be started."
            )));
        }
        if record.public_ip.is_some() {
            record.public_ip = Some(format!("198.51.100.{}", 1 + fastrand_index(253)));
        }
        self.set_state(&mut record, InstanceState::Pending, None);
        self.start_processes(&mut record).await
    }

    /// Replaces what a stopped instance runs (an in-place update of an instance resource).
    pub fn update_stopped(
        &self,
        id: &str,
        user_data: Option<String>,
        instance_type: Option<String>,
    ) -> Result<(), Ec2Error> {
        let mut record = self.instance(id).ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if let Some(u) = user_data {
            record.user_data = Some(u);
        }
        if let Some(t) = instance_type {
            record.instance_type = t;
        }
        self.save(&record);
        Ok(())
    }

    async fn wait_for(
        &self,
        changes: &mut broadcast::Receiver<InstanceChange>,
        id: &str,
        state: InstanceState,
    ) {
        loop {
            if self.instance(id).is_none_or(|r| r.state == state) {
                return;
            }
            if let Ok(Err(broadcast::error::RecvError::Closed)) =
                tokio::time::timeout(Duration::from_secs(1), changes.recv()).await
            {
                return;
            }
        }
    }

    /// After a restart: instances that were running boot again from their recorded definition
    /// (as after a host reboot); transitions that were under way complete.
    pub async fn recover(&self) -> usize {
        let mut n = 0;
        for mut record in self.instances() {
            match record.state {
                InstanceState::Running | InstanceState::Pending => {
                    let _ = std::fs::OpenOptions::new()
                        .append(true)
                        .open(record.dir.join("console.log"))
                        .and_then(|mut f| {
                            std::io::Write::write_all(
                                &mut f,
                                b"Cumulo: the host restarted; rebooting\n",
                            )
                        });
                    if self.start_processes(&mut record).await.is_ok() {
                        n += 1;
                    }
                }
                InstanceState::Stopping => {
                    let reason = record.state_reason.clone();
                    self.set_state(&mut record, InstanceState::Stopped, reason)
                }
                InstanceState::ShuttingDown => {
                    let reason = record.state_reason.clone();
                    self.set_state(&mut record, InstanceState::Terminated, reason)
                }
                _ => {}
            }
        }
        n
    }

    /// Stops every instance's processes without changing their records (the region is
    /// stopping; they start again with it).
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let pids: Vec<u32> = self.running.lock().values().map(|r| r.shim_pid).collect();
        for pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = tokio::time::Instant::now() + self.config.grace + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline && pids.iter().any(|p| supervisor::alive(*p)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Samples CPU and memory of every running instance (call periodically).
    pub fn sample_usage(&self) {
        let table = ProcessTable::snapshot();
        let now = tokio::time::Instant::now();
        let running: Vec<(String, u32)> =
            self.running.lock().iter().map(|(id, r)| (id.clone(), r.shim_pid)).collect();
        let mut samples = self.samples.lock();
        for (id, pid) in running {
            let usage = table.tree_usage(pid);
            let vcpus = self.instance(&id).map_or(2.0, |r| vcpus(&r.instance_type));
            let cpu = match samples.get(&id) {
                Some((ticks, when, _)) => {
                    let secs = now.duration_since(*when).as_secs_f64().max(0.001);
                    let busy = usage.cpu_ticks.saturating_sub(*ticks) as f64 / 100.0 / secs;
                    (busy / vcpus * 100.0).clamp(0.0, 100.0)
                }
                None => 0.0,
            };
            samples.insert(
                id,
                (
                    usage.cpu_ticks,
                    now,
                    InstanceUsage {
                        cpu_percent: cpu,
                        rss_bytes: usage.rss_bytes,
                        processes: usage.processes,
                    },
                ),
            );
        }
    }
}

fn json_bool(v: &Json) -> Option<bool> {
    v.as_bool().or_else(|| v.as_str().map(|s| s.eq_ignore_ascii_case("true")))
}

fn fastrand_index(n: usize) -> usize {
    usize::from_str_radix(&aws_ids::hex(4), 16).unwrap_or(0) % n.max(1)
}

/// A free loopback port (bound and released: good enough for a local region).
pub fn free_port() -> Option<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?.local_addr().ok().map(|a| a.port())
}

/// vCPUs of an instance type (CloudWatch's CPUUtilization is relative to them).
pub fn vcpus(instance_type: &str) -> f64 {
    let size = instance_type.split('.').nth(1).unwrap_or("micro");
    match size {
        "nano" | "micro" | "small" | "medium" | "large" => 2.0,
        "xlarge" => 4.0,
        s => s.trim_end_matches("xlarge").parse::<f64>().map_or(2.0, |n| n * 4.0),
    }
}

fn chown_tree(dir: &std::path::Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::chown(dir, Some(uid), Some(gid));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                chown_tree(&path, uid, gid);
            } else {
                let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
            }
        }
    }
}
