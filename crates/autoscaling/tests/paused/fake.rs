//! A fake fleet: EC2 and a load balancer in memory, on the test's clock. Instances run as soon
//! as they are launched; a registered target turns healthy after `HEALTHY_AFTER` (two health
//! checks 30 s apart) unless it was made sick; a deregistered one drains for `DRAIN`. Every
//! change is announced as the real services announce theirs, and written to a timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use autoscaling::fleet::{Balancer, Compute, FleetError, InstanceView};
use clock::Clock;
use ec2::model::{LaunchConfigurationRecord, LaunchTemplateRecord};
use ec2::{InstanceChange, InstanceState, LaunchRequest, LaunchSpec};
use elb::{HealthChange, State};
use parking_lot::Mutex;
use tokio::sync::broadcast;

pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
pub const DRAIN: Duration = Duration::from_secs(30);
pub const TEMPLATE: &str = "lt-0123456789abcdef0";
pub const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";

#[derive(Default)]
struct World {
    instances: BTreeMap<String, InstanceView>,
    launched: u32,
    failed_zones: BTreeSet<String>,
    /// Target group → instance → state.
    targets: BTreeMap<String, BTreeMap<String, State>>,
    /// Instances whose health checks fail.
    sick: BTreeSet<String>,
    template: Option<LaunchTemplateRecord>,
    configurations: BTreeMap<String, LaunchConfigurationRecord>,
    timeline: Vec<String>,
    /// The fewest healthy targets seen since `watch_healthy` was called.
    fewest_healthy: Option<usize>,
}

impl World {
    fn healthy(&self) -> usize {
        self.targets.values().flat_map(|t| t.values()).filter(|s| **s == State::Healthy).count()
    }
}

pub struct Fleet {
    clock: Clock,
    world: Mutex<World>,
    instances: broadcast::Sender<InstanceChange>,
    health: broadcast::Sender<HealthChange>,
    me: Weak<Fleet>,
}

impl Fleet {
    pub fn new(clock: Clock) -> Arc<Fleet> {
        let fleet = Arc::new_cyclic(|me| Fleet {
            clock,
            world: Mutex::new(World::default()),
            instances: broadcast::channel(1024).0,
            health: broadcast::channel(1024).0,
            me: me.clone(),
        });
        fleet.set_template_versions(1, 1);
        fleet
    }

    /// The launch template has versions 1..=`latest`, `default` the default one.
    pub fn set_template_versions(&self, latest: u32, default: u32) {
        let versions = (1..=latest)
            .map(|v| (v, serde_json::json!({"ImageId": format!("ami-{v:08}")})))
            .collect();
        self.world.lock().template = Some(LaunchTemplateRecord {
            id: TEMPLATE.into(),
            name: "web".into(),
            versions,
            default_version: default,
            logical_id: None,
            created: Default::default(),
            tags: Default::default(),
        });
    }

    fn note(&self, world: &mut World, line: String) {
        let at = self.clock.now().strftime("%H:%M:%S");
        world.timeline.push(format!("{at} {line}"));
    }

