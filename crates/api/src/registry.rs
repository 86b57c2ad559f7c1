//! The AWS services the endpoint answers for, in one registry that the region fills: each
//! says its SigV4 signing name, its API version, the actions it answers and how its errors
//! look, so adding a service is one `Registry::add`.
//!
//! Two kinds of service: a [`QueryService`] speaks awsQuery and writes its own XML; an
//! [`RpcService`] reads and returns [`Value`] trees and says which protocols it speaks
//! ([`Wire`]: awsJson's target prefix, rpc-v2-cbor's service name, awsQuery's version), the
//! server decoding and encoding each. `Registry::add` takes either.
//!
//! A Query request is routed by its credential scope (the signing name), then by `Version`
//! (Classic ELB, `2012-06-01`, and ELBv2, `2015-12-01`, share a signing name), then by its
//! action; a JSON request by its `X-Amz-Target` prefix; a CBOR request by the service name in
//! its path.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, header};

use crate::error::ApiError;
use crate::protocol::Value;
use crate::query::QueryInput;

/// One AWS service spoken over the Query protocol.
#[async_trait]
pub trait QueryService: Send + Sync {
    /// The SigV4 signing name (`ec2`, `elasticloadbalancing`, ...).
    fn signing_name(&self) -> &'static str;
    /// The API version requests name (`Version=`).
    fn version(&self) -> &'static str;
    /// Whether it answers `action` (routing by action when nothing else says).
    fn handles(&self, action: &str) -> bool;
    /// Runs one action; returns the XML response body.
    async fn call(
        &self,
        action: &str,
        q: &QueryInput,
        request_id: &str,
    ) -> Result<String, ApiError>;
    /// The error document, in the service's dialect.
    fn error_xml(&self, e: &ApiError, request_id: &str) -> String;
}

/// Implements [`QueryService`] for a service module's `Api`: the signing name given, the
/// module's `VERSION` and `handles`, and how a call runs (`|api, action, q, request_id| ...`);
/// errors are Query's `ErrorResponse` in the module's `XMLNS` unless an `error` is given.
macro_rules! query_service {
    ($signing:literal, |$api:ident, $action:ident, $q:ident, $rid:ident| $call:expr) => {
        $crate::registry::query_service!($signing, |$api, $action, $q, $rid| $call, |e, rid| e
            .to_xml(XMLNS, rid));
    };
    ($signing:literal, |$api:ident, $action:ident, $q:ident, $rid:ident| $call:expr, |$e:ident, $erid:ident| $error:expr) => {
        #[async_trait::async_trait]
        impl $crate::registry::QueryService for Api {
            fn signing_name(&self) -> &'static str {
                $signing
            }

            fn version(&self) -> &'static str {
                VERSION
            }

            fn handles(&self, action: &str) -> bool {
                handles(action)
            }

            async fn call(
                &self,
                $action: &str,
                $q: &QueryInput,
                $rid: &str,
            ) -> Result<String, ApiError> {
                let $api = self;
                $call
            }

            fn error_xml(&self, $e: &ApiError, $erid: &str) -> String {
                $error
            }
        }
    };
}
pub(crate) use query_service;

/// awsJson's two versions (their difference is only the `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonVersion {
    V1_0,
    V1_1,
}

