//! The CloudFormation helper scripts, as instances call them: `cfn-signal`, `cfn-init`,
//! `cfn-get-metadata`, `cfn-hup`. They talk to the region at `AWS_ENDPOINT_URL` (or `--url`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value as Json;

fn endpoint(url: &Option<String>) -> String {
    url.clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:4566".into())
}

/// Options the real tools take that mean nothing locally (credentials, proxies).
#[derive(clap::Args, Debug, Default)]
struct Ignored {
    #[arg(long, hide = true)]
    access_key: Option<String>,
    #[arg(long, hide = true)]
    secret_key: Option<String>,
    #[arg(long, short = 'f', hide = true)]
    credential_file: Option<String>,
    #[arg(long, hide = true)]
    role: Option<String>,
    #[arg(long, hide = true)]
    http_proxy: Option<String>,
    #[arg(long, hide = true)]
    https_proxy: Option<String>,
}

#[derive(Parser, Debug)]
#[command(
    name = "cfn-signal",
    about = "Signal a CloudFormation CreationPolicy, UpdatePolicy or wait condition"
)]
struct SignalArgs {
    /// SUCCESS when true (default), FAILURE when false.
    #[arg(long, short = 's')]
    success: Option<String>,
    /// An exit code: 0 is SUCCESS, anything else FAILURE.
    #[arg(long, short = 'e')]
    exit_code: Option<i32>,
    #[arg(long, short = 'r')]
    reason: Option<String>,
    #[arg(long, short = 'd')]
    data: Option<String>,
    /// The signal's unique id (default: this instance's id).
    #[arg(long, short = 'i')]
    id: Option<String>,
    #[arg(long)]
    stack: Option<String>,
    #[arg(long)]
    resource: Option<String>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long, short = 'u')]
    url: Option<String>,
    #[command(flatten)]
    ignored: Ignored,
    /// A wait-condition handle URL.
    handle: Option<String>,
}

async fn instance_id() -> String {
    if let Ok(id) = std::env::var("CUMULO_INSTANCE_ID") {
        return id;
    }
    let base = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|_| "http://169.254.169.254/".into());
    crate::http::get(&format!("{}/latest/meta-data/instance-id", base.trim_end_matches('/')))
        .await
        .unwrap_or_else(|_| "unknown".into())
}

pub async fn signal(args: Vec<String>) -> ExitCode {
    let args = match SignalArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let success = match (&args.success, args.exit_code) {
        (Some(s), _) => s.eq_ignore_ascii_case("true"),
        (None, Some(code)) => code == 0,
        (None, None) => true,
    };
    let status = if success { "SUCCESS" } else { "FAILURE" };
    let unique_id = match &args.id {
        Some(i) => i.clone(),
        None => instance_id().await,
    };
    let result = if let Some(handle) = &args.handle {
        let body = serde_json::json!({
            "Status": status,
            "Reason": args.reason.clone().unwrap_or_else(|| "Configuration Complete".into()),
            "UniqueId": unique_id,
            "Data": args.data.clone().unwrap_or_else(|| "Application has completed configuration.".into()),
        });
        crate::http::put(handle, body.to_string(), "").await
    } else {
        match (&args.stack, &args.resource) {
            (Some(stack), Some(resource)) => {
                let client = api::Client::new(&endpoint(&args.url));
                let params = vec![
                    ("StackName".to_string(), stack.clone()),
                    ("LogicalResourceId".to_string(), resource.clone()),
                    ("UniqueId".to_string(), unique_id.clone()),
                    ("Status".to_string(), status.to_string()),
                ];
                client
                    .call("2010-05-15", "SignalResource", &params)
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            }
            _ => Err(anyhow::anyhow!(
                "cfn-signal needs a wait condition handle URL, or --stack and --resource"
            )),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfn-signal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "cfn-get-metadata", about = "Print a resource's metadata")]
struct MetadataArgs {
    #[arg(long, short = 's')]
    stack: String,
    #[arg(long, short = 'r')]
    resource: String,
    /// A key (dotted path) within the metadata.
    #[arg(long, short = 'k')]
    key: Option<String>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long, short = 'u')]
    url: Option<String>,
    #[command(flatten)]
    ignored: Ignored,
}