    /// What happened, one line per change, since the last call.
    pub fn take_timeline(&self) -> String {
        let lines = std::mem::take(&mut self.world.lock().timeline);
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn set_instance(&self, id: &str, state: InstanceState) {
        let mut world = self.world.lock();
        let Some(i) = world.instances.get_mut(id) else { return };
        i.state = state;
        let line = format!("{id} {}", state.name());
        self.note(&mut world, line);
        drop(world);
        let _ = self.instances.send(InstanceChange { id: id.into(), state, group: None });
    }

    fn set_target(&self, tg: &str, id: &str, state: Option<State>) {
        let mut world = self.world.lock();
        let targets = world.targets.entry(tg.to_string()).or_default();
        match state {
            Some(s) => targets.insert(id.to_string(), s),
            None => targets.remove(id),
        };
        let line = format!("target {id} {}", state.map_or("removed", |s| s.as_str()));
        self.note(&mut world, line);
        let healthy = world.healthy();
        if let Some(fewest) = &mut world.fewest_healthy {
            *fewest = (*fewest).min(healthy);
        }
        drop(world);
        let state = state.unwrap_or(State::Unused);
        let _ = self.health.send(HealthChange {
            target_group: tg.into(),
            id: id.into(),
            port: 80,
            state,
        });
    }

    /// The machine of an instance goes away (what `cumulo chaos kill-instance` does).
    pub fn kill(&self, id: &str) {
        self.set_instance(id, InstanceState::Stopped);
        self.world.lock().sick.insert(id.to_string());
        let groups: Vec<String> = self.world.lock().targets.keys().cloned().collect();
        for tg in groups {
            if self.world.lock().targets[&tg].contains_key(id) {
                self.set_target(&tg, id, Some(State::Unhealthy));
            }
        }
    }

    /// Launches into `zone` fail until it is restored.
    pub fn fail_zone(&self, zone: &str) {
        self.world.lock().failed_zones.insert(zone.to_string());
    }

    pub fn restore_zone(&self, zone: &str) {
        self.world.lock().failed_zones.remove(zone);
    }

    /// Starts counting the fewest healthy targets from now on.
    pub fn watch_healthy(&self) {
        let mut world = self.world.lock();
        let healthy = world.healthy();
        world.fewest_healthy = Some(healthy);
    }

    pub fn fewest_healthy(&self) -> Option<usize> {
        self.world.lock().fewest_healthy
    }

    /// Running instances per zone.
    pub fn running_per_zone(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for i in self.world.lock().instances.values().filter(|i| i.state == InstanceState::Running)
        {
            *out.entry(i.zone.clone()).or_default() += 1;
        }
        out
    }

    pub fn healthy_targets(&self) -> Vec<String> {
        let world = self.world.lock();
        world
            .targets
            .values()
            .flat_map(|t| t.iter())
            .filter(|(_, s)| **s == State::Healthy)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn spawn(
        &self,
        f: impl FnOnce(Arc<Fleet>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + 'static,
    ) {
        let me = self.me.clone();
        tokio::spawn(async move {
            if let Some(fleet) = me.upgrade() {
                f(fleet).await;
            }
        });
    }
}

fn zone_of_subnet(subnet: &str) -> Option<String> {
    // subnet-a → us-east-1a, ...
    let letter = subnet.strip_prefix("subnet-")?;
    (letter.len() == 1).then(|| format!("us-east-1{letter}"))
}

#[async_trait]
impl Compute for Fleet {
    fn subscribe(&self) -> broadcast::Receiver<InstanceChange> {
        self.instances.subscribe()
    }

    fn instance(&self, id: &str) -> Result<Option<InstanceView>, FleetError> {
        Ok(self.world.lock().instances.get(id).cloned())
    }

    fn subnet_zone(&self, subnet: &str) -> Result<Option<String>, FleetError> {
        Ok(zone_of_subnet(subnet))
    }

    fn launch_template(
        &self,
        id_or_name: &str,
    ) -> Result<Option<LaunchTemplateRecord>, FleetError> {
        let template = self.world.lock().template.clone();
        Ok(template.filter(|t| t.id == id_or_name || t.name == id_or_name))
    }

    fn launch_configuration(
        &self,
        name: &str,
    ) -> Result<Option<LaunchConfigurationRecord>, FleetError> {
        Ok(self.world.lock().configurations.get(name).cloned())
    }

    fn launch_configurations(&self) -> Result<Vec<LaunchConfigurationRecord>, FleetError> {
        Ok(self.world.lock().configurations.values().cloned().collect())
    }

    fn put_launch_configuration(
        &self,
        name: &str,
        data: serde_json::Value,
    ) -> Result<LaunchConfigurationRecord, FleetError> {
        let record = LaunchConfigurationRecord {
            name: name.into(),
            data,
            logical_id: None,
            arn: format!(
                "arn:aws:autoscaling:us-east-1:000000000000:launchConfiguration:x:launchConfigurationName/{name}"
            ),
            created: clock::iso8601(self.clock.now()),
        };
        self.world.lock().configurations.insert(name.into(), record.clone());
        Ok(record)
    }

    fn delete_launch_configuration(&self, name: &str) -> Result<(), FleetError> {
        self.world.lock().configurations.remove(name);
        Ok(())
    }

    async fn launch(&self, request: LaunchRequest) -> Result<InstanceView, FleetError> {
        let zone = match (&request.subnet_id, &request.zone) {
            (Some(s), _) => zone_of_subnet(s).ok_or_else(|| {
                FleetError::refused(format!("The subnet ID '{s}' does not exist"))
            })?,
            (None, Some(z)) => z.clone(),
            (None, None) => "us-east-1a".into(),
        };
        if let LaunchSpec::Configuration { name } = &request.spec
            && !self.world.lock().configurations.contains_key(name)
        {
            return Err(FleetError::refused(format!("no launch configuration {name}")));
        }
        let mut world = self.world.lock();
        if world.failed_zones.contains(&zone) {
            let line = format!("launch failed in {zone}");
            self.note(&mut world, line);
            return Err(FleetError::refused(format!(
                "We currently do not have sufficient capacity in the Availability Zone you requested ({zone})."
            )));
        }
        world.launched += 1;
        let id = format!("i-{:017x}", world.launched);
        let subnet_id = request
            .subnet_id
            .clone()
            .unwrap_or_else(|| format!("subnet-{}", &zone[zone.len() - 1..]));
        let view = InstanceView {
            id: id.clone(),
            state: InstanceState::Running,
            zone: zone.clone(),
            subnet_id,
            impaired: false,
        };
        world.instances.insert(id.clone(), view.clone());
        let line = format!("{id} launched in {zone}");
        self.note(&mut world, line);
        drop(world);
        let _ = self.instances.send(InstanceChange {
            id,
            state: InstanceState::Running,
            group: request.group,
        });
        Ok(view)
    }

    async fn terminate(&self, id: &str) -> Result<(), FleetError> {
        if !self.world.lock().instances.contains_key(id) {
            return Err(FleetError::refused(format!("The instance ID '{id}' does not exist")));
        }
        self.set_instance(id, InstanceState::Terminated);
        Ok(())
    }
}

#[async_trait]
impl Balancer for Fleet {
    fn subscribe(&self) -> broadcast::Receiver<HealthChange> {
        self.health.subscribe()
    }

    fn register(&self, target_group: &str, ids: &[String]) -> Result<(), FleetError> {
        if target_group != TARGET_GROUP {
            return Err(FleetError::refused(format!("Target group '{target_group}' not found")));
        }
        for id in ids {
            self.set_target(target_group, id, Some(State::Initial));
            let (tg, id) = (target_group.to_string(), id.clone());
            let clock = self.clock.clone();
            self.spawn(move |fleet| {
                Box::pin(async move {
                    clock.sleep(HEALTHY_AFTER).await;
                    let world = fleet.world.lock();
                    let initial =
                        world.targets.get(&tg).and_then(|t| t.get(&id)) == Some(&State::Initial);
                    let sick = world.sick.contains(&id);
                    drop(world);
                    if initial {
                        fleet.set_target(
                            &tg,
                            &id,
                            Some(if sick { State::Unhealthy } else { State::Healthy }),
                        );
                    }
                })
            });
        }
        Ok(())
    }

    fn deregister(&self, target_group: &str, ids: &[String]) -> Result<(), FleetError> {
        for id in ids {
            self.set_target(target_group, id, Some(State::Draining));
            let (tg, id) = (target_group.to_string(), id.clone());
            let clock = self.clock.clone();
            self.spawn(move |fleet| {
                Box::pin(async move {
                    clock.sleep(DRAIN).await;
                    fleet.set_target(&tg, &id, None);
                })
            });
        }
        Ok(())
    }

    fn targets(&self, target_group: &str) -> Result<Vec<(String, State)>, FleetError> {
        let world = self.world.lock();
        Ok(world
            .targets
            .get(target_group)
            .map(|t| t.iter().map(|(id, s)| (id.clone(), *s)).collect())
            .unwrap_or_default())
    }

    fn instance_health(&self, id: &str) -> Option<State> {
        let world = self.world.lock();
        let states: Vec<State> =
            world.targets.values().filter_map(|t| t.get(id).copied()).collect();
        if states.is_empty() {
            None
        } else if states.contains(&State::Unhealthy) {
            Some(State::Unhealthy)
        } else {
            states.into_iter().next()
        }
    }

    fn ports(&self, target_group: &str) -> Result<Option<(u16, Option<u16>)>, FleetError> {
        Ok((target_group == TARGET_GROUP).then_some((80, None)))
    }

    fn classic_target_groups(&self, _load_balancer: &str) -> Result<Vec<String>, FleetError> {
        Ok(Vec::new())
    }

    async fn wait_drained(&self, id: &str) {
        let mut changes = self.health.subscribe();
        let _ = self
            .clock
            .wait_until(Duration::from_secs(3600), &mut changes, || {
                let world = self.world.lock();
                let draining = world.targets.values().any(|t| t.get(id) == Some(&State::Draining));
                (!draining).then_some(())
            })
            .await;
    }
}

/// A fake CloudWatch for target tracking alarms: it keeps what was put, writes each put and
/// delete to a log, and refuses puts while `refuse` is set.
#[derive(Default)]
pub struct Alarms {
    kept: Mutex<BTreeMap<String, autoscaling::alarms::TrackingAlarm>>,
    log: Mutex<Vec<String>>,
    pub refuse: std::sync::atomic::AtomicBool,
}

impl Alarms {
    /// Each alarm kept, one line per setting, uuids shown as `<uuid>` (sorted so).
    pub fn shapes(&self) -> String {
        let mut blocks = Vec::new();
        for a in self.kept.lock().values() {
            let dims: Vec<String> = a.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            blocks.push(redact(&format!(
                "{}\n  {}\n  action {}\n  {} {} {} [{}] unit {:?}\n  {} {} period {} {} of {}\n",
                a.name,
                a.description,
                a.policy_arn,
                a.namespace,
                a.metric_name,
                a.statistic,
                dims.join(", "),
                a.unit,
                a.comparison,
                a.threshold,
                a.period,
                a.datapoints_to_alarm,
                a.evaluation_periods,
            )));
        }
        blocks.sort();
        blocks.concat()
    }

    /// Puts and deletes since the last call, uuids shown as `<uuid>`.
    pub fn take_log(&self) -> String {
        let lines = std::mem::take(&mut *self.log.lock());
        redact(&lines.iter().map(|l| format!("{l}\n")).collect::<String>())
    }

    /// The names kept, in order.
    pub fn names(&self) -> Vec<String> {
        self.kept.lock().keys().cloned().collect()
    }
}

impl autoscaling::alarms::PolicyAlarms for Alarms {
    fn put(&self, alarm: &autoscaling::alarms::TrackingAlarm) -> Result<(), String> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("CloudWatch refused the alarm".into());
        }
        self.log.lock().push(format!("put {}", alarm.name));
        self.kept.lock().insert(alarm.name.clone(), alarm.clone());
        Ok(())
    }

    fn delete(&self, names: &[String]) -> Result<(), String> {
        self.log.lock().push(format!("delete {}", names.join(" ")));
        let mut kept = self.kept.lock();
        for n in names {
            kept.remove(n);
        }
        Ok(())
    }
}

/// Text with every UUID (8-4-4-4-12 hex digits) replaced by `<uuid>`.
pub fn redact(text: &str) -> String {
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() }
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8().max(1);
        }
    }
    out
}
