//! STS in the local account: who the caller is (`GetCallerIdentity`: the account's root) and
//! `AssumeRole` of one of the account's roles, answered with temporary credentials that expire
//! on the region's clock. The credentials are not checked afterwards (a region that checks
//! signatures knows only the keys it was given).

use aws_ids::Account;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const VERSION: &str = "2011-06-15";

const ACTIONS: &[&str] = &["GetCallerIdentity", "AssumeRole"];

/// Every action it answers (COVERAGE.md).
pub fn actions() -> &'static [&'static str] {
    ACTIONS
}

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// STS in the endpoint's registry.
pub struct Api(pub Account, pub clock::Clock);

crate::registry::query_service!("sts", |api, action, q, request_id| {
    call(&api.0, &api.1, action, q, request_id)
});

fn call(
    account: &Account,
    clock: &clock::Clock,
    action: &str,
    q: &QueryInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let id = &account.account_id;
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    match action {
        "GetCallerIdentity" => {
            x.open("GetCallerIdentityResult", None)
                .text("Arn", &format!("arn:aws:iam::{id}:root"))
                .text("UserId", id)
                .text("Account", id)
                .close();
        }
        "AssumeRole" => {
            let role_arn = q.required("RoleArn").map_err(ApiError::validation)?;
            let session = q.required("RoleSessionName").map_err(ApiError::validation)?;
            let session_ok = (2..=64).contains(&session.len())
                && session.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
            if !session_ok {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
                )));
            }
            let role = role_arn
                .strip_prefix(&format!("arn:{}:iam::", account.partition))
                .and_then(|r| r.split_once(":role/"));
            let Some((role_account, role_path)) = role.filter(|(_, p)| !p.is_empty()) else {
                return Err(ApiError::validation(format!("{role_arn} is invalid")));
            };
            if role_account != id {
                return Err(ApiError::new(
                    "AccessDenied",
                    format!(
                        "User: arn:aws:iam::{id}:root is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                    ),
                    403,
                ));
            }
            let duration = match q.get("DurationSeconds") {
                None => 3600,
                Some(d) => match d.parse::<i64>() {
                    Ok(d) if (900..=43200).contains(&d) => d,
                    _ => {
                        return Err(ApiError::validation(format!(
                            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900 and less than or equal to 43200"
                        )));
                    }
                },
            };
            let expiration = clock
                .now()
                .checked_add(jiff::SignedDuration::from_secs(duration))
                .map(clock::iso8601)
                .unwrap_or_default();
            let role_name = role_path.rsplit('/').next().unwrap_or(role_path);
            let role_id = format!("AROA{}", aws_ids::upper_alnum(17));
            let secret: String = (0..40)
                .map(|i| {
                    let c = aws_ids::upper_alnum(1);
                    if i % 3 == 0 { c.to_ascii_lowercase() } else { c }
                })
                .collect();
            x.open("AssumeRoleResult", None);
            x.open("Credentials", None)
                .text("AccessKeyId", &format!("ASIA{}", aws_ids::upper_alnum(16)))
                .text("SecretAccessKey", &secret)
                .text("SessionToken", &format!("FwoGZXIvYXdzE{}", aws_ids::hex(48)))
                .text("Expiration", &expiration)
                .close();
            x.open("AssumedRoleUser", None)
                .text("AssumedRoleId", &format!("{role_id}:{session}"))
                .text(
                    "Arn",
                    &format!(
                        "arn:{}:sts::{id}:assumed-role/{role_name}/{session}",
                        account.partition
                    ),
                )
                .close();
            x.close();
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assume(pairs: &[(&str, &str)]) -> Result<crate::XmlNode, String> {
        let q = QueryInput::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let clock = clock::Clock::starting_at(1.0, "2026-01-01T00:00:00Z".parse().unwrap());
        call(&Account::default(), &clock, "AssumeRole", &q, "rid")
            .map(|xml| crate::XmlNode::parse(&xml).unwrap())
            .map_err(|e| e.code)
    }

    #[test]
    fn assume_role_of_the_local_account() {
        let id = Account::default().account_id;
        let role = format!("arn:aws:iam::{id}:role/app/deployer");
        let x =
            assume(&[("RoleArn", &role), ("RoleSessionName", "ci-1"), ("DurationSeconds", "900")])
                .unwrap();
        let r = x.child("AssumeRoleResult").unwrap();
        assert_eq!(r.get("Credentials/Expiration"), Some("2026-01-01T00:15:00.000Z"));
        assert!(r.get("Credentials/AccessKeyId").unwrap().starts_with("ASIA"));
        assert_eq!(r.get("Credentials/SecretAccessKey").map(str::len), Some(40));
        assert_eq!(
            r.get("AssumedRoleUser/Arn").map(str::to_string),
            Some(format!("arn:aws:sts::{id}:assumed-role/deployer/ci-1"))
        );
        assert!(r.get("AssumedRoleUser/AssumedRoleId").unwrap().ends_with(":ci-1"));
        let cases = [
            (vec![("RoleSessionName", "s")], "ValidationError"),
            (vec![("RoleArn", role.as_str()), ("RoleSessionName", "a b")], "ValidationError"),
            (
                vec![("RoleArn", "arn:aws:iam::999999999999:role/x"), ("RoleSessionName", "ss")],
                "AccessDenied",
            ),
            (vec![("RoleArn", "nope"), ("RoleSessionName", "ss")], "ValidationError"),
            (
                vec![
                    ("RoleArn", role.as_str()),
                    ("RoleSessionName", "ss"),
                    ("DurationSeconds", "60"),
                ],
                "ValidationError",
            ),
        ];
        for (pairs, code) in cases {
            assert_eq!(assume(&pairs).err().as_deref(), Some(code), "{pairs:?}");
        }
    }
}
