//! STS: who the caller is, in the local account (`GetCallerIdentity`). Credentials are not
//! checked here; every caller is the account's root.

use aws_ids::Account;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const VERSION: &str = "2011-06-15";

const ACTIONS: &[&str] = &["GetCallerIdentity"];

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// STS in the endpoint's registry.
pub struct Api(pub Account);

#[async_trait::async_trait]
impl crate::registry::QueryService for Api {
    fn signing_name(&self) -> &'static str {
        "sts"
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn handles(&self, action: &str) -> bool {
        handles(action)
    }

    async fn call(
        &self,
        action: &str,
        _q: &QueryInput,
        request_id: &str,
    ) -> Result<String, ApiError> {
        let account = &self.0.account_id;
        let mut x = XmlOut::new();
        x.open(&format!("{action}Response"), Some(XMLNS));
        match action {
            "GetCallerIdentity" => {
                x.open("GetCallerIdentityResult", None)
                    .text("Arn", &format!("arn:aws:iam::{account}:root"))
                    .text("UserId", account)
                    .text("Account", account)
                    .close();
            }
            other => return Err(ApiError::invalid_action(other)),
        }
        x.open("ResponseMetadata", None).text("RequestId", request_id).close();
        Ok(x.finish())
    }

    fn error_xml(&self, e: &ApiError, request_id: &str) -> String {
        e.to_xml(XMLNS, request_id)
    }
}
