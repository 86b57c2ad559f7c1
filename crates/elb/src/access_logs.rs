//! Access logs on disk, laid out as ALB writes them to S3: with `access_logs.s3.enabled`,
//! `access_logs.s3.bucket` and `access_logs.s3.prefix` set, a load balancer's lines go to
//! `DIR/BUCKET/PREFIX/AWSLogs/ACCOUNT/elasticloadbalancing/REGION/YYYY/MM/DD/` in one file per
//! five minutes (plain text; AWS gzips them), named as AWS names them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_ids::Account;
use elb_proxy::AccessLog;
use tokio::sync::mpsc;

use crate::model::LoadBalancerRecord;

/// Lines waiting for the writer; more are dropped (and counted) rather than slow a request.
const QUEUE: usize = 16 * 1024;

/// What a load balancer's log is written as; a change of it starts a new writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub bucket: String,
    pub prefix: String,
}

impl Settings {
    pub fn of(record: &LoadBalancerRecord) -> Option<Settings> {
        if !record.flag("access_logs.s3.enabled", false) {
            return None;
        }
        Some(Settings {
            bucket: record.attribute("access_logs.s3.bucket").unwrap_or("access-logs").to_string(),
            prefix: record.attribute("access_logs.s3.prefix").unwrap_or("").to_string(),
        })
    }
}

/// A running writer: the data plane's end and the settings it was made for.
pub struct Writer {
    pub settings: Settings,
    pub log: AccessLog,
    _task: tokio::task::JoinHandle<()>,
}

/// The file a line written at `t` goes to.
pub fn file_for(
    dir: &Path,
    settings: &Settings,
    account: &Account,
    full_name: &str,
    t: SystemTime,
) -> PathBuf {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // The end of the five-minute interval the line falls in.
    let end = (secs / 300 + 1) * 300;
    let stamp = elb_proxy::access_log::iso_micros(UNIX_EPOCH + std::time::Duration::from_secs(end));
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
    let mut parts = date.split('-');
    let (y, m, d) = (
        parts.next().unwrap_or("1970"),
        parts.next().unwrap_or("01"),
        parts.next().unwrap_or("01"),
    );
    let hhmm: String = time.chars().filter(char::is_ascii_digit).take(4).collect();
    let mut path = dir.join(&settings.bucket);
    for p in settings.prefix.split('/').filter(|p| !p.is_empty()) {
        path.push(p);
    }
    let (region, id) = (&account.region, &account.account_id);
    path.push(format!("AWSLogs/{id}/elasticloadbalancing/{region}/{y}/{m}/{d}"));
    let lb = full_name.replace('/', ".");
    path.push(format!(
        "{id}_elasticloadbalancing_{region}_{lb}_{y}{m}{d}T{hhmm}Z_127.0.0.1_cumulo.log"
    ));
    path
}

/// Starts the writer of one load balancer's access log.
/// Files are named by the region's AWS time (the clock's) at which each batch is written.
pub fn start(
    dir: PathBuf,
    settings: Settings,
    account: Account,
    full_name: String,
    clock: clock::Clock,
) -> Writer {
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    let log = AccessLog {
        arn_prefix: account.arn("elasticloadbalancing", ""),
        lines: tx,
        dropped: Arc::new(AtomicU64::new(0)),
    };
    let s = settings.clone();
    let task = tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 1024).await > 0 {
            let lines = std::mem::take(&mut batch);
            let now = clock.now();
            let at = UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(now.as_second()).unwrap_or(0));
            let path = file_for(&dir, &s, &account, &full_name, at);
            let written = tokio::task::spawn_blocking(move || append(&path, &lines)).await;
            if let Ok(Err(e)) = written {
                tracing::warn!("access log of {full_name}: {e}");
            }
        }
    });
    Writer { settings, log, _task: task }
}

fn append(path: &Path, lines: &[String]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_as_aws_names_them() {
        let account = Account::default();
        let settings = Settings { bucket: "logs".into(), prefix: "web/prod".into() };
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let path = file_for(Path::new("/d"), &settings, &account, "app/web/50dc6c495c0c9188", t);
        assert_eq!(
            path.to_str().unwrap(),
            format!(
                "/d/logs/web/prod/AWSLogs/{id}/elasticloadbalancing/{r}/2023/11/14/{id}_elasticloadbalancing_{r}_app.web.50dc6c495c0c9188_20231114T2215Z_127.0.0.1_cumulo.log",
                id = account.account_id,
                r = account.region
            )
        );
    }
}
