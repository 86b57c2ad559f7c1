//! What instances' CloudWatch agents ship to CloudWatch Logs: the files an instance's agent
//! configuration names in `logs.logs_collected.files.collect_list` (written by cfn-init or
//! UserData into the instance's own root), tailed with rotation (a file that shrinks or is
//! replaced is read from its start), into the configured group and stream (`{instance_id}`,
//! `{hostname}`, `{ip_address}` placeholders; the stream defaults to the instance id). A
//! cloud-init output file (`/var/log/cloud-init-output.log`, `/var/log/user-data.log`) is the
//! instance's console output.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use ec2::{Ec2, InstanceState};
use logs::Logs;
use logs::events::InputEvent;
use parking_lot::Mutex;

/// At most this much of one file is read per pass.
const MAX_READ: u64 = 512 * 1024;

pub struct Collector {
    ec2: Arc<Ec2>,
    logs: Arc<Logs>,
    /// Per (instance, file): the inode and the offset read up to.
    files: Mutex<HashMap<(String, PathBuf), (u64, u64)>>,
}

/// One `collect_list` entry.
struct Source {
    path: PathBuf,
    group: String,
    stream: String,
}

impl Collector {
    pub fn new(ec2: Arc<Ec2>, logs: Arc<Logs>) -> Collector {
        Collector { ec2, logs, files: Mutex::new(HashMap::new()) }
    }

    fn sources(i: &ec2::InstanceRecord, agent: &serde_json::Value) -> Vec<Source> {
        let list = agent
            .pointer("/logs/logs_collected/files/collect_list")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let fill = |s: &str| {
            s.replace("{instance_id}", &i.id)
                .replace("{hostname}", &format!("ip-{}", i.private_ip.replace('.', "-")))
                .replace("{ip_address}", &i.private_ip)
                .replace("{local_hostname}", &format!("ip-{}", i.private_ip.replace('.', "-")))
        };
        list.iter()
            .filter_map(|entry| {
                let file = entry["file_path"].as_str()?;
                let path = match file {
                    "/var/log/cloud-init-output.log" | "/var/log/user-data.log" => {
                        i.dir.join("console.log")
                    }
                    other => i.dir.join("root").join(other.trim_start_matches('/')),
                };
                Some(Source {
                    path,
                    group: fill(entry["log_group_name"].as_str().unwrap_or(file)),
                    stream: fill(entry["log_stream_name"].as_str().unwrap_or("{instance_id}")),
                })
            })
            .collect()
    }

    /// Reads what every running instance's configured files gained since the last pass.
    pub fn tick(&self) {
        let Ok(instances) = self.ec2.instances() else { return };
        for i in instances.iter().filter(|i| i.state == InstanceState::Running) {
            let Some(agent) = crate::monitoring::agent_config(&i.dir) else { continue };
            for source in Self::sources(i, &agent) {
                if let Err(e) = self.collect(&i.id, &source) {
                    tracing::debug!(
                        instance = i.id,
                        "log collection from {}: {e}",
                        source.path.display()
                    );
                }
            }
        }
    }

    fn collect(&self, instance: &str, s: &Source) -> Result<(), String> {
        let meta = std::fs::metadata(&s.path).map_err(|e| e.to_string())?;
        let key = (instance.to_string(), s.path.clone());
        let (inode, mut offset) = self.files.lock().get(&key).copied().unwrap_or((meta.ino(), 0));
        // Rotated: a new file, or one cut shorter than what was read.
        if inode != meta.ino() || meta.len() < offset {
            offset = 0;
        }
        if meta.len() == offset {
            self.files.lock().insert(key, (meta.ino(), offset));
            return Ok(());
        }
        let mut file = std::fs::File::open(&s.path).map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        file.take(MAX_READ).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        // Whole lines only: a line being written is read once it ends.
        let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else { return Ok(()) };
        let text = String::from_utf8_lossy(&bytes[..end]);
        let now = self.logs.now_ms();
        let events: Vec<InputEvent> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| InputEvent { timestamp: now, message: l.to_string() })
            .collect();
        if !events.is_empty() {
            self.ensure(&s.group, &s.stream)?;
            for batch in events.chunks(10_000) {
                self.logs.put_events(&s.group, &s.stream, batch).map_err(|e| e.to_string())?;
            }
        }
        self.files.lock().insert(key, (meta.ino(), offset + end as u64 + 1));
        Ok(())
    }

    /// The agent creates its group and stream when they are missing.
    fn ensure(&self, group: &str, stream: &str) -> Result<(), String> {
        let exists = |e: &logs::LogsError| e.to_string().contains("already exists");
        if self.logs.group(group).is_err() {
            let req = logs::CreateGroup { name: group.to_string(), ..logs::CreateGroup::default() };
            if let Err(e) = self.logs.create_group(req)
                && !exists(&e)
            {
                return Err(e.to_string());
            }
        }
        if self.logs.stream(group, stream).is_err()
            && let Err(e) = self.logs.create_stream(group, stream)
            && !exists(&e)
        {
            return Err(e.to_string());
        }
        Ok(())
    }
}
