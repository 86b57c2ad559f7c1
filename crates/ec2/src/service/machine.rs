//! An instance's machine: its metadata service and supervised process tree, what it runs and
//! with which environment, and what happens when the machine goes away.

use super::*;

impl Ec2 {
    /// Starts (or restarts) an instance's processes: its metadata service and its supervisor.
    pub(super) async fn start_processes(
        &self,
        record: &mut InstanceRecord,
    ) -> Result<(), Ec2Error> {
        self.claim_ports(record);
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
        let shim_pid = supervised.pid();
        self.lost.lock().remove(&record.id);
        self.running.lock().insert(
            record.id.clone(),
            Running {
                shim_pid,
                imds_port,
                imds,
                asked: asked.clone(),
                vcpus: vcpus(&record.instance_type),
            },
        );
        if let Err(e) = self.set_state(record, InstanceState::Running, None) {
            // A machine the store does not know runs never: it goes at once.
            if let Some(r) = self.running.lock().remove(&record.id) {
                r.imds.abort();
            }
            supervisor::power_off(shim_pid);
            return Err(e);
        }
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
    pub(super) fn program(&self, record: &InstanceRecord) -> (String, Vec<String>, Vec<String>) {
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

    pub(super) fn environment(
        &self,
        record: &InstanceRecord,
        imds_port: u16,
    ) -> Vec<(String, String)> {
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

    pub(super) fn machine_gone(&self, id: &str, asked: u8) {
        let running = self.running.lock().remove(id);
        if let Some(r) = running {
            r.imds.abort();
        }
        self.machines_gone.notify_waiters();
        self.samples.lock().remove(id);
        if self.shutting_down.load(Ordering::SeqCst) {
            return; // The region is stopping: the record stays as it was, to start again.
        }
        let record = match self.instance(id) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                // The machine is gone whatever the store says; recovery after a restart
                // settles the record.
                tracing::error!(instance = id, "cannot read the instance whose machine went: {e}");
                return;
            }
        };
        if asked != LOST {
            self.lost.lock().remove(id);
        }
        if asked == LOST {
            if matches!(record.state, InstanceState::Running | InstanceState::Pending) {
                // The host failed: the instance is still running, on no machine.
                self.lost.lock().insert(id.to_string());
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(record.dir.join("console.log"))
                    .and_then(|mut f| {
                        std::io::Write::write_all(
                            &mut f,
                            b"Cumulo: the instance's machine failed (system status check failed)\n",
                        )
                    });
                let _ = self.changes.send(InstanceChange {
                    id: record.id.clone(),
                    state: record.state,
                    group: record.group.clone(),
                });
            }
            return;
        }
        if asked == 4 {
            // A reboot: the same instance boots again, still running, with its ports.
            let me = self.me.clone();
            tokio::spawn(async move {
                let Some(ec2) = me.upgrade() else { return };
                let mut record = record;
                if let Err(e) = ec2.start_processes(&mut record).await {
                    tracing::error!(instance = record.id, "the instance did not boot again: {e}");
                    let reason = format!("Server.InternalError: the reboot failed: {e}");
                    ec2.settle(record, InstanceState::Stopped, Some(reason));
                }
            });
            return;
        }
        let terminate = asked == 2 || (asked == 0 && record.shutdown_behavior == "terminate");
        let reason = match asked {
            0 => Some("Client.InstanceInitiatedShutdown: Instance initiated shutdown".to_string()),
            1 | 2 => Some("Client.UserInitiatedShutdown: User initiated shutdown".to_string()),
            _ => Some(format!(
                "Server.InternalError: The availability zone {} failed (cumulo chaos fail-zone)",
                record.zone
            )),
        };
        let state = if terminate { InstanceState::Terminated } else { InstanceState::Stopped };
        self.settle(record, state, reason);
    }

    /// Records that a machine is gone. The processes are gone whatever the store says, so a
    /// write the store refuses is tried again on the clock until it lands (or an hour, AWS
    /// time, has passed: then a restart's recovery settles it), and announced only then.
    pub(super) fn settle(
        &self,
        mut record: InstanceRecord,
        state: InstanceState,
        reason: Option<String>,
    ) {
        let write = move |ec2: &Ec2, record: &mut InstanceRecord| match state {
            InstanceState::Terminated => ec2.set_terminated(record, reason.clone()),
            _ => ec2.set_state(record, state, reason.clone()),
        };
        let Err(e) = write(self, &mut record) else { return };
        tracing::error!(instance = record.id, "cannot record the instance {}: {e}", state.name());
        let me = self.me.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            for _ in 0..720 {
                clock.sleep(Duration::from_secs(5)).await;
                let Some(ec2) = me.upgrade() else { return };
                if write(&ec2, &mut record).is_ok() {
                    return;
                }
            }
        });
    }

    pub(super) fn ask(&self, id: &str, what: u8) -> bool {
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
}
