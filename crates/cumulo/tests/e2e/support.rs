//! Starting and stopping `cumulo` processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cumulo")
}

/// A running `cumulo` process; killed (SIGKILL) when dropped if still running.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Starts `cumulo ARGS`, merging stdout and stderr into one line stream.
    pub fn start(args: &[&str], dir: &Path) -> Running {
        Running::start_with(args, dir, &[])
    }

    /// [`Running::start`] with extra environment variables.
    pub fn start_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .env("CUMULO_LOG", "warn")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cumulo starts");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running { child, lines, seen: Vec::new() }
    }

    /// Waits (bounded) for a line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The endpoint a `serve` or `up` prints (`... on http://127.0.0.1:PORT ...`).
    pub fn endpoint(&mut self) -> String {
        let line = self.wait_for("http://127.0.0.1:", Duration::from_secs(30));
        let start = line.find("http://").unwrap();
        line[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .to_string()
    }

    /// Everything the process printed so far (what `wait_for` saw, then the rest).
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cumulo did not exit within {timeout:?}:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a client command to completion (bounded); returns (success, stdout, stderr).
pub fn run(args: &[&str], dir: &Path) -> (bool, String, String) {
    run_with(args, dir, &[])
}

/// [`run`] with these environment variables.
pub fn run_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("AWS_ENDPOINT_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cumulo {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The aws CLI (v1, from PyPI) in a virtualenv under target/, installed on first use.
pub fn aws_cli() -> std::path::PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-venv");
    let aws = venv.join("bin/aws");
    if !aws.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "python3 -m venv failed (python3-venv must be installed)");
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "awscli==1.46.3", "boto3"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "pip install awscli boto3 failed");
    }
    aws
}

/// Runs the aws CLI against `endpoint` (bounded); returns (success, stdout, stderr).
pub fn aws(endpoint: &str, args: &[&str], dir: &Path) -> (bool, String, String) {
    aws_as(endpoint, args, dir, ("test", "test"))
}

/// [`aws`] with these access key and secret.
pub fn aws_as(
    endpoint: &str,
    args: &[&str],
    dir: &Path,
    (key, secret): (&str, &str),
) -> (bool, String, String) {
    let out = Command::new(aws_cli())
        .args(args)
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A plain HTTP/1.1 request on loopback (no client library: the tests check the servers).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (host, path) =
        rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let addr = if host.contains(':') { host.to_string() } else { format!("{host}:80") };
    let mut stream =
        std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A `Host` among `headers` stands instead of the URL's (what a rebound DNS name sends).
    let shown_host =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")).map_or(host, |(_, v)| *v);
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {shown_host}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// The region's local view of its instances.
pub fn instances(endpoint: &str) -> Vec<serde_json::Value> {
    let (_, body) = http("GET", &format!("{endpoint}/_cumulo/instances"), &[]);
    serde_json::from_str(&body).unwrap_or_default()
}

/// Whether a process is alive (not a zombie).
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Waits (bounded) until `check` holds.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
