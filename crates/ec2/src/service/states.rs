//! State changes asked from outside: stop, start, terminate, zone failures, recovery after a
//! restart, shutdown, and CPU sampling.

use super::*;

impl Ec2 {
    /// Takes a zone down: every running instance there stops at once (its processes are
    /// killed) and launches into the zone fail until it is restored. Returns the stopped ids.
    pub fn fail_zone(&self, zone: &str) -> Result<Vec<String>, Ec2Error> {
        self.failed_zones.lock().insert(zone.to_string());
        let ids: Vec<String> = self
            .instances()?
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
        Ok(ids)
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
        let mut changes = self.subscribe();
        if self.begin_terminate(id)? {
            self.wait_for(&mut changes, id, InstanceState::Terminated).await?;
        }
        Ok(())
    }

    /// Starts a termination and returns at once (what the API answers, `shutting-down`):
    /// the instance is terminated when its machine is gone. Whether one began.
    pub fn begin_terminate(&self, id: &str) -> Result<bool, Ec2Error> {
        let mut record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        match record.state {
            InstanceState::Terminated => return Ok(false),
            InstanceState::Stopped => {
                let reason = "Client.UserInitiatedShutdown: User initiated shutdown";
                self.set_terminated(&mut record, Some(reason.into()))?;
                return Ok(false);
            }
            _ => {}
        }
        self.set_state(&mut record, InstanceState::ShuttingDown, None)?;
        if !self.ask(id, 2) {
            self.machine_gone(id, 2);
        }
        Ok(true)
    }

    /// StopInstances.
    pub async fn stop(&self, id: &str) -> Result<(), Ec2Error> {
        let mut changes = self.subscribe();
        if self.begin_stop(id)? {
            self.wait_for(&mut changes, id, InstanceState::Stopped).await?;
        }
        Ok(())
    }

    /// Starts a stop and returns at once (`stopping`): the instance is stopped when its
    /// machine is gone. Whether one began.
    pub fn begin_stop(&self, id: &str) -> Result<bool, Ec2Error> {
        let mut record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if record.state != InstanceState::Running && record.state != InstanceState::Pending {
            return Ok(false);
        }
        self.set_state(&mut record, InstanceState::Stopping, None)?;
        if !self.ask(id, 1) {
            self.machine_gone(id, 1);
        }
        Ok(true)
    }

    /// RebootInstances: a running instance's processes stop and start again; it stays
    /// `running`, with its addresses and ports.
    pub fn reboot(&self, id: &str) -> Result<(), Ec2Error> {
        let record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if record.state != InstanceState::Running {
            return Err(Ec2Error::Rejected {
                code: "IncorrectInstanceState",
                message: format!("The instance '{id}' is not in the 'running' state."),
            });
        }
        if !self.ask(id, 4) {
            self.machine_gone(id, 4);
        }
        Ok(())
    }

