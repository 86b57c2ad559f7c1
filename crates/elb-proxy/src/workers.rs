//! The data plane's threads: one single-threaded runtime per CPU, each accepting on its own
//! `SO_REUSEPORT` socket of every listener. A client connection, its requests and the target
//! connections that serve them stay on one thread: no work stealing, no locks between threads,
//! and a per-thread pool of target connections.

use std::sync::OnceLock;

use tokio::runtime::Handle;

/// How often a thread closes pooled target connections whose target has closed them.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Workers {
    handles: Vec<Handle>,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();
static THREADS: OnceLock<usize> = OnceLock::new();

impl Workers {
    /// Sets how many data-plane threads the process will start (the edge decides: the cli
    /// reads `CUMULO_PROXY_THREADS`). Only the first call before the threads start counts;
    /// returns whether this one did.
    pub fn set_threads(n: usize) -> bool {
        WORKERS.get().is_none() && THREADS.set(n).is_ok()
    }

    /// The process's data-plane threads (started on first use: as many as [`set_threads`]
    /// said, else one per available CPU; at most 16).
    ///
    /// [`set_threads`]: Workers::set_threads
    pub fn get() -> &'static Workers {
        WORKERS.get_or_init(|| {
            let n = THREADS
                .get()
                .copied()
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .clamp(1, 16);
            let mut handles = Vec::with_capacity(n);
            for i in 0..n {
                let (tx, rx) = std::sync::mpsc::channel();
                let spawned = std::thread::Builder::new().name(format!("cumulo-proxy-{i}")).spawn(
                    move || {
                        let runtime = match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => rt,
                            Err(e) => {
                                tracing::error!("cannot start a proxy thread: {e}");
                                return;
                            }
                        };
                        let _ = tx.send(runtime.handle().clone());
                        runtime.spawn(crate::h1::Connection::sweep_idle(SWEEP_EVERY));
                        // Runs the thread's tasks until the process ends.
                        runtime.block_on(std::future::pending::<()>());
                    },
                );
                if spawned.is_ok()
                    && let Ok(handle) = rx.recv()
                {
                    handles.push(handle);
                }
            }
            if handles.is_empty() {
                // No thread could start: serve from the caller's runtime.
                if let Ok(h) = Handle::try_current() {
                    handles.push(h);
                }
            }
            Workers { handles }
        })
    }

    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }
}
