//! Instances as supervised process trees.
//!
//! Each instance is a small *shim* process (the `cumulo __supervise SPEC` subcommand, whose
//! body is [`run_shim`]) standing for the instance's machine. The shim
//! - asks the kernel to signal it when Cumulo dies (`PR_SET_PDEATHSIG`), and checks Cumulo is
//!   still its parent once that is set, so it can never outlive Cumulo;
//! - makes itself a *child subreaper*, so processes the app double-forks or daemonizes are
//!   re-parented to it rather than to init, and stay in its tree;
//! - starts the instance's program (the UserData script) in its own process group, as an
//!   unprivileged user when Cumulo runs as root, with stdout and stderr going to the console log;
//! - reaps everything, and records when the program exits (the machine keeps running, as an EC2
//!   instance does when its UserData ends);
//! - on SIGTERM (a stop or terminate, or Cumulo's death) sends SIGTERM to every descendant,
//!   waits a grace period, SIGKILLs what is left, and exits.
//!
//! Architecture Invariant: no instance process outlives Cumulo. Only this crate starts them.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// What a shim runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    /// The instance's directory (working directory, HOME, console log, pid files).
    pub dir: PathBuf,
    /// The program and its arguments (an interpreter and the UserData script, or a command).
    pub program: String,
    pub args: Vec<String>,
    /// The whole environment of the program.
    pub env: Vec<(String, String)>,
    /// Run as this uid/gid (set when Cumulo runs as root).
    pub user: Option<(u32, u32)>,
    /// How long processes get between SIGTERM and SIGKILL.
    pub grace_ms: u64,
    /// Cumulo's pid: the shim exits at once if its parent is already someone else.
    pub parent_pid: u32,
}

impl Spec {
    pub fn console_path(&self) -> PathBuf {
        self.dir.join("console.log")
    }
}

/// Files the shim leaves in the instance directory.
pub const APP_PID: &str = "app.pid";
pub const APP_EXIT: &str = "app.exit";
/// What the region asks the machine to burn (`cumulo chaos cpu-burn`), read on SIGUSR1.
pub const BURN: &str = "burn.json";

/// A CPU burn inside an instance's own process tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Burn {
    /// Of each thread's time, 0-100.
    pub percent: f64,
    /// How long, in real seconds.
    pub seconds: f64,
    /// One per vCPU of the instance.
    pub threads: u32,
}

/// Asks an instance's machine (its shim, `shim`) to start `burn` in its process tree.
pub fn start_burn(dir: &Path, shim: u32, burn: &Burn) -> std::io::Result<()> {
    let json = serde_json::to_vec(burn).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(BURN), json)?;
    kill(Pid::from_raw(shim as i32), Signal::SIGUSR1).map_err(std::io::Error::from)
}

