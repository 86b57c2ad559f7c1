//! A region: one process's worth of Cumulo. It opens the state store in the data directory,
//! makes the clock, builds the stack engine with every service's resource providers, recovers
//! what a previous run left, and serves the AWS APIs.
//!
//! Architecture Invariant: this is the only place that knows every service; services know the
//! engine's provider interface, not each other's crates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aws_ids::Account;
use cfn_stacks::{Engine, EngineConfig, NestedStacks, Providers};
use clock::Clock;
use store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod collector;
mod monitoring;
mod notifications;
mod overrides;
mod ssm;
mod wait;

pub use overrides::Overrides;

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot recover the stacks of the data directory: {0}")]
    Recover(#[from] cfn_stacks::CfnError),
    #[error("cannot start EC2: {0}")]
    Ec2(#[from] ec2::Ec2Error),
    #[error(transparent)]
    Ca(#[from] elb::ca::CaError),
    #[error("cannot recover the load balancers: {0}")]
    Elb(#[from] elb::ElbError),
    #[error("cannot recover the Auto Scaling groups: {0}")]
    AutoScaling(#[from] autoscaling::AsgError),
    #[error("cannot open the metric store: {0}")]
    CloudWatch(#[from] cloudwatch::CwError),
    #[error("cannot prepare the instances' directory {path}: {source}")]
    Runtime { path: String, source: std::io::Error },
}

#[derive(Clone)]
pub struct RegionConfig {
    /// Where the state lives; `None` keeps it in memory (gone when the process ends).
    pub data_dir: Option<PathBuf>,
    pub listen: SocketAddr,
    pub time_scale: f64,
    pub account: Account,
    /// Local-only changes: what instances run, where nested templates are.
    pub overrides: Overrides,
    /// The cumulo executable (instances run its helpers and supervisor).
    pub exe: PathBuf,
    /// How long instance processes get between SIGTERM and SIGKILL.
    pub grace: std::time::Duration,
    /// Where the regions of this machine reserve the loopback ports of their instances, so
    /// that two regions never answer for each other.
    pub port_locks: Option<PathBuf>,
    /// Where the search for instance ports starts (`None`: a random place).
    pub port_start: Option<u16>,
    /// The system's temporary directory (the cli passes `std::env::temp_dir()`, which reads
    /// `TMPDIR`): instances' directories go there when Cumulo runs as root or keeps no data.
    pub temp_dir: PathBuf,
    /// How many threads the load balancers' data plane runs, `None` for one per CPU. The data
    /// plane is the process's, so the first region of a process decides.
    pub proxy_threads: Option<usize>,
    /// The access keys whose SigV4 signatures the API checks; `None` accepts any signature.
    pub credentials: Option<api::sigv4::Credentials>,
}

impl Default for RegionConfig {
    fn default() -> RegionConfig {
        RegionConfig {
            data_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            time_scale: 1.0,
            account: Account::default(),
            overrides: Overrides::default(),
            exe: PathBuf::from("cumulo"),
            grace: std::time::Duration::from_secs(5),
            // One directory for the whole machine, whoever runs the region.
            port_locks: Some(PathBuf::from("/tmp/cumulo-ports")),
            port_start: None,
            temp_dir: PathBuf::from("/tmp"),
            proxy_threads: None,
            credentials: None,
        }
    }
}

/// A running region.
pub struct Region {
    pub engine: Arc<Engine>,
    pub ec2: Arc<ec2::Ec2>,
    pub elb: Arc<elb::Elb>,
    pub autoscaling: Arc<autoscaling::AutoScaling>,
    pub cloudwatch: Arc<cloudwatch::CloudWatch>,
    pub sns: Arc<sns::Sns>,
    pub store: Arc<Store>,
    pub clock: Clock,
    /// `http://ADDR` of the API.
    pub endpoint: String,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    /// CloudWatch's evaluator (it writes the metric store once more when it stops).
    alarms: JoinHandle<()>,
    /// Removed at shutdown when the region made it for this run only.
    scratch: Option<PathBuf>,
}

impl Region {
    pub async fn start(config: RegionConfig) -> Result<Region, RegionError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| RegionError::Listen { addr: config.listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| RegionError::Listen { addr: config.listen, source })?;
        let endpoint = format!("http://{addr}");
        let store = Arc::new(match &config.data_dir {
            Some(dir) => Store::open(dir)?,
            None => Store::in_memory()?,
        });
        let clock = Clock::new(config.time_scale);
        if let Some(n) = config.proxy_threads {
            elb_proxy::workers::Workers::set_threads(n);
        }
        let (runtime_dir, scratch, run_as) =
            runtime_dir(config.data_dir.as_deref(), &config.temp_dir)?;
        // Access logs stay with the data (or the run's scratch directory), as if it held the
        // S3 buckets the attributes name.
        let logs_dir = config
            .data_dir
            .as_ref()
            .map_or_else(|| runtime_dir.join("elb-access-logs"), |d| d.join("elb-access-logs"));
        let ec2_config = ec2::Ec2Config {
            account: config.account.clone(),
            runtime_dir,
            exe: config.exe.clone(),
            api_endpoint: endpoint.clone(),
            run_as,
            overrides: config.overrides.instances.clone(),
            grace: config.grace,
            port_locks: config.port_locks.clone(),
            port_start: config.port_start,
        };
        let ec2 = ec2::Ec2::new(store.clone(), clock.clone(), ec2_config)?;
        // The local CA stays with the data (so a trusted CA stays trusted across restarts).
        let ca_dir = config.data_dir.as_ref().map(|d| d.join("ca"));
        let ca = Arc::new(elb::Ca::load_or_create(ca_dir.as_deref())?);
        let elb =
            elb::Elb::new(store.clone(), clock.clone(), ec2.clone(), config.account.clone(), ca);
        elb.set_access_log_dir(logs_dir);
        let autoscaling = autoscaling::AutoScaling::new(
            store.clone(),
            clock.clone(),
            ec2.clone(),
            elb.clone(),
            config.account.clone(),
        );
        let cloudwatch = Arc::new(cloudwatch::CloudWatch::new(
            store.clone(),
            clock.clone(),
            config.account.clone(),
        )?);
        let sns =
            sns::Sns::new(store.clone(), clock.clone(), config.account.clone(), endpoint.clone());
        cloudwatch.set_actions(Arc::new(monitoring::Actions {
            ec2: ec2.clone(),
            autoscaling: autoscaling.clone(),
            sns: sns.clone(),
        }));
        autoscaling
            .set_notifications(Arc::new(notifications::GroupNotifications { sns: sns.clone() }));
        autoscaling.set_policy_alarms(Arc::new(monitoring::TrackingAlarms {
            cloudwatch: cloudwatch.clone(),
        }));
        let nested = NestedStacks::new();
        let mut providers = Providers::default();
        providers.register(&["AWS::CloudFormation::Stack"], nested.clone());
        providers.register(ec2::TYPES, Arc::new(ec2::Ec2Provider { ec2: ec2.clone() }));
        providers.register(elb::TYPES, Arc::new(elb::ElbProvider { elb: elb.clone() }));
        providers.register(
            autoscaling::TYPES,
            Arc::new(autoscaling::AsgProvider { asg: autoscaling.clone() }),
        );
        providers.register(
            cloudwatch::providers::TYPES,
            Arc::new(cloudwatch::providers::AlarmProvider { cloudwatch: cloudwatch.clone() }),
        );
        providers.register(
            sns::providers::TYPES,
            Arc::new(sns::providers::SnsProvider { sns: sns.clone() }),
        );
        providers.register(
            &["AWS::CloudFormation::WaitConditionHandle"],
            Arc::new(wait::WaitHandles { endpoint: endpoint.clone() }),
        );
        // CloudWatch Logs; its metric filters publish to CloudWatch.
        let logs = ::logs::Logs::new(store.clone(), clock.clone(), config.account.clone());
        logs.set_metric_sink(Arc::new(monitoring::LogMetrics { cloudwatch: cloudwatch.clone() }));
        providers.register(
            ::logs::providers::TYPES,
            Arc::new(::logs::providers::LogsProvider { logs: logs.clone() }),
        );
        let ssm = Arc::new(::ssm::Ssm::new(store.clone(), clock.clone(), config.account.clone()));
        providers
            .register(&["AWS::SSM::Parameter"], Arc::new(ssm::SsmProvider { ssm: ssm.clone() }));
        let engine_config = EngineConfig {
            account: config.account.clone(),
            account_resources: Some(ec2.clone()),
            api_endpoint: endpoint.clone(),
            template_loader: config.overrides.template_loader(),
        };
        let engine =
            Engine::new(store.clone(), clock.clone(), engine_config, providers, ssm.clone());
        nested.attach(&engine);
        let recovered = engine.recover()?;
        if recovered > 0 {
            tracing::warn!(
                "{recovered} stack operation(s) were interrupted by the last shutdown and are marked failed"
            );
        }
        let rebooted = ec2.recover().await?;
        if rebooted > 0 {
            tracing::info!("{rebooted} instance(s) were running before the restart and boot again");
        }
        elb.recover().await?;
        autoscaling.recover()?;
        // Every AWS service the endpoint answers for: adding one is a line here.
        let mut registry = api::registry::Registry::default();
        registry
            .add(Arc::new(api::cloudformation::Api(engine.clone())))
            .add(Arc::new(api::ec2::Api(ec2.clone(), clock.clone())))
            .add(Arc::new(api::elbv2::Api(elb.clone())))
            .add(Arc::new(api::elb_classic::Api(elb.clone())))
            .add(Arc::new(api::autoscaling::Api(autoscaling.clone())))
            .add(Arc::new(api::iam::Api(ec2.clone())))
            .add(Arc::new(api::sts::Api(config.account.clone(), clock.clone())))
            .add(Arc::new(api::ssm::Api::new(ssm.clone())))
            .add(Arc::new(api::cloudwatch::Api::new(cloudwatch.clone())))
            .add(Arc::new(api::sns::Api::new(sns.clone())))
            .add(Arc::new(api::logs::Api::new(logs.clone())));
        let services = Arc::new(api::Services {
            cloudformation: engine.clone(),
            ec2: ec2.clone(),
            elb: elb.clone(),
            autoscaling: autoscaling.clone(),
            clock: clock.clone(),
            registry,
            credentials: config.credentials.clone(),
            sns: Some(sns.clone()),
        });
        let shutdown = CancellationToken::new();
        // Stack events to their stacks' NotificationARNs.
        notifications::forward_stack_events(
            engine.clone(),
            sns.clone(),
            config.account.account_id.clone(),
            shutdown.clone(),
        );
        let token = shutdown.clone();
        let app = api::router(services);
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(e) = result {
                tracing::error!("API server stopped: {e}");
            }
        });
        // CPU and memory of instances, sampled every 10 s (AWS time) while the region serves,
        // and every service's measurements published to CloudWatch each minute.
        let sampler = ec2.clone();
        let producers = monitoring::Producers::new(
            cloudwatch.clone(),
            ec2.clone(),
            elb.clone(),
            autoscaling.clone(),
        );
        // What instances' CloudWatch agents ship to Logs, read on the same tick.
        let collector = collector::Collector::new(ec2.clone(), logs.clone());
        let sampling = shutdown.clone();
        let ticks = clock.clone();
        tokio::spawn(async move {
            let mut tick = ticks.interval(std::time::Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        sampler.sample_usage();
                        producers.tick();
                        collector.tick();
                    }
                    _ = sampling.cancelled() => return,
                }
            }
        });
        // Alarms evaluated on the clock; the metric store written as it goes.
        let alarms = tokio::spawn(cloudwatch.clone().run(shutdown.clone()));
        // Metric filters' minutes published and retention enforced on the clock.
        tokio::spawn(logs.clone().run(shutdown.clone()));
        Ok(Region {
            engine,
            ec2,
            elb,
            autoscaling,
            cloudwatch,
            sns,
            store,
            clock,
            endpoint,
            addr,
            shutdown,
            server,
            alarms,
            scratch,
        })
    }

    /// Stops serving, waits for running operations to end, stops every instance's processes
    /// (their records stay: they boot again when the region restarts on the same data).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        let _ = self.alarms.await;
        self.sns.shutdown().await;
        // Real time, whatever the time scale: how long Ctrl-C may wait for operations to end.
        self.engine.drain(std::time::Duration::from_secs(2)).await;
        self.autoscaling.shutdown();
        self.elb.shutdown();
        self.ec2.shutdown().await;
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where instance directories go, and as whom instances run.
///
/// Instances never run as root: when Cumulo runs as root they run as `nobody`, in a directory
/// under the system's temporary directory that `nobody` can reach (a root-owned data
/// directory usually is not). Otherwise they live in `<data dir>/run`, or in a scratch
/// directory removed at shutdown when the region keeps no data.
/// The instances' directory, a scratch directory to remove at shutdown, the instances' user.
type Runtime = (PathBuf, Option<PathBuf>, Option<(u32, u32)>);

fn runtime_dir(
    data_dir: Option<&std::path::Path>,
    temp_dir: &std::path::Path,
) -> Result<Runtime, RegionError> {
    let root = nix::unistd::geteuid().is_root();
    let run_as = if root {
        let nobody = nix::unistd::User::from_name("nobody").ok().flatten();
        Some(nobody.map_or((65534, 65534), |u| (u.uid.as_raw(), u.gid.as_raw())))
    } else {
        None
    };
    let make = |dir: &std::path::Path| -> Result<(), RegionError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| RegionError::Runtime { path: dir.display().to_string(), source })?;
        if root {
            use std::os::unix::fs::PermissionsExt;
            // Traversable by the instances' user, not listable.
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
        }
        Ok(())
    };
    match data_dir {
        Some(data) if !root => {
            let dir = data.join("run");
            make(&dir)?;
            Ok((dir, None, run_as))
        }
        Some(data) => {
            let key = data
                .display()
                .to_string()
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            let dir = temp_dir.join(format!("cumulo-run-{key:016x}"));
            make(&dir)?;
            Ok((dir, None, run_as))
        }
        None => {
            let dir =
                temp_dir.join(format!("cumulo-run-{}-{}", std::process::id(), aws_ids::hex(6)));
            make(&dir)?;
            Ok((dir.clone(), Some(dir), run_as))
        }
    }
}