async fn metadata(url: &Option<String>, stack: &str, resource: &str) -> anyhow::Result<Json> {
    let client = api::Client::new(&endpoint(url));
    let params = vec![
        ("StackName".to_string(), stack.to_string()),
        ("LogicalResourceId".to_string(), resource.to_string()),
    ];
    let result = client.call("2010-05-15", "DescribeStackResource", &params).await?;
    let text = result.get("StackResourceDetail/Metadata").unwrap_or("{}");
    Ok(serde_json::from_str(text).unwrap_or(Json::Null))
}

pub async fn get_metadata(args: Vec<String>) -> ExitCode {
    let args = match MetadataArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    match metadata(&args.url, &args.stack, &args.resource).await {
        Ok(mut m) => {
            if let Some(key) = &args.key {
                for part in key.split('.') {
                    m = m.get(part).cloned().unwrap_or(Json::Null);
                }
            }
            println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cfn-get-metadata: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "cfn-init", about = "Apply a resource's AWS::CloudFormation::Init metadata")]
struct InitArgs {
    #[arg(long, short = 's')]
    stack: String,
    #[arg(long, short = 'r')]
    resource: String,
    /// Config sets to run, comma-separated (default: `default`).
    #[arg(long, short = 'c')]
    configsets: Option<String>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long, short = 'u')]
    url: Option<String>,
    #[arg(long, short = 'v')]
    verbose: bool,
    #[command(flatten)]
    ignored: Ignored,
}

/// Where an absolute path of the instance's filesystem lives on the host: under the instance's
/// own root (`$HOME/root`), since instances do not write the host's `/etc` or `/var`.
pub fn instance_path(path: &str) -> PathBuf {
    let root = std::env::var("CUMULO_INSTANCE_ROOT").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join("root")
    });
    if path.starts_with('/') {
        root.join(path.trim_start_matches('/'))
    } else {
        PathBuf::from(path)
    }
}