/// The burner's body (`cumulo __burn FILE`): `threads` threads, each busy `percent` of every
/// 100 ms, for `seconds`. Real time: it runs inside the instance, outside the region.
pub fn run_burn(path: &Path) -> ExitCode {
    let Some(burn) = std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Burn>(&b).ok())
    else {
        return ExitCode::from(2);
    };
    let seconds = burn.seconds.clamp(0.0, 86_400.0);
    let duty = (burn.percent.clamp(0.0, 100.0) / 100.0 * 100.0) as u64;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..burn.threads.clamp(1, 64))
        .map(|_| {
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let slice = Instant::now();
                    while slice.elapsed() < Duration::from_millis(duty) {
                        std::hint::spin_loop();
                    }
                    std::thread::sleep(Duration::from_millis(100 - duty.min(100)));
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}

/// A started shim, from Cumulo's side.
pub struct Supervised {
    child: tokio::process::Child,
    pid: u32,
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("cannot prepare instance directory {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("cannot start the instance supervisor: {0}")]
    Spawn(std::io::Error),
}

impl Supervised {
    /// Starts a shim for `spec`. `exe` is the cumulo binary (its `__supervise` subcommand).
    pub fn spawn(exe: &Path, spec: &Spec) -> Result<Supervised, SuperviseError> {
        let spec_path = spec.dir.join("supervise.json");
        let json = serde_json::to_vec_pretty(spec)
            .map_err(|e| SuperviseError::Dir(spec.dir.display().to_string(), e.into()))?;
        std::fs::write(&spec_path, json)
            .map_err(|e| SuperviseError::Dir(spec_path.display().to_string(), e))?;
        let _ = std::fs::remove_file(spec.dir.join(APP_PID));
        let _ = std::fs::remove_file(spec.dir.join(APP_EXIT));
        let child = tokio::process::Command::new(exe)
            .arg("__supervise")
            .arg(&spec_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A shim in its own process group: a Ctrl-C at Cumulo's terminal reaches Cumulo,
            // which stops instances in order; the shims follow if Cumulo dies.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(SuperviseError::Spawn)?;
        let pid = child.id().unwrap_or(0);
        Ok(Supervised { child, pid, dir: spec.dir.clone() })
    }

    /// The shim's pid (the instance's "machine").
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The pid of the instance's program, once started.
    pub fn app_pid(&self) -> Option<u32> {
        read_pid(&self.dir.join(APP_PID))
    }

    /// Asks the shim to stop everything (SIGTERM, then SIGKILL after its grace period).
    pub fn terminate(&self) {
        if self.pid > 0 {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        }
    }

    /// Waits for the shim to exit.
    pub async fn wait(&mut self) -> Option<i32> {
        self.child.wait().await.ok().and_then(|s| s.code())
    }

    /// Whether the shim has exited (non-blocking).
    pub fn try_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// The program's exit status, once it has exited (`app.exit`).
pub fn app_exit(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(APP_EXIT)).ok()?.trim().parse().ok()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

// === the shim ===

fn console_line(console: &mut std::fs::File, line: &str) {
    let _ = writeln!(console, "{line}");
}

/// The body of `cumulo __supervise SPEC`. Never returns before every descendant is gone.
pub fn run_shim(spec_path: &Path) -> ExitCode {
    let spec: Spec =
        match std::fs::read(spec_path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(s) => s,
            None => return ExitCode::from(2),
        };
    // Die with Cumulo: SIGTERM when the parent goes, and if it already went, stop now.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid().as_raw() as u32 != spec.parent_pid {
        return ExitCode::SUCCESS;
    }
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGCHLD,
        signal_hook::consts::SIGUSR1,
    ]) {
        Ok(s) => s,
        Err(_) => return ExitCode::from(2),
    };
    let mut console =
        match std::fs::OpenOptions::new().create(true).append(true).open(spec.console_path()) {
            Ok(f) => f,
            Err(_) => return ExitCode::from(2),
        };
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.dir)
        .env_clear()
        .envs(spec.env.iter().cloned())
        .stdin(Stdio::null())
        .process_group(0);
    match (console.try_clone(), console.try_clone()) {
        (Ok(out), Ok(err)) => {
            command.stdout(out).stderr(err);
        }
        _ => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    if let Some((uid, gid)) = spec.user {
        command.uid(uid).gid(gid);
    }
    let app = match command.spawn() {
        Ok(child) => {
            let pid = child.id();
            let _ = std::fs::write(spec.dir.join(APP_PID), pid.to_string());
            // The child is reaped below with waitpid; the handle is not needed.
            drop(child);
            Some(pid)
        }
        Err(e) => {
            console_line(&mut console, &format!("Cumulo: cannot start {}: {e}", spec.program));
            let _ = std::fs::write(spec.dir.join(APP_EXIT), "127");
            None
        }
    };
    for signal in signals.forever() {
        match signal {
            signal_hook::consts::SIGCHLD => reap(app, &spec, &mut console),
            signal_hook::consts::SIGUSR1 => start_burner(&spec, &mut console),
            _ => break,
        }
    }
    shutdown(app, Duration::from_millis(spec.grace_ms));
    reap(app, &spec, &mut console);
    ExitCode::SUCCESS
}

/// Starts the burner the region asked for (`burn.json`) as a child of the machine, as the
/// instance's user: it is in the instance's tree, counted in its CPU and stopped with it.
fn start_burner(spec: &Spec, console: &mut std::fs::File) {
    let Ok(exe) = std::env::current_exe() else { return };
    let mut command = Command::new(exe);
    command
        .arg("__burn")
        .arg(spec.dir.join(BURN))
        .current_dir(&spec.dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((uid, gid)) = spec.user {
        command.uid(uid).gid(gid);
    }
    match command.spawn() {
        Ok(child) => {
            console_line(console, &format!("Cumulo: CPU burn started (pid {})", child.id()));
            drop(child);
        }
        Err(e) => console_line(console, &format!("Cumulo: cannot start the CPU burn: {e}")),
    }
}

/// Reaps every exited child; notes the program's own exit.
fn reap(app: Option<u32>, spec: &Spec, console: &mut std::fs::File) {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                let (pid, code) = match status {
                    WaitStatus::Exited(pid, code) => (pid, code),
                    WaitStatus::Signaled(pid, sig, _) => (pid, 128 + sig as i32),
                    _ => continue,
                };
                if Some(pid.as_raw() as u32) == app && !spec.dir.join(APP_EXIT).exists() {
                    let _ = std::fs::write(spec.dir.join(APP_EXIT), code.to_string());
                    if code != 0 {
                        console_line(
                            console,
                            &format!("Cumulo: the instance's user data exited with status {code}"),
                        );
                    }
                }
            }
        }
    }
}

