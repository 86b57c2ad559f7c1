//! The HTTP server: AWS requests (awsQuery and awsJson on `/`, rpc-v2-cbor on
//! `/service/<Service>/operation/<Operation>`) routed to their service, their signatures
//! checked when the region has credentials, and the local endpoints Cumulo's helpers use
//! (wait-condition handles).

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
use crate::protocol::Value;
use crate::query::QueryInput;
use crate::registry::{Context, JsonVersion, QueryService, Registry, Route, RpcService};

/// The services behind the endpoint.
pub struct Services {
    pub cloudformation: Arc<Engine>,
    pub ec2: Arc<ec2::Ec2>,
    pub elb: Arc<elb::Elb>,
    pub autoscaling: Arc<autoscaling::AutoScaling>,
    /// The region's clock: the AWS time responses carry.
    pub clock: clock::Clock,
    /// The AWS services answered on `/` and `/service/...`.
    pub registry: Registry,
    /// Access keys whose signatures are checked; `None` accepts any signature (or none).
    pub credentials: Option<crate::sigv4::Credentials>,
    /// SNS, whose signing certificate is served at `/_cumulo/sns/SimpleNotificationService.pem`.
    pub sns: Option<Arc<sns::Sns>>,
}

pub fn router(services: Arc<Services>) -> Router {
    Router::new()
        .route("/cumulo/waitcondition/{*rest}", put(wait_condition))
        .route("/_cumulo/instances", get(instances))
        .route("/_cumulo/endpoints", get(endpoints))
        .route("/_cumulo/ca.pem", get(ca_pem))
        .route("/_cumulo/sns/SimpleNotificationService.pem", get(sns_cert))
        .route("/_cumulo/mail", get(mail))
        .route("/_cumulo/metrics", get(metrics))
        .route("/_cumulo/clock", get(clock_now))
        .route("/_cumulo/chaos/{action}/{target}", axum::routing::post(chaos))
        .route("/", any(aws))
        .route("/service/{*rest}", axum::routing::post(aws))
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

/// Every AWS request: awsQuery and awsJson on `/`, rpc-v2-cbor on
/// `/service/<Service>/operation/<Operation>`. The signature is checked (when the region has
/// credentials) before the service runs; errors come back in the request's protocol.
async fn aws(
    State(services): State<Arc<Services>>,
    method: axum::http::Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = aws_ids::uuid();
    answer(
        &services.registry,
        services.credentials.as_ref(),
        &method,
        &uri,
        &headers,
        &body,
        &request_id,
    )
    .await
}

/// The answer to one AWS request (what `/` and `/service/...` run), by the services of
/// `registry`, checking signatures against `credentials` when there are some.
pub async fn answer(
    registry: &Registry,
    credentials: Option<&crate::sigv4::Credentials>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Response {
    let path = uri.path();
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "))
        || uri.query().is_some_and(|q| q.contains("X-Amz-Signature="));
    // Signatures are over the body as sent; services read it inflated.
    let payload = inflate(headers, body);
    let check = |reply: &Reply<'_>| -> Option<Response> {
        let credentials = credentials?;
        let header_pairs: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let req = crate::sigv4::Request {
            method: method.as_str(),
            path,
            query: uri.query().unwrap_or(""),
            headers: &header_pairs,
            body,
        };
        let e = crate::sigv4::verify(credentials, &req).err()?;
        tracing::info!("refused: {e}");
        Some(
            reply.error(&ApiError::new(reply.auth_code(&e), e.to_string(), e.status()), request_id),
        )
    };
    if let Some(rest) = path.strip_prefix("/service/") {
        let (name, operation) = match rest.split_once("/operation/") {
            Some((n, o)) if !n.is_empty() && !o.is_empty() && !o.contains('/') => (n, o),
            _ => ("", ""),
        };
        let Some(service) = registry.by_cbor_name(name) else {
            let reply = Reply::Cbor { query_compatible: false, error_shapes: &[] };
            let e = ApiError::new(
                "UnknownOperationException",
                format!("Cumulo does not answer for the service {name:?} over rpc-v2-cbor yet."),
                404,
            );
            return reply.error(&e, request_id);
        };
        let reply = Reply::Cbor {
            query_compatible: service.wire().query_compatible,
            error_shapes: service.wire().error_shapes,
        };
        if let Some(refused) = check(&reply) {
            return refused;
        }
        let payload = match payload {
            Ok(p) => p,
            Err(e) => return reply.error(&e, request_id),
        };
        return match crate::protocol::decode_cbor(&payload) {
            Ok(input) => rpc(service, operation, &input, &reply, request_id, signed).await,
            Err(e) => reply
                .error(&ApiError::new("SerializationException", e.to_string(), 400), request_id),
        };
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        let (prefix, operation) = target.rsplit_once('.').unwrap_or((target, ""));
        let Some(service) = registry.by_target(prefix) else {
            let reply = Reply::Json {
                version: JsonVersion::V1_1,
                query_compatible: false,
                error_shapes: &[],
            };
            let e = ApiError::new(
                "UnknownOperationException",
                format!("Cumulo does not answer for {target} yet."),
                400,
            );
            return reply.error(&e, request_id);
        };
        let (_, version) = service.wire().json.unwrap_or((prefix, JsonVersion::V1_1));
        let reply = Reply::Json {
            version,
            query_compatible: service.wire().query_compatible,
            error_shapes: service.wire().error_shapes,
        };
        if let Some(refused) = check(&reply) {
            return refused;
        }
        let payload = match payload {
            Ok(p) => p,
            Err(e) => return reply.error(&e, request_id),
        };
        return match crate::protocol::decode_json(&payload) {
            Ok(input) => rpc(service, operation, &input, &reply, request_id, signed).await,
            Err(e) => reply
                .error(&ApiError::new("SerializationException", e.to_string(), 400), request_id),
        };
    }
    let generic = Reply::Query(cloudformation::XMLNS);
    let payload = match payload {
        Ok(p) => p,
        Err(e) => return generic.error(&e, request_id),
    };
    let q = QueryInput::parse(uri.query().unwrap_or(""), &payload);
    let Some(action) = q.get("Action").map(str::to_string) else {
        if let Some(refused) = check(&generic) {
            return refused;
        }
        let e = ApiError::new("MissingAction", "Missing Action", 400);
        return generic.error(&e, request_id);
    };
    match registry.route(headers, &q) {
        Route::Service(service) => {
            if let Some(refused) = check(&Reply::QueryService(service)) {
                return refused;
            }
            let result = service.call(&action, &q, request_id).await;
            tracing::debug!(
                action,
                service = service.signing_name(),
                ok = result.is_ok(),
                "api request"
            );
            match result {
                Ok(body) => xml_response(200, body, request_id),
                Err(e) => xml_response(e.status, service.error_xml(&e, request_id), request_id),
            }
        }
        Route::Rpc(service) => {
            let xmlns = service.wire().query.map_or(cloudformation::XMLNS, |(_, x)| x);
            let reply = Reply::Query(xmlns);
            // An operation the service takes unsigned (a link in a message) is checked only
            // when it is signed after all.
            let exempt = service.unsigned(&action) && !signed;
            if !exempt && let Some(refused) = check(&reply) {
                return refused;
            }
            let input = crate::protocol::query_tree(&q);
            rpc(service, &action, &input, &reply, request_id, signed).await
        }
        Route::Unknown(what) => {
            if let Some(refused) = check(&generic) {
                return refused;
            }
            tracing::debug!(action, "no service for {what}");
            let e = ApiError::new(
                "InvalidAction",
                format!(
                    "The action {action} is not valid for this web service: Cumulo does not answer for {what} yet."
                ),
                400,
            );
            generic.error(&e, request_id)
        }
    }
}

/// At most this much body once inflated.
const MAX_INFLATED: u64 = 16 << 20;

/// The body a service reads: a `Content-Encoding: gzip` one inflated (botocore and the SDKs
/// compress a PutMetricData of 10 KiB or more), bounded by [`MAX_INFLATED`].
fn inflate<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, ApiError> {
    use std::io::Read;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).take(MAX_INFLATED + 1).read_to_end(&mut out).map_err(
        |e| {
            ApiError::new("SerializationException", format!("The body is not valid gzip: {e}"), 400)
        },
    )?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(ApiError::new(
            "SerializationException",
            format!("The body inflates to more than {MAX_INFLATED} bytes."),
            413,
        ));
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Runs an [`RpcService`] operation and answers in `reply`'s protocol.
async fn rpc(
    service: &dyn RpcService,
    operation: &str,
    input: &Value,
    reply: &Reply<'_>,
    request_id: &str,
    signed: bool,
) -> Response {
    if !service.handles(operation) {
        let e = match reply {
            Reply::Query(_) | Reply::QueryService(_) => ApiError::invalid_action(operation),
            _ => ApiError::new(
                "UnknownOperationException",
                format!(
                    "The operation {operation} is not known to {}.",
                    service.wire().signing_name
                ),
                400,
            ),
        };
        return reply.error(&e, request_id);
    }
    let result = service.call(operation, input, &Context { request_id, signed }).await;
    tracing::debug!(
        operation,
        service = service.wire().signing_name,
        ok = result.is_ok(),
        "api request"
    );
    match result {
        Ok(output) => reply.ok(operation, &output, request_id),
        Err(e) => reply.error(&e, request_id),
    }
}

/// How a response goes back: the request's protocol.
enum Reply<'a> {
    /// awsQuery XML in this namespace.
    Query(&'static str),
    /// awsQuery, in the error dialect of this service.
    QueryService(&'a dyn QueryService),
    Json {
        version: JsonVersion,
        query_compatible: bool,
        /// [`crate::registry::Wire::error_shapes`].
        error_shapes: &'static [(&'static str, &'static str)],
    },
    Cbor {
        query_compatible: bool,
        error_shapes: &'static [(&'static str, &'static str)],
    },
}

impl Reply<'_> {
    /// The code of a signature error: awsJson services have their own names for them (an
    /// awsQueryCompatible one still tells the Query code in `x-amzn-query-error`, see
    /// `error`).
    fn auth_code(&self, e: &crate::sigv4::SigError) -> &'static str {
        match self {
            Reply::Json { query_compatible: false, .. } => e.json_code(),
            _ => e.code(),
        }
    }

    fn ok(&self, operation: &str, output: &Value, request_id: &str) -> Response {
        match self {
            Reply::Query(xmlns) => xml_response(
                200,
                crate::protocol::query_xml(operation, xmlns, output, request_id),
                request_id,
            ),
            Reply::QueryService(_) => xml_response(200, String::new(), request_id),
            Reply::Json { version, .. } => bytes_response(
                200,
                version.content_type(),
                crate::protocol::encode_json(output),
                request_id,
            ),
            Reply::Cbor { .. } => {
                let mut r = bytes_response(
                    200,
                    "application/cbor",
                    crate::protocol::encode_cbor(output),
                    request_id,
                );
                r.headers_mut().insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
                r
            }
        }
    }

    /// The error in the protocol's shape: Query's `ErrorResponse`; JSON's and CBOR's
    /// `{"__type", "message"}` with `x-amzn-ErrorType` (the error shape's name), and for
    /// awsQueryCompatible services `x-amzn-query-error: Code;Sender|Receiver`.
    fn error(&self, e: &ApiError, request_id: &str) -> Response {
        let fault = if e.status < 500 { "Sender" } else { "Receiver" };
        let shapes = match self {
            Reply::Json { error_shapes, .. } | Reply::Cbor { error_shapes, .. } => *error_shapes,
            _ => &[],
        };
        let error_type =
            shapes.iter().find(|(code, _)| *code == e.code).map_or(e.code.as_str(), |(_, s)| s);
        let mut body = Value::map();
        body.set("__type", Value::from(error_type)).set("message", Value::from(e.message.as_str()));
        let (mut response, query_compatible) = match self {
            Reply::Query(xmlns) => {
                return xml_response(e.status, e.to_xml(xmlns, request_id), request_id);
            }
            Reply::QueryService(s) => {
                return xml_response(e.status, s.error_xml(e, request_id), request_id);
            }
            Reply::Json { version, query_compatible, .. } => (
                bytes_response(
                    e.status,
                    version.content_type(),
                    crate::protocol::encode_json(&body),
                    request_id,
                ),
                *query_compatible,
            ),
            Reply::Cbor { query_compatible, .. } => {
                let mut r = bytes_response(
                    e.status,
                    "application/cbor",
                    crate::protocol::encode_cbor(&body),
                    request_id,
                );
                r.headers_mut().insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
                (r, *query_compatible)
            }
        };
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(error_type) {
            headers.insert("x-amzn-errortype", v);
        }
        if query_compatible && let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", e.code)) {
            headers.insert("x-amzn-query-error", v);
        }
        response
    }
}

