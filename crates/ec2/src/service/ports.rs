//! The loopback ports instances answer on.

use super::*;

impl Ec2 {
    /// A loopback port for an instance's app, from a range outside the kernel's ephemeral
    /// ports (so that no `bind(0)` elsewhere takes it before the app binds it), unused by any
    /// other instance, and bindable now.
    pub(super) fn allocate_port(&self) -> Option<u16> {
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

    pub(super) fn release_ports(&self, record: &InstanceRecord) {
        let mut ports = self.ports.lock();
        for p in &record.ports {
            ports.0.remove(&p.host);
        }
    }
}