/// SIGTERM to every descendant (and the program's group), then SIGKILL after the grace period.
///
/// Real time (`std::time::Instant`, thread sleeps), not a `Clock`: this runs in the
/// `cumulo __supervise` shim, a process of its own outside the region, and `grace` is already
/// the real duration the region handed over.
fn shutdown(app: Option<u32>, grace: Duration) {
    let me = std::process::id();
    let signal_all = |signal: Signal| {
        if let Some(pid) = app {
            let _ = killpg(Pid::from_raw(pid as i32), signal);
        }
        for pid in descendants(me) {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    };
    signal_all(Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let _ = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG));
        if descendants(me).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_all(Signal::SIGKILL);
    let until = Instant::now() + Duration::from_secs(5);
    while !descendants(me).is_empty() && Instant::now() < until {
        let _ = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The machine loses power: the shim `shim` and every process under it get SIGKILL at once,
/// with no grace period. The shim is stopped first so that nothing under it is started or
/// re-parented while the tree is killed (killing the shim alone would leave its program running
/// without a supervisor).
pub fn power_off(shim: u32) {
    if shim == 0 {
        return;
    }
    let shim_pid = Pid::from_raw(shim as i32);
    let _ = kill(shim_pid, Signal::SIGSTOP);
    // A process may fork while its siblings are killed: a few passes.
    for _ in 0..5 {
        let below = descendants(shim);
        if below.is_empty() {
            break;
        }
        for pid in below {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    let _ = kill(shim_pid, Signal::SIGKILL);
}

/// Every live descendant of `root` (from /proc), excluding zombies.
pub fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        for p in &table {
            if p.ppid == parent && p.state != 'Z' {
                out.push(p.pid);
                stack.push(p.pid);
            }
        }
    }
    out
}

#[derive(Clone, Debug)]
struct ProcInfo {
    pid: u32,
    ppid: u32,
    state: char,
    /// utime + stime, in clock ticks.
    ticks: u64,
    rss_pages: u64,
}

fn process_table() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_info)
        .collect()
}

fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages = fields.get(21)?.parse().ok()?;
    Some(ProcInfo { pid, ppid, state, ticks: utime + stime, rss_pages })
}

/// CPU and memory used by a process tree (the shim and its descendants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used so far, in clock ticks (100 per second on Linux).
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub processes: usize,
}

/// One reading of /proc, to measure many process trees at once.
pub struct ProcessTable {
    by_pid: std::collections::HashMap<u32, ProcInfo>,
    children: std::collections::HashMap<u32, Vec<u32>>,
}

impl ProcessTable {
    pub fn snapshot() -> ProcessTable {
        let mut by_pid = std::collections::HashMap::new();
        let mut children: std::collections::HashMap<u32, Vec<u32>> =
            std::collections::HashMap::new();
        for p in process_table() {
            children.entry(p.ppid).or_default().push(p.pid);
            by_pid.insert(p.pid, p);
        }
        ProcessTable { by_pid, children }
    }

    /// The usage of `root`'s whole tree.
    pub fn tree_usage(&self, root: u32) -> Usage {
        let mut usage = Usage::default();
        let mut stack = vec![root];
        while let Some(pid) = stack.pop() {
            if let Some(p) = self.by_pid.get(&pid) {
                usage.cpu_ticks += p.ticks;
                usage.rss_bytes += p.rss_pages * 4096;
                usage.processes += 1;
            }
            stack.extend(self.children.get(&pid).into_iter().flatten());
        }
        usage
    }
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    proc_info(pid).is_some_and(|p| p.state != 'Z')
}

#[cfg(test)]
mod tests;
