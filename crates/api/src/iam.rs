//! IAM (Query, version 2010-05-08): roles with their trust, managed and inline policies, and
//! instance profiles, recorded in the local account (what instances read their role from;
//! permissions are not enforced, so `PassRole` is not checked). Policy documents go out
//! URL-encoded, as IAM sends them.

use std::sync::Arc;

use ec2::model::{InstanceProfileRecord, RoleRecord};
use ec2::{CreateRole, Ec2};
use indexmap::IndexMap;

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const VERSION: &str = "2010-05-08";

const ACTIONS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "CreateInstanceProfile",
    "GetInstanceProfile",
    "ListInstanceProfiles",
    "ListInstanceProfilesForRole",
    "DeleteInstanceProfile",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
];

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

pub fn actions() -> &'static [&'static str] {
    ACTIONS
}

/// IAM in the endpoint's registry (its records live with EC2's, which reads them at launch).
pub struct Api(pub Arc<Ec2>);

crate::registry::query_service!("iam", |api, action, q, request_id| {
    call(&api.0, action, q, request_id)
});

fn encode_policy(document: &str) -> String {
    form_urlencoded::byte_serialize(document.as_bytes()).collect::<String>().replace('+', "%20")
}

fn write_role(x: &mut XmlOut, r: &RoleRecord) {
    x.text("Path", &r.path)
        .text("RoleName", &r.name)
        .text("RoleId", &r.id)
        .text("Arn", &r.arn)
        .text("CreateDate", &r.created)
        .text("AssumeRolePolicyDocument", &encode_policy(&r.assume_role_policy))
        .opt("Description", r.description.as_deref())
        .text("MaxSessionDuration", "3600");
    if !r.tags.is_empty() {
        x.members("Tags", &r.tags, |x, (k, v)| {
            x.text("Key", k).text("Value", v);
        });
    }
}

fn write_profile(x: &mut XmlOut, ec2: &Ec2, p: &InstanceProfileRecord) -> Result<(), ApiError> {
    x.text("Path", &p.path)
        .text("InstanceProfileName", &p.name)
        .text("InstanceProfileId", &p.id)
        .text("Arn", &p.arn)
        .text("CreateDate", &p.created);
    x.open("Roles", None);
    for name in &p.roles {
        if let Some(role) = ec2.role(name)? {
            x.open("member", None);
            write_role(x, &role);
            x.close();
        }
    }
    x.close();
    Ok(())
}

/// A role by name, or IAM's NoSuchEntity.
fn existing_role(ec2: &Ec2, name: &str) -> Result<RoleRecord, ApiError> {
    ec2.role(name)?.ok_or_else(|| {
        ApiError::service("NoSuchEntity", format!("The role with name {name} cannot be found."))
    })
}

/// IAM's statuses: 404 for what is not there, 409 for conflicts.
fn call(ec2: &Ec2, action: &str, q: &QueryInput, request_id: &str) -> Result<String, ApiError> {
    run(ec2, action, q, request_id).map_err(|mut e| {
        e.status = match e.code.as_str() {
            "NoSuchEntity" => 404,
            "EntityAlreadyExists" | "DeleteConflict" | "LimitExceeded" => 409,
            _ => e.status,
        };
        e
    })
}