pub async fn init(args: Vec<String>) -> ExitCode {
    let args = match InitArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    match run_init(&args).await {
        Ok(warnings) => {
            if warnings > 0 {
                println!("cfn-init: done, with {warnings} warning(s) (see above)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cfn-init: Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_init(args: &InitArgs) -> anyhow::Result<usize> {
    let meta = metadata(&args.url, &args.stack, &args.resource).await?;
    let init = meta.get("AWS::CloudFormation::Init").cloned().with_context(|| {
        format!("resource {} has no AWS::CloudFormation::Init metadata", args.resource)
    })?;
    let configs = config_order(&init, args.configsets.as_deref())?;
    let mut warnings = 0;
    for name in configs {
        let config = init.get(&name).cloned().unwrap_or(Json::Null);
        println!("cfn-init: running config {name}");
        warnings +=
            apply_config(&config, args.verbose).await.with_context(|| format!("config {name}"))?;
    }
    Ok(warnings)
}

/// The configs to run, in order: from the named config sets (nested sets expanded), or `config`.
pub fn config_order(init: &Json, sets: Option<&str>) -> anyhow::Result<Vec<String>> {
    let Some(all_sets) = init.get("configSets") else {
        if sets.is_some_and(|s| s != "default") {
            bail!(
                "no configSets in the metadata, but --configsets {} was given",
                sets.unwrap_or_default()
            );
        }
        return Ok(vec!["config".into()]);
    };
    let mut out = Vec::new();
    fn expand(all: &Json, set: &str, out: &mut Vec<String>, depth: usize) -> anyhow::Result<()> {
        anyhow::ensure!(depth < 16, "config sets refer to each other in a loop");
        let items = match all.get(set) {
            Some(Json::Array(items)) => items.clone(),
            Some(Json::String(s)) => vec![Json::String(s.clone())],
            _ => bail!("config set {set} does not exist"),
        };
        for item in items {
            match item {
                Json::String(c) => out.push(c),
                Json::Object(o) => match o.get("ConfigSet").and_then(Json::as_str) {
                    Some(inner) => expand(all, inner, out, depth + 1)?,
                    None => bail!(
                        "config set {set} has an item that is neither a config nor {{ConfigSet: ...}}"
                    ),
                },
                _ => bail!(
                    "config set {set} has an item that is neither a config nor {{ConfigSet: ...}}"
                ),
            }
        }
        Ok(())
    }
    for set in sets.unwrap_or("default").split(',').map(str::trim) {
        expand(all_sets, set, &mut out, 0)?;
    }
    Ok(out)
}

/// Applies one config in cfn-init's order; returns the number of warnings.
async fn apply_config(config: &Json, verbose: bool) -> anyhow::Result<usize> {
    let mut warnings = 0;
    let mut warn = |m: String| {
        println!("cfn-init: WARNING: {m}");
        warnings += 1;
    };
    if let Some(managers) = config.get("packages").and_then(Json::as_object) {
        for (manager, packages) in managers {
            for name in packages
                .as_object()
                .map(|p| p.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if package_present(manager, &name) {
                    println!("cfn-init: package {name} ({manager}) is present on this host");
                } else {
                    warn(format!(
                        "package {name} ({manager}) is not installed on this host, and Cumulo installs no packages: nothing was installed"
                    ));
                }
            }
        }
    }
    for kind in ["groups", "users"] {
        if let Some(entries) = config.get(kind).and_then(Json::as_object) {
            for name in entries.keys() {
                warn(format!(
                    "{kind}: {name} is not created locally (instances run as one unprivileged user)"
                ));
            }
        }
    }
    if let Some(sources) = config.get("sources").and_then(Json::as_object) {
        for (dir, url) in sources {
            let target = instance_path(dir);
            let url = url.as_str().unwrap_or_default();
            match fetch_archive(url, &target).await {
                Ok(()) => println!("cfn-init: unpacked {url} into {dir} ({})", target.display()),
                Err(e) => warn(format!("source {url} for {dir}: {e:#}")),
            }
        }
    }
    if let Some(files) = config.get("files").and_then(Json::as_object) {
        for (path, spec) in files {
            write_file(path, spec).await.with_context(|| format!("file {path}"))?;
            let target = instance_path(path);
            println!(
                "cfn-init: wrote {path}{}",
                if verbose { format!(" ({})", target.display()) } else { String::new() }
            );
        }
    }
    if let Some(commands) = config.get("commands").and_then(Json::as_object) {
        // cfn-init runs commands in alphabetical order of their names.
        let sorted: BTreeMap<&String, &Json> = commands.iter().collect();
        for (name, spec) in sorted {
            run_command(name, spec)?;
        }
    }
    if let Some(managers) = config.get("services").and_then(Json::as_object) {
        for services in managers.values().filter_map(Json::as_object) {
            for (name, spec) in services {
                let wanted = ["ensureRunning", "enabled"].iter().any(|k| {
                    spec.get(*k)
                        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
                });
                if !wanted {
                    continue;
                }
                match start_service(name) {
                    Ok(pid) => println!(
                        "cfn-init: service {name} started (pid {pid}), supervised with the instance"
                    ),
                    Err(e) => warn(format!("service {name}: {e}")),
                }
            }
        }
    }
    Ok(warnings)
}

fn package_present(manager: &str, name: &str) -> bool {
    let quiet = |cmd: &mut Command| {
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    match manager {
        "python" => quiet(Command::new("python3").args(["-c", &format!("import {name}")])),
        "rubygems" => quiet(Command::new("gem").args(["list", "-i", name])),
        _ => {
            quiet(Command::new("dpkg").args(["-s", name]))
                || quiet(Command::new("rpm").args(["-q", name]))
                || quiet(Command::new("sh").args(["-c", &format!("command -v {name}")]))
        }
    }
}

async fn fetch_archive(url: &str, target: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "only http(s) sources can be fetched locally"
    );
    anyhow::ensure!(
        url.starts_with("http://"),
        "https sources are not fetched by Cumulo's cfn-init; serve the archive over http or use the overrides file"
    );
    std::fs::create_dir_all(target)?;
    let body = crate::http::get(url).await?;
    let archive = target.join(".cfn-init-source");
    std::fs::write(&archive, body)?;
    let tool = if url.ends_with(".zip") { vec!["unzip", "-o", "-q"] } else { vec!["tar", "-xf"] };
    let status =
        Command::new(tool[0]).args(&tool[1..]).arg(&archive).current_dir(target).status()?;
    let _ = std::fs::remove_file(&archive);
    anyhow::ensure!(status.success(), "{} failed", tool[0]);
    Ok(())
}

async fn write_file(path: &str, spec: &Json) -> anyhow::Result<()> {
    let target = instance_path(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut content = match (spec.get("content"), spec.get("source").and_then(Json::as_str)) {
        (Some(Json::String(s)), _) => s.clone(),
        (Some(other @ (Json::Object(_) | Json::Array(_))), _) => {
            serde_json::to_string_pretty(other)?
        }
        (Some(other), _) => other.to_string(),
        (None, Some(url)) => crate::http::get(url).await?,
        (None, None) => String::new(),
    };
    if let Some(context) = spec.get("context").and_then(Json::as_object) {
        for (k, v) in context {
            let value = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            content = content.replace(&format!("{{{{{k}}}}}"), &value);
        }
    }
    let bytes = if spec.get("encoding").and_then(Json::as_str) == Some("base64") {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(content.trim().replace(['\n', '\r', ' '], ""))?
    } else {
        content.into_bytes()
    };
    std::fs::write(&target, bytes)?;
    if let Some(mode) = spec
        .get("mode")
        .and_then(Json::as_str)
        .and_then(|m| u32::from_str_radix(m.trim_start_matches('0'), 8).ok())
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(())
}

fn run_command(name: &str, spec: &Json) -> anyhow::Result<()> {
    let ignore = spec
        .get("ignoreErrors")
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    let cwd = spec.get("cwd").and_then(Json::as_str).map(|c| {
        let host = PathBuf::from(c);
        if host.is_dir() { host } else { instance_path(c) }
    });
    let env: BTreeMap<String, String> = spec
        .get("env")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let shell = |text: &str| {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(text).envs(&env);
        if let Some(dir) = &cwd {
            let _ = std::fs::create_dir_all(dir);
            c.current_dir(dir);
        }
        c
    };
    if let Some(test) = spec.get("test").and_then(Json::as_str)
        && !shell(test).status().is_ok_and(|s| s.success())
    {
        println!("cfn-init: command {name}: test failed, skipped");
        return Ok(());
    }
    let mut command = match spec.get("command") {
        Some(Json::String(s)) => shell(s),
        Some(Json::Array(parts)) => {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string()))
                .collect();
            let Some((first, rest)) = parts.split_first() else { bail!("command {name} is empty") };
            let mut c = Command::new(first);
            c.args(rest).envs(&env);
            if let Some(dir) = &cwd {
                c.current_dir(dir);
            }
            c
        }
        _ => bail!("command {name} has no command"),
    };
    let status = command.status().with_context(|| format!("command {name} could not start"))?;
    if !status.success() {
        if ignore {
            println!("cfn-init: command {name} failed ({status}), errors ignored");
        } else {
            bail!("Command {name} failed ({status})");
        }
    } else {
        println!("cfn-init: command {name} succeeded");
    }
    Ok(())
}

/// Starts a service in the background, in the instance's process tree: cfn-hup is Cumulo's own;
/// others must exist on the host.
fn start_service(name: &str) -> anyhow::Result<u32> {
    let program = if name == "cfn-hup" { "cfn-hup".to_string() } else { name.to_string() };
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    anyhow::ensure!(
        found,
        "no program named {program} on this host, so it was not started (use the overrides file, or isolated mode)"
    );
    let child = Command::new(&program).stdin(Stdio::null()).spawn()?;
    Ok(child.id())
}

#[derive(Parser, Debug)]
#[command(name = "cfn-hup", about = "Watch a resource's metadata and run hooks when it changes")]
struct HupArgs {
    /// The configuration directory (default: /etc/cfn in the instance).
    #[arg(long, short = 'c')]
    config: Option<String>,
    #[arg(long)]
    no_daemon: bool,
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// `cfn-hup`: reads `cfn-hup.conf` and `hooks.d/*.conf`, polls the metadata every `interval`
/// minutes, runs each hook's action when its path's value changes.
pub async fn hup(args: Vec<String>) -> ExitCode {
    let args = match HupArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let dir = instance_path(args.config.as_deref().unwrap_or("/etc/cfn"));
    let main = parse_ini(&std::fs::read_to_string(dir.join("cfn-hup.conf")).unwrap_or_default());
    let Some(stack) = main.get("main").and_then(|m| m.get("stack")).cloned() else {
        eprintln!("cfn-hup: {} has no [main] stack", dir.join("cfn-hup.conf").display());
        return ExitCode::FAILURE;
    };
    let interval: f64 = main
        .get("main")
        .and_then(|m| m.get("interval"))
        .and_then(|i| i.parse().ok())
        .unwrap_or(15.0);
    let scale: f64 = std::env::var("CUMULO_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0);
    let mut hooks = Vec::new();
    for conf in ["hooks.conf".to_string()].into_iter().chain(
        std::fs::read_dir(dir.join("hooks.d"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| format!("hooks.d/{}", e.file_name().to_string_lossy())),
    ) {
        for (_, section) in parse_ini(&std::fs::read_to_string(dir.join(&conf)).unwrap_or_default())
        {
            if let (Some(path), Some(action)) = (section.get("path"), section.get("action")) {
                hooks.push((path.clone(), action.clone()));
            }
        }
    }
    let mut last: BTreeMap<String, Json> = BTreeMap::new();
    loop {
        for (path, action) in &hooks {
            // path = Resources.<LogicalId>.Metadata.<key...>
            let parts: Vec<&str> = path.split('.').collect();
            let (Some(resource), true) = (parts.get(1), parts.get(2) == Some(&"Metadata")) else {
                continue;
            };
            let Ok(meta) = metadata(&None, &stack, resource).await else { continue };
            let mut value = meta;
            for key in parts.iter().skip(3) {
                value = value.get(*key).cloned().unwrap_or(Json::Null);
            }
            match last.get(path) {
                Some(previous) if *previous != value => {
                    println!("cfn-hup: {path} changed; running {action}");
                    let _ = Command::new("/bin/sh").args(["-c", action]).status();
                }
                _ => {}
            }
            last.insert(path.clone(), value);
        }
        // Real time inside the instance: the AWS interval (minutes) divided by the time scale.
        tokio::time::sleep(Duration::from_secs_f64((interval * 60.0 / scale).max(1.0))).await;
    }
}

fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sets_expand_in_order() {
        let init = serde_json::json!({
            "configSets": {"default": [{"ConfigSet": "base"}, "app"], "base": ["install", "configure"]},
            "install": {}, "configure": {}, "app": {}
        });
        assert_eq!(config_order(&init, None).unwrap(), ["install", "configure", "app"]);
        assert_eq!(config_order(&init, Some("base")).unwrap(), ["install", "configure"]);
        assert!(config_order(&init, Some("nope")).is_err());
        assert_eq!(config_order(&serde_json::json!({"config": {}}), None).unwrap(), ["config"]);
    }

    #[test]
    fn ini_and_base64() {
        let ini = parse_ini(
            "[main]\nstack=web\ninterval = 1\n[hook]\npath=Resources.L.Metadata.AWS::CloudFormation::Init\naction=/bin/true\n",
        );
        assert_eq!(ini["main"]["stack"], "web");
        assert_eq!(ini["hook"]["action"], "/bin/true");
    }
}
