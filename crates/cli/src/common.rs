//! What several commands share: where the region is, region settings, parameter inputs,
//! waiting for Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use indexmap::IndexMap;

use crate::inputs;

/// Where client commands find the region: `--endpoint-url`, else `AWS_ENDPOINT_URL`, else the
/// default port.
#[derive(clap::Args, Debug, Clone)]
pub struct EndpointArgs {
    /// The region's API endpoint (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl EndpointArgs {
    pub fn endpoint(&self) -> String {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "http://127.0.0.1:4566".into())
    }

    /// A client of the region; it signs its calls when AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY are set (a region started with credentials checks them).
    pub fn client(&self) -> api::Client {
        let client = api::Client::new(&self.endpoint());
        match (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
            (Ok(id), Ok(secret)) if !id.is_empty() => {
                let region = std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".into());
                client.signing(&id, &secret, &region)
            }
            _ => client,
        }
    }
}

/// Settings of a region run by this process (`serve`, `up`).
#[derive(clap::Args, Debug, Clone)]
pub struct RegionArgs {
    /// Address the AWS API listens on.
    #[arg(long, default_value = "127.0.0.1:4566", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where state is kept (default for `serve`: the user's data directory; `up` keeps state in
    /// memory unless this is given).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Run every AWS timer N times faster (health checks, cooldowns, alarm periods, timeouts).
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub time_scale: f64,
    /// The region's name.
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    pub region: String,
    /// Local-only changes to what instances run and where nested templates are (YAML); the
    /// template stays deployable to AWS.
    #[arg(long, value_name = "FILE")]
    pub overrides: Option<PathBuf>,
    /// Check requests' SigV4 signatures against these access keys (an INI file like
    /// ~/.aws/credentials). Without it, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when
    /// CUMULO_VERIFY_SIGNATURES=1; otherwise any signature is accepted.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

impl RegionArgs {
    pub fn config(&self, data_dir: Option<PathBuf>) -> anyhow::Result<region::RegionConfig> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            anyhow::bail!("--time-scale must be a positive number, got {}", self.time_scale);
        }
        let overrides = match &self.overrides {
            Some(path) => region::Overrides::load(path).map_err(anyhow::Error::msg)?,
            None => region::Overrides::default(),
        };
        let credentials = match &self.credentials {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(
                    api::sigv4::Credentials::parse_ini(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                )
            }
            None if std::env::var("CUMULO_VERIFY_SIGNATURES").is_ok_and(|v| v == "1") => {
                let id = std::env::var("AWS_ACCESS_KEY_ID").context(
                    "CUMULO_VERIFY_SIGNATURES=1 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                )?;
                let secret = std::env::var("AWS_SECRET_ACCESS_KEY").context(
                    "CUMULO_VERIFY_SIGNATURES=1 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                )?;
                Some(api::sigv4::Credentials::new([(id, secret)]))
            }
            None => None,
        };
        Ok(region::RegionConfig {
            credentials,
            data_dir,
            listen: self.listen,
            time_scale: self.time_scale,
            account: aws_ids::Account {
                region: self.region.clone(),
                ..aws_ids::Account::default()
            },
            overrides,
            exe: std::env::current_exe().context("cannot find the cumulo executable")?,
            grace: std::time::Duration::from_secs(5),
            port_locks: Some(std::env::temp_dir().join("cumulo-ports")),
            // Tests of regions side by side make them search the same ports on purpose.
            port_start: std::env::var("CUMULO_INSTANCE_PORT_START")
                .ok()
                .and_then(|v| v.parse().ok()),
            temp_dir: std::env::temp_dir(),
            proxy_threads: std::env::var("CUMULO_PROXY_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok()),
        })
    }
}

/// The default data directory: `$XDG_DATA_HOME/cumulo`, else `~/.local/share/cumulo`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("cumulo");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/cumulo"),
        None => PathBuf::from(".cumulo"),
    }
}

/// Parameter values from `--parameter` and `--parameters-file`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ParamArgs {
    /// A parameter value, KEY=VALUE (repeatable; list values comma-separated).
    #[arg(long = "parameter", short = 'p', value_name = "KEY=VALUE")]
    pub parameters: Vec<String>,
    /// A file of parameter values: the AWS CLI's JSON list, a JSON object or KEY=VALUE lines.
    #[arg(long, value_name = "FILE")]
    pub parameters_file: Option<PathBuf>,
}

impl ParamArgs {
    pub fn values(&self) -> anyhow::Result<IndexMap<String, String>> {
        let mut out = match &self.parameters_file {
            Some(path) => inputs::read_file(path)?,
            None => IndexMap::new(),
        };
        out.extend(inputs::parse_pairs(&self.parameters)?);
        Ok(out)
    }
}

pub fn read_template(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A stack name from a template file name (`ha-web-app.yaml` → `ha-web-app`).
pub fn stack_name_from(path: &std::path::Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("stack");
    let mut name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        name.insert_str(0, "stack-");
    }
    name.truncate(128);
    name
}

/// Ctrl-C and SIGTERM, caught from the moment this is made (so that a signal arriving early
/// is not lost to the default handler).
pub struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn install() -> anyhow::Result<StopSignal> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            interrupt: signal(SignalKind::interrupt()).context("cannot catch Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        })
    }

    /// Resolves when the user asks the process to stop.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_from_files() {
        assert_eq!(stack_name_from(std::path::Path::new("examples/ha-web-app.yaml")), "ha-web-app");
        assert_eq!(stack_name_from(std::path::Path::new("2-tier_app.json")), "stack-2-tier-app");
    }
}

/// A duration as users write it: `90s`, `10m`, `1h`, `1h30m`, `250ms`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Ok(std::time::Duration::from_secs_f64(secs))
        } else {
            Err(format!("not a duration: {text}"))
        };
    }
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return Err("an empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let n: f64 = number.parse().map_err(|_| format!("not a duration: {text}"))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            "d" => 86_400.0,
            _ => return Err(format!("not a duration: {text} (use s, m, h, d or ms)")),
        };
        total += n * scale;
        rest = tail;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod duration_tests {
    #[test]
    fn durations_as_users_write_them() {
        let d = |s: &str| super::parse_duration(s).map(|d| d.as_secs_f64());
        assert_eq!(d("90s"), Ok(90.0));
        assert_eq!(d("10m"), Ok(600.0));
        assert_eq!(d("1h30m"), Ok(5_400.0));
        assert_eq!(d("250ms"), Ok(0.25));
        assert_eq!(d("42"), Ok(42.0));
        assert!(d("5 parsecs").is_err());
        assert!(d("").is_err());
        assert!(d("-3").is_err());
    }
}