impl JsonVersion {
    pub fn content_type(self) -> &'static str {
        match self {
            JsonVersion::V1_0 => "application/x-amz-json-1.0",
            JsonVersion::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// The protocols an [`RpcService`] speaks, by the names its requests use (botocore's
/// `metadata` in the service model).
#[derive(Clone, Debug, Default)]
pub struct Wire {
    /// `signingName`.
    pub signing_name: &'static str,
    /// awsJson: `targetPrefix` (`X-Amz-Target: <prefix>.<Operation>`) and the JSON version.
    pub json: Option<(&'static str, JsonVersion)>,
    /// smithy-rpc-v2-cbor: the service name of `/service/<name>/operation/<Operation>`.
    pub cbor: Option<&'static str>,
    /// awsQuery: `apiVersion` and the XML namespace of responses.
    pub query: Option<(&'static str, &'static str)>,
    /// `awsQueryCompatible`: JSON and CBOR errors also carry the Query error code
    /// (`x-amzn-query-error: Code;Sender`).
    pub query_compatible: bool,
    /// For an awsQueryCompatible service, the error shapes whose name is not their Query code
    /// (code, shape name): JSON and CBOR errors name the shape in `__type`, as AWS does (the
    /// SDKs match modeled exceptions by it); other codes are their own shape's name.
    pub error_shapes: &'static [(&'static str, &'static str)],
}

/// What a call knows besides its input.
pub struct Context<'a> {
    pub request_id: &'a str,
    /// Whether the request carries a SigV4 signature (checked when the region has
    /// credentials).
    pub signed: bool,
}

/// An AWS service that reads its input as a [`Value`] tree, whatever protocol carried it.
#[async_trait]
pub trait RpcService: Send + Sync {
    fn wire(&self) -> &Wire;
    /// Whether it answers `operation`.
    fn handles(&self, operation: &str) -> bool;
    /// Runs one operation; returns its output.
    async fn call(
        &self,
        operation: &str,
        input: &Value,
        cx: &Context<'_>,
    ) -> Result<Value, ApiError>;
    /// Whether `operation` may come unsigned even when the region checks signatures (SNS's
    /// ConfirmSubscription and Unsubscribe, whose token or subscription ARN is the
    /// authorization, as links in messages carry them).
    fn unsigned(&self, _operation: &str) -> bool {
        false
    }
}

/// Where a request goes.
pub enum Route<'a> {
    Service(&'a dyn QueryService),
    /// An [`RpcService`] spoken over Query.
    Rpc(&'a dyn RpcService),
    /// Signed for (or naming the version of) a service Cumulo does not speak yet.
    Unknown(String),
}

/// Either kind of service, for [`Registry::add`].
pub trait Register<Kind> {
    fn register(self, registry: &mut Registry);
}

/// [`Register`]'s kind for a [`QueryService`].
pub enum ViaQuery {}
/// [`Register`]'s kind for an [`RpcService`].
pub enum ViaRpc {}

impl<T: QueryService + 'static> Register<ViaQuery> for Arc<T> {
    fn register(self, registry: &mut Registry) {
        registry.services.push(self);
    }
}

impl Register<ViaQuery> for Arc<dyn QueryService> {
    fn register(self, registry: &mut Registry) {
        registry.services.push(self);
    }
}

impl<T: RpcService + 'static> Register<ViaRpc> for Arc<T> {
    fn register(self, registry: &mut Registry) {
        registry.rpc.push(self);
    }
}

impl Register<ViaRpc> for Arc<dyn RpcService> {
    fn register(self, registry: &mut Registry) {
        registry.rpc.push(self);
    }
}

/// A service spoken over Query, of either kind.
#[derive(Clone, Copy)]
enum Speaker<'a> {
    Xml(&'a dyn QueryService),
    Rpc(&'a dyn RpcService, &'static str),
}

impl<'a> Speaker<'a> {
    fn signing_name(self) -> &'static str {
        match self {
            Speaker::Xml(s) => s.signing_name(),
            Speaker::Rpc(s, _) => s.wire().signing_name,
        }
    }
    fn version(self) -> &'static str {
        match self {
            Speaker::Xml(s) => s.version(),
            Speaker::Rpc(_, v) => v,
        }
    }
    fn handles(self, action: &str) -> bool {
        match self {
            Speaker::Xml(s) => s.handles(action),
            Speaker::Rpc(s, _) => s.handles(action),
        }
    }
    fn route(self) -> Route<'a> {
        match self {
            Speaker::Xml(s) => Route::Service(s),
            Speaker::Rpc(s, _) => Route::Rpc(s),
        }
    }
}

#[derive(Default)]
pub struct Registry {
    services: Vec<Arc<dyn QueryService>>,
    rpc: Vec<Arc<dyn RpcService>>,
}

impl Registry {
    /// Adds a service: a [`QueryService`] or an [`RpcService`].
    pub fn add<Kind>(&mut self, service: impl Register<Kind>) -> &mut Registry {
        service.register(self);
        self
    }

    /// The service whose awsJson target prefix is `prefix`.
    pub fn by_target(&self, prefix: &str) -> Option<&dyn RpcService> {
        self.rpc
            .iter()
            .map(|s| s.as_ref())
            .find(|s| s.wire().json.is_some_and(|(p, _)| p == prefix))
    }

    /// The service whose rpc-v2-cbor name is `name`.
    pub fn by_cbor_name(&self, name: &str) -> Option<&dyn RpcService> {
        self.rpc.iter().map(|s| s.as_ref()).find(|s| s.wire().cbor == Some(name))
    }

