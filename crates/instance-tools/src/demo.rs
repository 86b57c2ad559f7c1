//! `cumulo demo-app`: a tiny web app for labs and drills. It answers with the instance it runs
//! on and its zone, has a health check, a switch to make that check fail, a CPU burner and a
//! slow endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The port the template expects (e.g. 8080): the instance's `PORT_<port>` is used when
    /// set, so that many instances can run side by side. Default: `$PORT`, else 8080.
    #[arg(long)]
    port: Option<u16>,
    /// The address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// A word added to every answer (to tell versions apart in rolling updates).
    #[arg(long, default_value = "")]
    version: String,
}

struct App {
    instance: String,
    zone: String,
    version: String,
    failing: AtomicBool,
    requests: AtomicU64,
    started: Instant,
}

/// The port to listen on: `PORT_<expected>` for `--port expected`, else `--port`, else `PORT`.
fn port(args: &Args) -> u16 {
    let env_port = |name: String| std::env::var(name).ok().and_then(|p| p.parse::<u16>().ok());
    match args.port {
        Some(p) => env_port(format!("PORT_{p}")).unwrap_or(p),
        None => env_port("PORT".into()).unwrap_or(8080),
    }
}

/// Who we are: from the instance's environment, else its metadata service.
async fn identity() -> (String, String) {
    let id = std::env::var("CUMULO_INSTANCE_ID").ok();
    let zone = std::env::var("CUMULO_AVAILABILITY_ZONE").ok();
    if let (Some(id), Some(zone)) = (id.clone(), zone.clone()) {
        return (id, zone);
    }
    let base = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|_| "http://169.254.169.254/".into());
    let base = base.trim_end_matches('/').to_string();
    let id = match id {
        Some(i) => i,
        None => crate::http::get(&format!("{base}/latest/meta-data/instance-id"))
            .await
            .unwrap_or_else(|_| "unknown-instance".into()),
    };
    let zone = match zone {
        Some(z) => z,
        None => crate::http::get(&format!("{base}/latest/meta-data/placement/availability-zone"))
            .await
            .unwrap_or_else(|_| "unknown-zone".into()),
    };
    (id, zone)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (instance, zone) = identity().await;
    let app = Arc::new(App {
        instance,
        zone,
        version: args.version.clone(),
        failing: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        started: Instant::now(),
    });
    let router = Router::new()
        .route("/", get(hello))
        .route("/health", get(health))
        // What web servers answer by default, and what many templates health-check.
        .route("/index.html", get(index))
        .route("/fail", get(fail).post(fail))
        .route("/recover", get(recover).post(recover))
        .route("/burn", get(burn).post(burn))
        .route("/slow", get(slow))
        .route("/headers", get(headers))
        .with_state(app.clone());
    let addr = SocketAddr::new(args.bind, port(&args));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "demo app for {} in {} listening on {}",
        app.instance,
        app.zone,
        listener.local_addr()?
    );
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

async fn hello(State(app): State<Arc<App>>) -> impl IntoResponse {
    let n = app.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let version =
        if app.version.is_empty() { String::new() } else { format!(" ({})", app.version) };
    format!("Hello from {} in {}{version} — request {n}\n", app.instance, app.zone)
}

/// The page a plain web server serves: the greeting, or 503 while failing (it is what many
/// templates' health checks ask for).
async fn index(State(app): State<Arc<App>>) -> axum::response::Response {
    if app.failing.load(Ordering::SeqCst) {
        return health(State(app)).await.into_response();
    }
    hello(State(app)).await.into_response()
}

async fn health(State(app): State<Arc<App>>) -> impl IntoResponse {
    if app.failing.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "failing on purpose (GET /recover to heal)\n")
    } else {
        (StatusCode::OK, "OK\n")
    }
}

async fn fail(State(app): State<Arc<App>>) -> impl IntoResponse {
    app.failing.store(true, Ordering::SeqCst);
    format!("{} now fails its health check\n", app.instance)
}

async fn recover(State(app): State<Arc<App>>) -> impl IntoResponse {
    app.failing.store(false, Ordering::SeqCst);
    format!("{} passes its health check again\n", app.instance)
}

#[derive(serde::Deserialize)]
struct BurnQuery {
    seconds: Option<u64>,
    threads: Option<usize>,
}

/// Burns CPU for `seconds` (default 60) on `threads` threads (default 1).
async fn burn(State(app): State<Arc<App>>, Query(q): Query<BurnQuery>) -> impl IntoResponse {
    let seconds = q.seconds.unwrap_or(60).min(3600);
    let threads = q.threads.unwrap_or(1).clamp(1, 16);
    for _ in 0..threads {
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(seconds);
            let mut x: u64 = 1;
            while Instant::now() < until {
                for _ in 0..100_000 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                std::hint::black_box(x);
            }
        });
    }
    format!(
        "{} burns {threads} CPU thread(s) for {seconds}s (up {}s)\n",
        app.instance,
        app.started.elapsed().as_secs()
    )
}

#[derive(serde::Deserialize)]
struct SlowQuery {
    ms: Option<u64>,
}

/// Answers after `ms` milliseconds (default 1000): an in-flight request for draining drills.
async fn slow(State(app): State<Arc<App>>, Query(q): Query<SlowQuery>) -> impl IntoResponse {
    let ms = q.ms.unwrap_or(1000).min(600_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("{} answered after {ms} ms\n", app.instance)
}

async fn headers(headers: HeaderMap) -> impl IntoResponse {
    let mut out = String::new();
    for (k, v) in &headers {
        out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
    }
    out
}
