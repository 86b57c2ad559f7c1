//! The loopback ports instances answer on.
//!
//! A port stays an instance's from its launch until it terminates, across app restarts and
//! region restarts. Inside a region the pool knows its own ports; between regions on one
//! machine (two `cumulo up`s, tests side by side) each port is reserved by an exclusive `flock`
//! on a file named for it in a directory every region shares, held as long as the instance
//! owns the port and released by the kernel when the region dies. So a port freed by a dead
//! app is never handed to another region's instance, and a region's health checks and traffic
//! never reach another region's app.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use super::*;

/// Ports handed to instances, with their machine-wide reservations.
pub(crate) struct PortPool {
    range: (u16, u16),
    /// Where the reservations live; `None`: this region's own ports only.
    locks: Option<PathBuf>,
    held: HashMap<u16, Option<Flock<File>>>,
    cursor: u16,
}

impl PortPool {
    /// A pool over `range` (low inclusive, high exclusive), searching from `start`.
    pub(crate) fn new(range: (u16, u16), locks: Option<PathBuf>, start: u16) -> PortPool {
        if let Some(dir) = &locks
            && std::fs::create_dir_all(dir).is_ok()
        {
            // Regions of other users share it too (sticky, like /tmp).
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
        }
        PortPool { range, locks, held: HashMap::new(), cursor: start }
    }

    /// Takes `port` for an instance of this region: not held here, not reserved by another
    /// region, and bindable now.
    pub(crate) fn take(&mut self, port: u16) -> bool {
        if port == 0 || self.held.contains_key(&port) {
            return false;
        }
        let reservation = match &self.locks {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{port}.lock"));
                let file =
                    match File::options().create(true).truncate(false).write(true).open(&path) {
                        Ok(f) => f,
                        // Created by another user: a read-only descriptor takes the lock as well.
                        Err(_) => match File::open(&path) {
                            Ok(f) => f,
                            Err(_) => return false,
                        },
                    };
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => Some(lock),
                    Err(_) => return false,
                }
            }
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return false;
        }
        self.held.insert(port, reservation);
        true
    }

    /// A free port from the range, or `None` when every one is taken.
    pub(crate) fn allocate(&mut self) -> Option<u16> {
        let (low, high) = self.range;
        for _ in low..high {
            self.cursor =
                if self.cursor < low || self.cursor >= high - 1 { low } else { self.cursor + 1 };
            if self.take(self.cursor) {
                return Some(self.cursor);
            }
        }
        None
    }

    /// Gives a port back (its instance terminated); its reservation ends.
    pub(crate) fn release(&mut self, port: u16) {
        self.held.remove(&port);
    }

    pub(crate) fn holds(&self, port: u16) -> bool {
        self.held.contains_key(&port)
    }
}

impl Ec2 {
    /// A loopback port for an instance's app, from a range outside the kernel's ephemeral
    /// ports (so that no `bind(0)` elsewhere takes it before the app binds it), unused by any
    /// other instance of any region, and bindable now.
    pub(super) fn allocate_port(&self) -> Option<u16> {
        let port = self.ports.lock().allocate();
        port.or_else(|| {
            tracing::warn!("every instance port is taken: using an unreserved ephemeral port");
            free_port()
        })
    }

    /// Keeps an instance's recorded ports across a restart of its machine (or of the region)
    /// when they are still its own to take; the others get new ports.
    pub(super) fn claim_ports(&self, record: &mut InstanceRecord) {
        let mut pool = self.ports.lock();
        for p in &mut record.ports {
            if !pool.holds(p.host) && !pool.take(p.host) {
                p.host = pool.allocate().unwrap_or(0);
            }
        }
    }

    pub(super) fn release_ports(&self, record: &InstanceRecord) {
        let mut pool = self.ports.lock();
        for p in &record.ports {
            pool.release(p.host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ports tests may bind: above the instances' range, below the kernel's ephemeral ports;
    // one range per test, as tests run side by side.

    #[test]
    fn two_regions_never_hold_the_same_port_even_after_an_app_dies() {
        const RANGE: (u16, u16) = (32_100, 32_104);
        let dir = tempfile::tempdir().unwrap();
        let locks = Some(dir.path().to_path_buf());
        // Both regions search from the same place: the worst case for a race.
        let mut a = PortPool::new(RANGE, locks.clone(), RANGE.0);
        let mut b = PortPool::new(RANGE, locks.clone(), RANGE.0);
        let a1 = a.allocate().unwrap();
        let a2 = a.allocate().unwrap();
        // Region A's app binds its first port, then is killed: the port is free to bind, but
        // it is still A's instance's port.
        drop(std::net::TcpListener::bind(("127.0.0.1", a1)).unwrap());
        let b1 = b.allocate().unwrap();
        let b2 = b.allocate().unwrap();
        let mut all = vec![a1, a2, b1, b2];
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4, "four distinct ports: {a1} {a2} {b1} {b2}");
        assert_eq!(b.allocate(), None, "the range is used up: nothing of A's is handed out");
        assert!(!b.take(a1), "A's dead app's port stays A's");
        // A restarts its app's machine: the port is still its own.
        assert!(a.holds(a1));
        // A's instance terminates: only then can another region take the port.
        a.release(a1);
        assert_eq!(b.allocate(), Some(a1));
    }

    #[test]
    fn a_region_that_dies_gives_its_ports_back() {
        const RANGE: (u16, u16) = (32_110, 32_114);
        let dir = tempfile::tempdir().unwrap();
        let locks = Some(dir.path().to_path_buf());
        let mut a = PortPool::new(RANGE, locks.clone(), RANGE.0);
        let taken: Vec<u16> = (0..4).filter_map(|_| a.allocate()).collect();
        assert_eq!(taken.len(), 4);
        drop(a); // What the kernel does to the locks of a killed process.
        let mut b = PortPool::new(RANGE, locks, RANGE.0);
        assert_eq!((0..4).filter_map(|_| b.allocate()).count(), 4);
    }

    #[test]
    fn a_port_something_else_listens_on_is_skipped() {
        const RANGE: (u16, u16) = (32_120, 32_124);
        let held = std::net::TcpListener::bind(("127.0.0.1", RANGE.0 + 1)).unwrap();
        let mut pool = PortPool::new(RANGE, None, RANGE.0);
        let got: Vec<u16> = (0..3).filter_map(|_| pool.allocate()).collect();
        assert!(!got.contains(&(RANGE.0 + 1)), "{got:?}");
        drop(held);
    }
}