    fn speakers(&self) -> impl Iterator<Item = Speaker<'_>> {
        self.services.iter().map(|s| Speaker::Xml(s.as_ref())).chain(
            self.rpc.iter().filter_map(|s| {
                s.wire().query.map(|(version, _)| Speaker::Rpc(s.as_ref(), version))
            }),
        )
    }

    /// The service a request is for: by credential scope, then version, then action.
    pub fn route(&self, headers: &HeaderMap, q: &QueryInput) -> Route<'_> {
        let version = q.get("Version");
        let scope = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|scope| scope.split('/').nth(3))
            .map(|s| s.trim_end_matches(',').to_string());
        let found = |pick: &dyn Fn(Speaker<'_>) -> bool| self.speakers().find(|s| pick(*s));
        if let Some(scope) = scope {
            let signed_for = |s: Speaker<'_>| s.signing_name() == scope;
            let hit = match version {
                Some(v) => found(&|s| signed_for(s) && s.version() == v),
                None => found(&signed_for),
            };
            return match hit {
                Some(s) => s.route(),
                None => Route::Unknown(match version {
                    Some(v) => format!("{scope} (API version {v})"),
                    None => scope,
                }),
            };
        }
        if let Some(v) = version {
            return match found(&|s| s.version() == v) {
                Some(s) => s.route(),
                None => Route::Unknown(format!("API version {v}")),
            };
        }
        let action = q.get("Action").unwrap_or("");
        match found(&|s| s.handles(action)) {
            Some(s) => s.route(),
            None => Route::Unknown(format!("the action {action}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(&'static str, &'static str, &'static [&'static str]);

    #[async_trait]
    impl QueryService for Fake {
        fn signing_name(&self) -> &'static str {
            self.0
        }
        fn version(&self) -> &'static str {
            self.1
        }
        fn handles(&self, action: &str) -> bool {
            self.2.contains(&action)
        }
        async fn call(&self, _: &str, _: &QueryInput, _: &str) -> Result<String, ApiError> {
            Ok(String::new())
        }
        fn error_xml(&self, _: &ApiError, _: &str) -> String {
            String::new()
        }
    }

    struct FakeRpc(Wire);

    #[async_trait]
    impl RpcService for FakeRpc {
        fn wire(&self) -> &Wire {
            &self.0
        }
        fn handles(&self, op: &str) -> bool {
            op == "ListMetrics"
        }
        async fn call(&self, _: &str, _: &Value, _: &Context<'_>) -> Result<Value, ApiError> {
            Ok(Value::map())
        }
    }

    #[test]
    fn routes_by_scope_then_version_then_action() {
        let mut registry = Registry::default();
        registry
            .add(Arc::new(Fake("elasticloadbalancing", "2015-12-01", &["DescribeTargetGroups"])))
            .add(Arc::new(Fake("elasticloadbalancing", "2012-06-01", &["DescribeInstanceHealth"])))
            .add(Arc::new(Fake("ec2", "2016-11-15", &["DescribeInstances"])))
            .add(Arc::new(Fake("sts", "2011-06-15", &["GetCallerIdentity"])))
            .add(Arc::new(FakeRpc(Wire {
                signing_name: "monitoring",
                cbor: Some("GraniteServiceVersion20100801"),
                query: Some(("2010-08-01", "http://monitoring.amazonaws.com/doc/2010-08-01/")),
                query_compatible: true,
                ..Wire::default()
            })))
            .add(Arc::new(FakeRpc(Wire {
                signing_name: "ssm",
                json: Some(("AmazonSSM", JsonVersion::V1_1)),
                ..Wire::default()
            })));
        let rpc_name = |s: Option<&dyn RpcService>| s.map(|s| s.wire().signing_name);
        assert_eq!(rpc_name(registry.by_target("AmazonSSM")), Some("ssm"));
        assert_eq!(rpc_name(registry.by_target("Logs_20140328")), None);
        assert_eq!(
            rpc_name(registry.by_cbor_name("GraniteServiceVersion20100801")),
            Some("monitoring")
        );
        assert_eq!(rpc_name(registry.by_cbor_name("AmazonSSM")), None);
        let route = |auth: Option<&str>, query: &str| {
            let mut headers = HeaderMap::new();
            if let Some(a) = auth {
                headers.insert(header::AUTHORIZATION, a.parse().unwrap());
            }
            match registry.route(&headers, &QueryInput::parse(query, b"")) {
                Route::Service(s) => format!("{} {}", s.signing_name(), s.version()),
                Route::Rpc(s) => format!("rpc {}", s.wire().signing_name),
                Route::Unknown(what) => format!("unknown: {what}"),
            }
        };
        let signed = |service: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
            )
        };
        let cases = [
            route(Some(&signed("ec2")), "Action=DescribeInstances&Version=2016-11-15"),
            route(
                Some(&signed("elasticloadbalancing")),
                "Action=DescribeLoadBalancers&Version=2015-12-01",
            ),
            // Classic ELB: same signing name, its own version.
            route(
                Some(&signed("elasticloadbalancing")),
                "Action=DescribeLoadBalancers&Version=2012-06-01",
            ),
            // A version neither speaks.
            route(
                Some(&signed("elasticloadbalancing")),
                "Action=DescribeLoadBalancers&Version=2099-01-01",
            ),
            route(None, "Action=DescribeLoadBalancers&Version=2012-06-01"),
            route(Some(&signed("monitoring")), "Action=ListMetrics&Version=2010-08-01"),
            route(Some(&signed("logs")), "Action=DescribeLogGroups&Version=2014-03-28"),
            route(None, "Action=ListMetrics"),
            route(None, "Action=GetCallerIdentity&Version=2011-06-15"),
            route(None, "Action=GetCallerIdentity"),
            route(None, "Action=Frobnicate"),
        ];
        assert_eq!(
            cases,
            [
                "ec2 2016-11-15",
                "elasticloadbalancing 2015-12-01",
                "elasticloadbalancing 2012-06-01",
                "unknown: elasticloadbalancing (API version 2099-01-01)",
                "elasticloadbalancing 2012-06-01",
                "rpc monitoring",
                "unknown: logs (API version 2014-03-28)",
                "rpc monitoring",
                "sts 2011-06-15",
                "sts 2011-06-15",
                "unknown: the action Frobnicate",
            ]
        );
    }
}
