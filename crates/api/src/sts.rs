//! STS: who the caller is, in the local account (`GetCallerIdentity`). Credentials are not
//! checked here; every caller is the account's root.

use aws_ids::Account;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const VERSION: &str = "2011-06-15";

const ACTIONS: &[&str] = &["GetCallerIdentity"];

/// Every action it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    ACTIONS
}

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// STS in the endpoint's registry.
pub struct Api(pub Account);

crate::registry::query_service!("sts", |api, action, _q, request_id| {
    call(&api.0, action, request_id)
});

fn call(account: &Account, action: &str, request_id: &str) -> Result<String, ApiError> {
    let account = &account.account_id;
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