fn bytes_response(
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    request_id: &str,
) -> Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
            .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
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
                "namespace": s.namespace,
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
    axum::extract::Query(options): axum::extract::Query<std::collections::HashMap<String, String>>,
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
        "kill-instance" => (
            ec2.power_off(&target),
            format!("instance {target} killed: its machine is gone (system status check failed)"),
        ),
        "cpu-burn" => {
            let percent = options.get("percent").map_or(Ok(100.0), |p| p.parse::<f64>());
            let seconds = options.get("for").map_or(Ok(600.0), |p| p.parse::<f64>());
            let (Ok(percent), Ok(seconds)) = (percent, seconds) else {
                return (StatusCode::BAD_REQUEST, "percent and for must be numbers\n")
                    .into_response();
            };
            if !(seconds > 0.0 && seconds <= 86_400.0) {
                return (StatusCode::BAD_REQUEST, "for must be between 0 and 86400 seconds\n")
                    .into_response();
            }
            match ec2.burn_cpu(&target, percent, std::time::Duration::from_secs_f64(seconds)) {
                Ok(()) => {
                    (true, format!("instance {target} burns {percent}% of its CPU for {seconds} s"))
                }
                Err(e) => return local_failure(e),
            }
        }
        "kill-app" => match ec2.app_pid(&target) {
            Ok(pid) => (signal(pid), format!("the app of {target} killed")),
            Err(e) => return local_failure(e),
        },
        other => (false, format!("unknown chaos action {other}")),
    };
    let status = if ok { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    (status, [(header::CONTENT_TYPE, "text/plain")], format!("{message}\n")).into_response()
}

