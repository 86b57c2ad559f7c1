//! The instance metadata service, one listener per instance (so each instance reaches only its
//! own metadata): IMDSv1 and v2 (the token PUT flow), the paths SDKs and tools read, role
//! credentials that look like AWS's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use clock::Clock;
use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::model::InstanceRecord;

pub(crate) struct Imds {
    pub instance: InstanceRecord,
    pub region: String,
    pub account_id: String,
    pub clock: Clock,
    tokens: Mutex<HashMap<String, Instant>>,
}

/// Starts an IMDS listener on a free loopback port; returns the port and the server task.
pub(crate) async fn serve(
    instance: InstanceRecord,
    region: String,
    account_id: String,
    clock: Clock,
) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let state =
        Arc::new(Imds { instance, region, account_id, clock, tokens: Mutex::new(HashMap::new()) });
    let app = Router::new().fallback(handle).with_state(state);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((port, task))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [("content-type", "text/plain")], body.into()).into_response()
}

fn not_found() -> Response {
    let body = "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>404 - Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found</h1>\n </body>\n</html>\n";
    (StatusCode::NOT_FOUND, [("content-type", "text/html")], body).into_response()
}

async fn handle(
    State(imds): State<Arc<Imds>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let path = uri.path();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if method == Method::PUT {
        if path != "/latest/api/token" {
            return if path.ends_with("/api/token") {
                text(StatusCode::FORBIDDEN, "Forbidden")
            } else {
                text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
            };
        }
        if header("x-forwarded-for").is_some() {
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
        let ttl = match header("x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            Some(t) if (1..=21_600).contains(&t) => t,
            _ => return text(StatusCode::BAD_REQUEST, "Bad Request"),
        };
        let token = random_token();
        imds.tokens.lock().insert(token.clone(), imds.clock.deadline(Duration::from_secs(ttl)));
        return (
            StatusCode::OK,
            [("x-aws-ec2-metadata-token-ttl-seconds", ttl.to_string())],
            token,
        )
            .into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    match header("x-aws-ec2-metadata-token") {
        Some(token) => {
            let valid = imds
                .tokens
                .lock()
                .get(token)
                .is_some_and(|deadline| *deadline > imds.clock.instant());
            if !valid {
                return text(StatusCode::UNAUTHORIZED, "Unauthorized");
            }
        }
        None if imds.instance.http_tokens == "required" => {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        None => {}
    }
    // `/latest/...` or a dated version (`/2021-07-15/...`).
    let rest = path.trim_start_matches('/');
    let Some((version, item)) = rest.split_once('/').or(Some((rest, ""))) else {
        return not_found();
    };
    if version != "latest" && !(version.len() == 10 && version.chars().nth(4) == Some('-')) {
        return not_found();
    }
    match imds.item(item) {
        Some(body) => text(StatusCode::OK, body),
        None => not_found(),
    }
}

fn random_token() -> String {
    let bytes: Vec<u8> = (0..42).map(|_| fastrand_u8()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn fastrand_u8() -> u8 {
    // aws-ids' randomness, one byte at a time.
    u8::from_str_radix(&aws_ids::hex(2), 16).unwrap_or(0)
}

impl Imds {
    fn item(&self, item: &str) -> Option<String> {
        let i = &self.instance;
        let zone_id = format!(
            "{}-az{}",
            short_region(&self.region),
            i.zone.chars().last().map_or(1, |c| (c as u8 - b'a' + 1) as u32)
        );
        let mac = mac_of(&i.id);
        Some(match item.trim_end_matches('/') {
            "" => "dynamic\nmeta-data\nuser-data".into(),
            "meta-data" => [
                "ami-id",
                "ami-launch-index",
                "ami-manifest-path",
                "block-device-mapping/",
                "events/",
                "hostname",
                "iam/",
                "instance-action",
                "instance-id",
                "instance-life-cycle",
                "instance-type",
                "local-hostname",
                "local-ipv4",
                "mac",
                "network/",
                "placement/",
                "profile",
                "public-hostname",
                "public-ipv4",
                "reservation-id",
                "security-groups",
                "services/",
            ]
            .iter()
            .filter(|k| (**k != "public-ipv4" && **k != "public-hostname") || i.public_ip.is_some())
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
            "meta-data/ami-id" => i.image_id.clone(),
            "meta-data/ami-launch-index" => "0".into(),
            "meta-data/ami-manifest-path" => "(unknown)".into(),
            "meta-data/instance-action" => "none".into(),
            "meta-data/instance-id" => i.id.clone(),
            "meta-data/instance-life-cycle" => "on-demand".into(),
            "meta-data/instance-type" => i.instance_type.clone(),
            "meta-data/hostname" | "meta-data/local-hostname" => i.private_dns_name(),
            "meta-data/local-ipv4" => i.private_ip.clone(),
            "meta-data/public-ipv4" => i.public_ip.clone()?,
            "meta-data/public-hostname" => i.public_dns_name()?,
            "meta-data/mac" => mac.clone(),
            "meta-data/profile" => "default-hvm".into(),
            "meta-data/reservation-id" => format!("r-{}", &i.id[2..]),
            "meta-data/security-groups" => i.security_groups.join("\n"),
            "meta-data/placement" => "availability-zone\navailability-zone-id\nregion".into(),
            "meta-data/placement/availability-zone" => i.zone.clone(),
            "meta-data/placement/availability-zone-id" => zone_id,
            "meta-data/placement/region" => self.region.clone(),
            "meta-data/services" => "domain\npartition".into(),
            "meta-data/services/domain" => "amazonaws.com".into(),
            "meta-data/services/partition" => "aws".into(),
            "meta-data/network" => "interfaces/".into(),
            "meta-data/network/interfaces" => "macs/".into(),
            "meta-data/network/interfaces/macs" => format!("{mac}/"),
            "meta-data/block-device-mapping" => "ami\nroot".into(),
            "meta-data/block-device-mapping/ami" | "meta-data/block-device-mapping/root" => {
                "/dev/xvda".into()
            }
            "meta-data/events" => "maintenance/".into(),
            "meta-data/iam" => {
                i.role.as_ref()?;
                "info\nsecurity-credentials/".into()
            }
            "meta-data/iam/info" => {
                i.role.as_ref()?;
                let arn = i.instance_profile_arn.clone().unwrap_or_default();
                serde_json::to_string_pretty(&json!({
                    "Code": "Success",
                    "LastUpdated": clock::iso8601(self.clock.now()).replace(".000", ""),
                    "InstanceProfileArn": arn,
                    "InstanceProfileId": format!("AIPA{}", aws_ids::upper_alnum(17)),
                }))
                .ok()?
            }
            "meta-data/iam/security-credentials" => i.role.clone()?,
            "meta-data/autoscaling/target-lifecycle-state" => {
                i.group.as_ref()?;
                "InService".into()
            }
            "user-data" => {
                let data = i.user_data.as_ref()?;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .unwrap_or_else(|_| data.as_bytes().to_vec());
                String::from_utf8_lossy(&decoded).into_owned()
            }
            "dynamic" => "instance-identity/".into(),
            "dynamic/instance-identity" => "document\npkcs7\nsignature".into(),
            "dynamic/instance-identity/document" => serde_json::to_string_pretty(&json!({
                "accountId": self.account_id,
                "architecture": "x86_64",
                "availabilityZone": i.zone,
                "billingProducts": null,
                "devpayProductCodes": null,
                "marketplaceProductCodes": null,
                "imageId": i.image_id,
                "instanceId": i.id,
                "instanceType": i.instance_type,
                "kernelId": null,
                "pendingTime": i.launch_time.replace(".000", ""),
                "privateIp": i.private_ip,
                "ramdiskId": null,
                "region": self.region,
                "version": "2017-09-30",
            }))
            .ok()?,
            other => {
                let role = i.role.as_ref()?;
                if other == format!("meta-data/iam/security-credentials/{role}") {
                    let expiration = self
                        .clock
                        .now()
                        .checked_add(jiff::SignedDuration::from_hours(6))
                        .unwrap_or(self.clock.now());
                    return serde_json::to_string_pretty(&json!({
                        "Code": "Success",
                        "LastUpdated": clock::iso8601(self.clock.now()).replace(".000", ""),
                        "Type": "AWS-HMAC",
                        "AccessKeyId": format!("ASIA{}", aws_ids::upper_alnum(16)),
                        "SecretAccessKey": secret(40),
                        "Token": secret(344),
                        "Expiration": clock::iso8601(expiration).split('.').next().map(|s| format!("{s}Z")).unwrap_or_default(),
                    }))
                    .ok();
                }
                return None;
            }
        })
    }
}

fn secret(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n).map(|_| SET[usize::from(fastrand_u8()) % SET.len()] as char).collect()
}

/// A stable MAC address for an instance (`0a:` + five bytes from its id).
fn mac_of(id: &str) -> String {
    let hex = id.trim_start_matches("i-");
    let bytes: Vec<String> =
        (0..5).map(|k| hex.get(k * 2..k * 2 + 2).unwrap_or("00").to_string()).collect();
    format!("0a:{}", bytes.join(":"))
}

fn short_region(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [a, b, n] => format!("{a}{}{n}", b.chars().next().unwrap_or('x')),
        _ => region.to_string(),
    }
}
