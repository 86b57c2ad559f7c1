//! The AWS services the endpoint answers for, in one registry that the region fills: each
//! says its SigV4 signing name, its API version, the actions it answers and how its errors
//! look, so adding a service is one `Registry::add`.
//!
//! A request is routed by its credential scope (the signing name), then by `Version` (Classic
//! ELB, `2012-06-01`, and ELBv2, `2015-12-01`, share a signing name), then by its action.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, header};

use crate::error::ApiError;
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

/// Where a request goes.
pub enum Route<'a> {
    Service(&'a dyn QueryService),
    /// Signed for (or naming the version of) a service Cumulo does not speak yet.
    Unknown(String),
}

#[derive(Default)]
pub struct Registry {
    services: Vec<Arc<dyn QueryService>>,
}

impl Registry {
    pub fn add(&mut self, service: Arc<dyn QueryService>) -> &mut Registry {
        self.services.push(service);
        self
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
        let found = |pick: &dyn Fn(&dyn QueryService) -> bool| {
            self.services.iter().map(|s| s.as_ref()).find(|s| pick(*s))
        };
        if let Some(scope) = scope {
            let signed_for = |s: &dyn QueryService| s.signing_name() == scope;
            let hit = match version {
                Some(v) => found(&|s| signed_for(s) && s.version() == v),
                None => found(&signed_for),
            };
            return match hit {
                Some(s) => Route::Service(s),
                None => Route::Unknown(match version {
                    Some(v) => format!("{scope} (API version {v})"),
                    None => scope,
                }),
            };
        }
        if let Some(v) = version {
            return match found(&|s| s.version() == v) {
                Some(s) => Route::Service(s),
                None => Route::Unknown(format!("API version {v}")),
            };
        }
        let action = q.get("Action").unwrap_or("");
        match found(&|s| s.handles(action)) {
            Some(s) => Route::Service(s),
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

    #[test]
    fn routes_by_scope_then_version_then_action() {
        let mut registry = Registry::default();
        registry
            .add(Arc::new(Fake("elasticloadbalancing", "2015-12-01", &["DescribeTargetGroups"])))
            .add(Arc::new(Fake("elasticloadbalancing", "2012-06-01", &["DescribeInstanceHealth"])))
            .add(Arc::new(Fake("ec2", "2016-11-15", &["DescribeInstances"])))
            .add(Arc::new(Fake("sts", "2011-06-15", &["GetCallerIdentity"])));
        let route = |auth: Option<&str>, query: &str| {
            let mut headers = HeaderMap::new();
            if let Some(a) = auth {
                headers.insert(header::AUTHORIZATION, a.parse().unwrap());
            }
            match registry.route(&headers, &QueryInput::parse(query, b"")) {
                Route::Service(s) => format!("{} {}", s.signing_name(), s.version()),
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
                "unknown: monitoring (API version 2010-08-01)",
                "sts 2011-06-15",
                "sts 2011-06-15",
                "unknown: the action Frobnicate",
            ]
        );
    }
}