    /// The `recover` action of a CloudWatch alarm: a running instance moves to a new machine
    /// (a fresh process tree) with the same id, private address, ports and files. Whether it
    /// moved (an instance that is not running is left alone, as AWS leaves it).
    pub async fn recover_instance(&self, id: &str) -> Result<bool, Ec2Error> {
        let mut record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if record.state != InstanceState::Running {
            return Ok(false);
        }
        if !self.impaired(id) {
            // A healthy machine is replaced too: stop it as a reboot would, then boot anew.
            if !self.ask(id, 4) {
                self.machine_gone(id, 4);
            }
            return Ok(true);
        }
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(record.dir.join("console.log"))
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    b"Cumulo: instance recovery: booting on a new machine (same instance id, addresses and volumes)\n",
                )
            });
        self.start_processes(&mut record).await?;
        Ok(true)
    }

    /// `cumulo chaos cpu-burn`: the instance's machine starts a burner inside its own
    /// process tree (so its CPUUtilization rises) at `percent` of its vCPUs for `aws` time.
    pub fn burn_cpu(&self, id: &str, percent: f64, aws: Duration) -> Result<(), Ec2Error> {
        let record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        let running = self.running.lock();
        let Some(r) = running.get(id).filter(|_| record.state == InstanceState::Running) else {
            return Err(Ec2Error::Rejected {
                code: "IncorrectInstanceState",
                message: format!("The instance '{id}' is not in the 'running' state."),
            });
        };
        if !(percent > 0.0 && percent <= 100.0) {
            return Err(Ec2Error::Invalid(format!(
                "The CPU to burn must be a percentage in (0, 100], not {percent}."
            )));
        }
        let burn = supervisor::Burn {
            percent,
            seconds: self.clock.real_duration(aws).as_secs_f64(),
            threads: r.vcpus.ceil().max(1.0) as u32,
        };
        supervisor::start_burn(&record.dir, r.shim_pid, &burn)
            .map_err(|e| Ec2Error::Launch(format!("cannot start the CPU burn: {e}")))
    }

    /// StartInstances (a stopped instance boots again; new public address).
    pub async fn start(&self, id: &str) -> Result<(), Ec2Error> {
        let mut record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if record.state != InstanceState::Stopped {
            return Err(Ec2Error::Invalid(format!(
                "The instance '{id}' is not in a state from which it can be started."
            )));
        }
        if record.public_ip.is_some() {
            record.public_ip = Some(format!("198.51.100.{}", 1 + fastrand_index(253)));
        }
        self.set_state(&mut record, InstanceState::Pending, None)?;
        self.start_processes(&mut record).await
    }

    /// Replaces what a stopped instance runs (an in-place update of an instance resource).
    pub fn update_stopped(
        &self,
        id: &str,
        user_data: Option<String>,
        instance_type: Option<String>,
    ) -> Result<(), Ec2Error> {
        let mut record = self.instance(id)?.ok_or_else(|| Ec2Error::NoSuchInstance(id.into()))?;
        if let Some(u) = user_data {
            record.user_data = Some(u);
        }
        if let Some(t) = instance_type {
            record.instance_type = t;
        }
        self.save(&record)
    }

    pub(super) async fn wait_for(
        &self,
        changes: &mut broadcast::Receiver<InstanceChange>,
        id: &str,
        state: InstanceState,
    ) -> Result<(), Ec2Error> {
        // Bounded: the supervisor kills what is left after the grace period, so only a store
        // that keeps refusing the change can hold it this long.
        self.clock
            .wait_until(Duration::from_secs(3600), changes, || match self.instance(id) {
                Ok(r) => r.is_none_or(|r| r.state == state).then_some(Ok(())),
                Err(e) => Some(Err(e)),
            })
            .await
            .map_err(|_| {
                Ec2Error::Invalid(format!(
                    "The instance {id} did not become {} in time.",
                    state.name()
                ))
            })?
    }

    /// After a restart: instances that were running boot again from their recorded definition
    /// (as after a host reboot); transitions that were under way complete.
    pub async fn recover(&self) -> Result<usize, Ec2Error> {
        let mut n = 0;
        for mut record in self.instances()? {
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
                    self.settle(record, InstanceState::Stopped, reason)
                }
                InstanceState::ShuttingDown => {
                    let reason = record.state_reason.clone();
                    self.settle(record, InstanceState::Terminated, reason)
                }
                _ => {}
            }
        }
        Ok(n)
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
        // The grace period is real time (the supervisor's); a machine that has not stopped
        // 5 s after it is left to the supervisor's own SIGKILL.
        let limit = self.clock.aws_duration(self.config.grace + Duration::from_secs(5));
        let _ = self
            .clock
            .timeout(limit, async {
                loop {
                    let gone = self.machines_gone.notified();
                    if self.running.lock().is_empty() {
                        return;
                    }
                    gone.await;
                }
            })
            .await;
    }

    /// Samples CPU and memory of every running instance (call periodically).
    pub fn sample_usage(&self) {
        let table = ProcessTable::snapshot();
        let now = self.clock.instant();
        let running: Vec<(String, u32, f64)> =
            self.running.lock().iter().map(|(id, r)| (id.clone(), r.shim_pid, r.vcpus)).collect();
        let mut samples = self.samples.lock();
        for (id, pid, vcpus) in running {
            let usage = table.tree_usage(pid);
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
