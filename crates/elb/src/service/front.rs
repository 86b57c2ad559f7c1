//! Fronts that make DNS names answer: for each port a listener uses, 127.0.0.1 and ::1 (where
//! curl and browsers send `*.localhost`) listen and hand each connection to the load balancer
//! its Host or SNI names (`elb_proxy::front`). Their name tables are rebuilt with every
//! snapshot. A front port another program holds (another region, say) is left to it: that
//! region's names answer there, and `cumulo outputs` prints the address that always works.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use elb_proxy::front::FrontTable;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::model::{ListenerRecord, LoadBalancerRecord};

/// The fronts of one port.
pub(super) struct Front {
    table: Arc<FrontTable>,
    stop: CancellationToken,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A listening socket on `addr`, for the runtime we are on.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = std::net::TcpListener::bind(addr)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket)
}

impl Elb {
    /// Opens, updates and closes fronts for the listeners there are now.
    pub(super) fn refresh_fronts(&self, lbs: &[LoadBalancerRecord], listeners: &[ListenerRecord]) {
        let mut wanted: HashMap<u16, HashMap<String, SocketAddr>> = HashMap::new();
        for l in listeners {
            let Some(lb) = lbs.iter().find(|b| b.arn == l.lb_arn) else { continue };
            wanted
                .entry(l.port)
                .or_default()
                .insert(lb.dns_name.to_ascii_lowercase(), SocketAddr::from((lb.ip, l.bound_port)));
        }
        // Sockets are made on a runtime (a region always has one; some tests do not).
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut inner = self.inner.lock();
        if inner.stopped {
            return;
        }
        inner.fronts.retain(|port, _| wanted.contains_key(port));
        for (port, names) in wanted {
            if let Some(front) = inner.fronts.get(&port) {
                front.table.publish(names);
                continue;
            }
            let Some(runtime) = &runtime else { continue };
            let _guard = runtime.enter();
            let sockets: Vec<tokio::net::TcpListener> = [
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            ]
            .into_iter()
            .filter_map(|addr| match listen(addr) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::debug!(%addr, "no front for load balancer names here: {e}");
                    None
                }
            })
            .collect();
            if sockets.is_empty() {
                continue;
            }
            let table = FrontTable::new();
            table.publish(names);
            let stop = CancellationToken::new();
            for socket in sockets {
                runtime.spawn(elb_proxy::front::serve(socket, table.clone(), stop.clone()));
            }
            inner.fronts.insert(port, Front { table, stop });
        }
    }
}