/// The region's clock: AWS time now (epoch seconds) and the time scale, so that client
/// commands ask CloudWatch about the right window.
async fn clock_now(State(services): State<Arc<Services>>) -> Response {
    let now = services.clock.now();
    let body = serde_json::json!({
        "now": now.as_millisecond() as f64 / 1000.0,
        "timeScale": services.clock.scale(),
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
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

/// The certificate SNS signs messages with (what their SigningCertURL names).
/// The local mailbox (email and email-json deliveries, and what sqs/lambda subscriptions were
/// not delivered): `?since=ID` for what came after, as JSON.
async fn mail(
    State(services): State<Arc<Services>>,
    axum::extract::Query(options): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(sns) = &services.sns else {
        return (StatusCode::NOT_FOUND, "no SNS in this region\n").into_response();
    };
    let since = options.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    match sns.mailbox(since) {
        Ok(mails) => {
            let list: Vec<serde_json::Value> = mails
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id, "to": m.to, "subject": m.subject, "body": m.body,
                        "at": m.at, "topicArn": m.topic_arn, "protocol": m.protocol,
                    })
                })
                .collect();
            (
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::Value::Array(list).to_string(),
            )
                .into_response()
        }
        Err(e) => local_failure(e),
    }
}

async fn sns_cert(State(services): State<Arc<Services>>) -> Response {
    let Some(sns) = &services.sns else {
        return (StatusCode::NOT_FOUND, "this region has no SNS\n").into_response();
    };
    match sns.signing_cert_pem() {
        Ok(pem) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-pem-file")], pem)
            .into_response(),
        Err(e) => local_failure(e),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_bodies_are_inflated_within_a_bound() {
        let mut gzipped = HeaderMap::new();
        gzipped.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let form = b"Action=ListMetrics&Version=2010-08-01";
        let outcome = |headers: &HeaderMap, body: &[u8]| match inflate(headers, body) {
            Ok(b) => format!("{} bytes", b.len()),
            Err(e) => format!("{} {}", e.status, e.code),
        };
        let bomb = gzip(&vec![0u8; (MAX_INFLATED + 1) as usize]);
        let cases = [
            (outcome(&gzipped, &gzip(form)), "37 bytes"),
            // Without the header the body is what it is, even if it is gzip.
            (outcome(&HeaderMap::new(), form), "37 bytes"),
            (outcome(&gzipped, form), "400 SerializationException"),
            (outcome(&gzipped, &gzip(form)[..20]), "400 SerializationException"),
            (outcome(&gzipped, &bomb), "413 SerializationException"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert!(bomb.len() < 100_000, "the bomb is small: {}", bomb.len());
    }
}
