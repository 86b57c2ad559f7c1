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
use cfn_stacks::{Engine, EngineConfig, NestedStacks, Providers, TemplateLoader};
use clock::Clock;
use store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod wait;

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot recover the stacks of the data directory: {0}")]
    Recover(#[from] cfn_stacks::CfnError),
}

#[derive(Clone)]
pub struct RegionConfig {
    /// Where the state lives; `None` keeps it in memory (gone when the process ends).
    pub data_dir: Option<PathBuf>,
    pub listen: SocketAddr,
    pub time_scale: f64,
    pub account: Account,
    /// Maps nested stacks' TemplateURLs to local files (from the overrides file).
    pub template_loader: TemplateLoader,
}

impl Default for RegionConfig {
    fn default() -> RegionConfig {
        RegionConfig {
            data_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            time_scale: 1.0,
            account: Account::default(),
            template_loader: Arc::new(cfn_stacks::load_local_template),
        }
    }
}

/// A running region.
pub struct Region {
    pub engine: Arc<Engine>,
    pub store: Arc<Store>,
    pub clock: Clock,
    /// `http://ADDR` of the API.
    pub endpoint: String,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
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
        let nested = NestedStacks::new();
        let mut providers = Providers::default();
        providers.register(&["AWS::CloudFormation::Stack"], nested.clone());
        providers.register(
            &["AWS::CloudFormation::WaitConditionHandle"],
            Arc::new(wait::WaitHandles { endpoint: endpoint.clone() }),
        );
        let ssm = Arc::new(cfn_template::public_parameters());
        let engine_config = EngineConfig {
            account: config.account.clone(),
            api_endpoint: endpoint.clone(),
            template_loader: config.template_loader.clone(),
        };
        let engine = Engine::new(store.clone(), clock.clone(), engine_config, providers, ssm);
        nested.attach(&engine);
        let recovered = engine.recover()?;
        if recovered > 0 {
            tracing::warn!(
                "{recovered} stack operation(s) were interrupted by the last shutdown and are marked failed"
            );
        }
        let services = Arc::new(api::Services { cloudformation: engine.clone() });
        let shutdown = CancellationToken::new();
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
        Ok(Region { engine, store, clock, endpoint, addr, shutdown, server })
    }

    /// Stops serving and waits for running operations to end.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.engine.drain().await;
    }
}
