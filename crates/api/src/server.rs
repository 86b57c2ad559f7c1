//! The HTTP server: AWS Query requests on `/` routed to their service, and the local
//! endpoints Cumulo's helpers use (wait-condition handles).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use cfn_stacks::Engine;

use crate::cloudformation;
use crate::error::ApiError;
use crate::query::QueryInput;
use crate::registry::{Registry, Route};

/// The services behind the endpoint.
pub struct Services {
    pub cloudformation: Arc<Engine>,
    pub ec2: Arc<ec2::Ec2>,
    pub elb: Arc<elb::Elb>,
    pub autoscaling: Arc<autoscaling::AutoScaling>,
    /// The region's clock: the AWS time responses carry.
    pub clock: clock::Clock,
    /// The AWS services answered on `/`.
    pub registry: Registry,
}

pub fn router(services: Arc<Services>) -> Router {
    Router::new()
        .route("/cumulo/waitcondition/{*rest}", put(wait_condition))
        .route("/_cumulo/instances", get(instances))
        .route("/_cumulo/endpoints", get(endpoints))
        .route("/_cumulo/ca.pem", get(ca_pem))
        .route("/_cumulo/metrics", get(metrics))
        .route("/_cumulo/chaos/{action}/{target}", axum::routing::post(chaos))
        .route("/", any(query))
        .layer(axum::middleware::from_fn(guard))
        .with_state(services)
}

/// Refuses what a web page could send: foreign `Host`s, and cross-origin or unsigned-GET
/// requests that would change state (`guard`).
async fn guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if let Some(reason) = crate::guard::refusal(request.method(), request.uri(), request.headers())
    {
        let request_id = aws_ids::uuid();
        tracing::warn!(method = %request.method(), uri = %request.uri(), "refused: {reason}");
        let e = ApiError::new("AccessDenied", reason, 403);
        return xml_response(e.status, e.to_xml(cloudformation::XMLNS, &request_id), &request_id);
    }
    next.run(request).await
}

async fn query(
    State(services): State<Arc<Services>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = aws_ids::uuid();
    let q = QueryInput::parse(uri.query().unwrap_or(""), &body);
    let Some(action) = q.get("Action").map(str::to_string) else {
        let e = ApiError::new("MissingAction", "Missing Action", 400);
        return xml_response(e.status, e.to_xml(cloudformation::XMLNS, &request_id), &request_id);
    };
    let service = match services.registry.route(&headers, &q) {
        Route::Service(s) => s,
        Route::Unknown(what) => {
            tracing::debug!(action, "no service for {what}");
            let e = ApiError::new(
                "InvalidAction",
                format!(
                    "The action {action} is not valid for this web service: Cumulo does not answer for {what} yet."
                ),
                400,
            );
            return xml_response(
                e.status,
                e.to_xml(cloudformation::XMLNS, &request_id),
                &request_id,
            );
        }
    };
    let result = service.call(&action, &q, &request_id).await;
    tracing::debug!(action, service = service.signing_name(), ok = result.is_ok(), "api request");
    match result {
        Ok(body) => xml_response(200, body, &request_id),
        Err(e) => xml_response(e.status, service.error_xml(&e, &request_id), &request_id),
    }
}

fn xml_response(status: u16, body: String, request_id: &str) -> Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
            .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// A local endpoint's answer when the service cannot read its state: 500 with the reason.
fn local_failure(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], format!("{e}\n"))
        .into_response()
}

/// Local details of instances that the EC2 API has no words for (processes, loopback ports,
/// CPU), as JSON, for `cumulo instances`.
async fn instances(State(services): State<Arc<Services>>) -> Response {
    let ec2 = &services.ec2;
    let all = match ec2.instances() {
        Ok(all) => all,
        Err(e) => return local_failure(e),
    };
    let list: Vec<serde_json::Value> = all
        .into_iter()
        .map(|i| {
            let usage = ec2.usage(&i.id);
            serde_json::json!({
                "instanceId": i.id,
                "state": i.state.name(),
                "zone": i.zone,
                "privateIp": i.private_ip,
                "publicIp": i.public_ip,
                "ports": i.ports.iter().map(|p| serde_json::json!({"expected": p.expected, "host": p.host})).collect::<Vec<_>>(),
                "machinePid": ec2.machine_pid(&i.id),
                "appPid": ec2.app_pid(&i.id).ok().flatten(),
                "imdsPort": ec2.imds_port(&i.id),
                "cpuPercent": usage.map(|u| u.cpu_percent),
                "rssBytes": usage.map(|u| u.rss_bytes),
                "group": i.group,
                "launchTime": i.launch_time,
                "tags": i.tags,
            })
        })
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Array(list).to_string(),
    )
        .into_response()
}