fn run(ec2: &Ec2, action: &str, q: &QueryInput, request_id: &str) -> Result<String, ApiError> {
    let required = |k: &str| q.required(k).map(str::to_string).map_err(ApiError::validation);
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    x.open(&format!("{action}Result"), None);
    match action {
        "CreateRole" => {
            let tags: IndexMap<String, String> = q
                .structs("Tags")
                .into_iter()
                .filter_map(|t| {
                    Some((t.get("Key")?.clone(), t.get("Value").cloned().unwrap_or_default()))
                })
                .collect();
            let role = ec2.create_role(CreateRole {
                name: required("RoleName")?,
                path: q.get("Path").map(str::to_string),
                assume_role_policy: required("AssumeRolePolicyDocument")?,
                description: q.get("Description").map(str::to_string),
                tags,
            })?;
            x.open("Role", None);
            write_role(&mut x, &role);
            x.close();
        }
        "GetRole" => {
            let name = required("RoleName")?;
            let role = existing_role(ec2, &name)?;
            x.open("Role", None);
            write_role(&mut x, &role);
            x.close();
        }
        "ListRoles" => {
            let prefix = q.get("PathPrefix").unwrap_or("/");
            let mut roles = ec2.roles()?;
            roles.retain(|r| r.path.starts_with(prefix));
            roles.sort_by(|a, b| a.name.cmp(&b.name));
            x.members("Roles", &roles, write_role);
            x.bool("IsTruncated", false);
        }
        "DeleteRole" => ec2.delete_role(&required("RoleName")?)?,
        "UpdateAssumeRolePolicy" => {
            ec2.update_assume_role_policy(&required("RoleName")?, &required("PolicyDocument")?)?;
        }
        "AttachRolePolicy" => {
            ec2.attach_role_policy(&required("RoleName")?, &required("PolicyArn")?)?;
        }
        "DetachRolePolicy" => {
            ec2.detach_role_policy(&required("RoleName")?, &required("PolicyArn")?)?;
        }
        "ListAttachedRolePolicies" => {
            let name = required("RoleName")?;
            let role = existing_role(ec2, &name)?;
            x.members("AttachedPolicies", &role.attached, |x, arn| {
                let policy = arn.rsplit('/').next().unwrap_or(arn);
                x.text("PolicyName", policy).text("PolicyArn", arn);
            });
            x.bool("IsTruncated", false);
        }
        "PutRolePolicy" => {
            ec2.put_role_policy(
                &required("RoleName")?,
                &required("PolicyName")?,
                &required("PolicyDocument")?,
            )?;
        }
        "GetRolePolicy" => {
            let (name, policy) = (required("RoleName")?, required("PolicyName")?);
            let role = existing_role(ec2, &name)?;
            let document = role.inline.get(&policy).ok_or_else(|| {
                ApiError::service(
                    "NoSuchEntity",
                    format!("The role policy with name {policy} cannot be found."),
                )
            })?;
            x.text("RoleName", &name)
                .text("PolicyName", &policy)
                .text("PolicyDocument", &encode_policy(document));
        }
        "DeleteRolePolicy" => {
            ec2.delete_role_policy(&required("RoleName")?, &required("PolicyName")?)?;
        }
        "ListRolePolicies" => {
            let name = required("RoleName")?;
            let role = existing_role(ec2, &name)?;
            x.strings("PolicyNames", role.inline.keys());
            x.bool("IsTruncated", false);
        }
        "CreateInstanceProfile" => {
            let profile = ec2.create_instance_profile(
                &required("InstanceProfileName")?,
                q.get("Path"),
                Vec::new(),
            )?;
            x.open("InstanceProfile", None);
            write_profile(&mut x, ec2, &profile)?;
            x.close();
        }
        "GetInstanceProfile" => {
            let name = required("InstanceProfileName")?;
            let profile = ec2.instance_profile(&name)?.ok_or_else(|| {
                ApiError::service(
                    "NoSuchEntity",
                    format!("Instance Profile {name} cannot be found."),
                )
            })?;
            x.open("InstanceProfile", None);
            write_profile(&mut x, ec2, &profile)?;
            x.close();
        }
        "ListInstanceProfiles" | "ListInstanceProfilesForRole" => {
            let role = q.get("RoleName");
            let mut profiles = ec2.instance_profiles()?;
            if let Some(role) = role {
                if ec2.role(role)?.is_none() {
                    return Err(ApiError::service(
                        "NoSuchEntity",
                        format!("The role with name {role} cannot be found."),
                    ));
                }
                profiles.retain(|p| p.roles.iter().any(|r| r == role));
            }
            profiles.sort_by(|a, b| a.name.cmp(&b.name));
            x.open("InstanceProfiles", None);
            for p in &profiles {
                x.open("member", None);
                write_profile(&mut x, ec2, p)?;
                x.close();
            }
            x.close();
            x.bool("IsTruncated", false);
        }
        "DeleteInstanceProfile" => {
            ec2.delete_instance_profile(&required("InstanceProfileName")?)?
        }
        "AddRoleToInstanceProfile" => {
            ec2.add_role_to_instance_profile(
                &required("InstanceProfileName")?,
                &required("RoleName")?,
            )?;
        }
        "RemoveRoleFromInstanceProfile" => {
            ec2.remove_role_from_instance_profile(
                &required("InstanceProfileName")?,
                &required("RoleName")?,
            )?;
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    x.close();
    x.open("ResponseMetadata", None).text("RequestId", request_id).close();
    Ok(x.finish())
}