/// Where each load balancer listener really answers (`cumulo outputs` rewrites DNS names
/// with it into URLs that work).
/// The load balancers' AWS/ApplicationELB samples now, as JSON (for the console and the
/// CloudWatch service).
async fn metrics(State(services): State<Arc<Services>>) -> Response {
    let samples = match services.elb.metrics() {
        Ok(samples) => samples,
        Err(e) => return local_failure(e),
    };
    let list: Vec<serde_json::Value> = samples
        .into_iter()
        .map(|s| {
            let dims: serde_json::Map<String, serde_json::Value> =
                s.dimensions.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
            serde_json::json!({
                "namespace": elb::metrics::NAMESPACE,
                "metricName": s.name,
                "dimensions": dims,
                "value": s.value,
                "unit": s.unit,
                "kind": s.kind,
            })
        })
        .collect();
    ([(http::header::CONTENT_TYPE, "application/json")], serde_json::Value::Array(list).to_string())
        .into_response()
}

async fn endpoints(State(services): State<Arc<Services>>) -> Response {
    let endpoints = match services.elb.endpoints() {
        Ok(endpoints) => endpoints,
        Err(e) => return local_failure(e),
    };
    let list: Vec<serde_json::Value> = endpoints
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "loadBalancer": e.load_balancer,
                "dnsName": e.dns_name,
                "port": e.port,
                "https": e.https,
                "address": e.addr.to_string(),
            })
        })
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Array(list).to_string(),
    )
        .into_response()
}

/// Breaking things on purpose: `fail-zone/AZ`, `restore-zone/AZ`, `kill-instance/ID` (the
/// instance's machine dies: EC2 sees it stop), `kill-app/ID` (only its app dies: load balancer
/// health checks notice).
async fn chaos(
    State(services): State<Arc<Services>>,
    axum::extract::Path((action, target)): axum::extract::Path<(String, String)>,
) -> Response {
    let ec2 = &services.ec2;
    let signal = |pid: Option<u32>| -> bool {
        pid.is_some_and(|p| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        })
    };
    let (ok, message) = match action.as_str() {
        "fail-zone" => {
            let stopped = match ec2.fail_zone(&target) {
                Ok(stopped) => stopped,
                Err(e) => return local_failure(e),
            };
            (
                true,
                format!(
                    "zone {target} is down: {} instance(s) stopped, launches there fail",
                    stopped.len()
                ),
            )
        }
        "restore-zone" => (ec2.restore_zone(&target), format!("zone {target} is back")),
        "kill-instance" => (ec2.power_off(&target), format!("instance {target} killed")),
        "kill-app" => match ec2.app_pid(&target) {
            Ok(pid) => (signal(pid), format!("the app of {target} killed")),
            Err(e) => return local_failure(e),
        },
        other => (false, format!("unknown chaos action {other}")),
    };
    let status = if ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    (status, [(header::CONTENT_TYPE, "text/plain")], format!("{message}\n")).into_response()
}

/// The local CA's certificate (what HTTPS listeners' certificates chain to).
async fn ca_pem(State(services): State<Arc<Services>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        services.elb.ca.pem().to_string(),
    )
        .into_response()
}

/// A PUT to a wait-condition handle URL (what `cfn-signal URL` and `curl -T` send).
async fn wait_condition(
    State(services): State<Arc<Services>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:4566");
    let url = format!("http://{host}{}", uri.path());
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(j) => j,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("wait condition signal is not JSON: {e}"))
                .into_response();
        }
    };
    let field = |k: &str| {
        json.get(k)
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .unwrap_or_default()
    };
    let engine = &services.cloudformation;
    match engine.signal_wait_handle(
        &url,
        &field("UniqueId"),
        &field("Status"),
        &field("Reason"),
        &field("Data"),
    ) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}
