//! IAM's roles and instance profiles, recorded (permissions are not enforced): what
//! instances read their role from. The API and CloudFormation share these operations.

use super::*;

/// CreateRole.
#[derive(Clone, Debug, Default)]
pub struct CreateRole {
    pub name: String,
    pub path: Option<String>,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub tags: IndexMap<String, String>,
}

fn rejected(code: &'static str, message: impl Into<String>) -> Ec2Error {
    Ec2Error::Rejected { code, message: message.into() }
}

fn no_role(name: &str) -> Ec2Error {
    rejected("NoSuchEntity", format!("The role with name {name} cannot be found."))
}

fn no_profile(name: &str) -> Ec2Error {
    rejected("NoSuchEntity", format!("Instance Profile {name} cannot be found."))
}

/// A policy document must be JSON (IAM's `MalformedPolicyDocument`).
fn check_policy(document: &str) -> Result<(), Ec2Error> {
    match serde_json::from_str::<Json>(document) {
        Ok(Json::Object(_)) => Ok(()),
        _ => Err(rejected("MalformedPolicyDocument", "This policy contains invalid Json")),
    }
}

impl Ec2 {
    pub fn role(&self, name: &str) -> Result<Option<RoleRecord>, Ec2Error> {
        Ok(self.store.get(ROLES, name)?)
    }

    pub fn roles(&self) -> Result<Vec<RoleRecord>, Ec2Error> {
        Ok(self.store.list::<RoleRecord>(ROLES, "")?.into_iter().map(|(_, r)| r).collect())
    }

    fn existing_role(&self, name: &str) -> Result<RoleRecord, Ec2Error> {
        self.role(name)?.ok_or_else(|| no_role(name))
    }

    pub fn create_role(&self, request: CreateRole) -> Result<RoleRecord, Ec2Error> {
        if self.role(&request.name)?.is_some() {
            return Err(rejected(
                "EntityAlreadyExists",
                format!("Role with name {} already exists.", request.name),
            ));
        }
        check_policy(&request.assume_role_policy)?;
        let path = request.path.unwrap_or_else(|| "/".into());
        let account = &self.config.account.account_id;
        let record = RoleRecord {
            arn: format!("arn:aws:iam::{account}:role{path}{}", request.name),
            id: format!("AROA{}", aws_ids::upper_alnum(17)),
            name: request.name,
            path,
            assume_role_policy: request.assume_role_policy,
            description: request.description,
            created: clock::iso8601(self.clock.now()),
            attached: Vec::new(),
            inline: BTreeMap::new(),
            tags: request.tags,
        };
        self.store.put(ROLES, &record.name, &record)?;
        Ok(record)
    }

    /// Changes a role's record (attach, detach, inline policies, trust policy).
    pub fn change_role(
        &self,
        name: &str,
        change: impl FnOnce(&mut RoleRecord) -> Result<(), Ec2Error>,
    ) -> Result<RoleRecord, Ec2Error> {
        let mut role = self.existing_role(name)?;
        change(&mut role)?;
        self.store.put(ROLES, name, &role)?;
        Ok(role)
    }

    pub fn attach_role_policy(&self, name: &str, arn: &str) -> Result<RoleRecord, Ec2Error> {
        if !arn.starts_with("arn:aws:iam::") {
            return Err(rejected("InvalidInput", format!("ARN {arn} is not valid.")));
        }
        self.change_role(name, |r| {
            if !r.attached.iter().any(|a| a == arn) {
                r.attached.push(arn.to_string());
            }
            Ok(())
        })
    }

    pub fn detach_role_policy(&self, name: &str, arn: &str) -> Result<RoleRecord, Ec2Error> {
        self.change_role(name, |r| {
            let before = r.attached.len();
            r.attached.retain(|a| a != arn);
            if r.attached.len() == before {
                return Err(rejected("NoSuchEntity", format!("Policy {arn} was not found.")));
            }
            Ok(())
        })
    }

    pub fn put_role_policy(
        &self,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<RoleRecord, Ec2Error> {
        check_policy(document)?;
        self.change_role(name, |r| {
            r.inline.insert(policy.to_string(), document.to_string());
            Ok(())
        })
    }

    pub fn delete_role_policy(&self, name: &str, policy: &str) -> Result<RoleRecord, Ec2Error> {
        self.change_role(name, |r| {
            r.inline.remove(policy).map(|_| ()).ok_or_else(|| {
                rejected(
                    "NoSuchEntity",
                    format!("The role policy with name {policy} cannot be found."),
                )
            })
        })
    }

    pub fn update_assume_role_policy(
        &self,
        name: &str,
        document: &str,
    ) -> Result<RoleRecord, Ec2Error> {
        check_policy(document)?;
        self.change_role(name, |r| {
            r.assume_role_policy = document.to_string();
            Ok(())
        })
    }

    /// DeleteRole: once no policy is attached and no instance profile holds it.
    pub fn delete_role(&self, name: &str) -> Result<(), Ec2Error> {
        let role = self.existing_role(name)?;
        if !role.attached.is_empty() || !role.inline.is_empty() {
            return Err(rejected(
                "DeleteConflict",
                "Cannot delete entity, must detach all policies first.",
            ));
        }
        if self.instance_profiles()?.iter().any(|p| p.roles.contains(&role.name)) {
            return Err(rejected(
                "DeleteConflict",
                "Cannot delete entity, must remove roles from instance profile first.",
            ));
        }
        self.store.delete(ROLES, name)?;
        Ok(())
    }

    // === instance profiles ===

    pub fn instance_profile(&self, name: &str) -> Result<Option<InstanceProfileRecord>, Ec2Error> {
        Ok(self.store.get(INSTANCE_PROFILES, name)?)
    }

    pub fn instance_profiles(&self) -> Result<Vec<InstanceProfileRecord>, Ec2Error> {
        Ok(self
            .store
            .list::<InstanceProfileRecord>(INSTANCE_PROFILES, "")?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    pub fn create_instance_profile(
        &self,
        name: &str,
        path: Option<&str>,
        roles: Vec<String>,
    ) -> Result<InstanceProfileRecord, Ec2Error> {
        if self.instance_profile(name)?.is_some() {
            return Err(rejected(
                "EntityAlreadyExists",
                format!("Instance Profile {name} already exists."),
            ));
        }
        let path = path.unwrap_or("/").to_string();
        let account = &self.config.account.account_id;
        let record = InstanceProfileRecord {
            arn: format!("arn:aws:iam::{account}:instance-profile{path}{name}"),
            id: format!("AIPA{}", aws_ids::upper_alnum(17)),
            name: name.to_string(),
            roles,
            path,
            created: clock::iso8601(self.clock.now()),
        };
        self.store.put(INSTANCE_PROFILES, name, &record)?;
        Ok(record)
    }

    /// AddRoleToInstanceProfile: a profile holds one role.
    pub fn add_role_to_instance_profile(&self, profile: &str, role: &str) -> Result<(), Ec2Error> {
        let mut p = self.instance_profile(profile)?.ok_or_else(|| no_profile(profile))?;
        self.existing_role(role)?;
        if !p.roles.is_empty() {
            return Err(rejected(
                "LimitExceeded",
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
            ));
        }
        p.roles.push(role.to_string());
        self.store.put(INSTANCE_PROFILES, profile, &p)?;
        Ok(())
    }

    pub fn remove_role_from_instance_profile(
        &self,
        profile: &str,
        role: &str,
    ) -> Result<(), Ec2Error> {
        let mut p = self.instance_profile(profile)?.ok_or_else(|| no_profile(profile))?;
        if !p.roles.iter().any(|r| r == role) {
            return Err(no_role(role));
        }
        p.roles.retain(|r| r != role);
        self.store.put(INSTANCE_PROFILES, profile, &p)?;
        Ok(())
    }

    /// Empties a profile (CloudFormation's update and delete of a profile resource).
    pub fn delete_instance_profile_roles(&self, name: &str) -> Result<(), Ec2Error> {
        let mut p = self.instance_profile(name)?.ok_or_else(|| no_profile(name))?;
        p.roles.clear();
        self.store.put(INSTANCE_PROFILES, name, &p)?;
        Ok(())
    }

    /// DeleteInstanceProfile: once it holds no role.
    pub fn delete_instance_profile(&self, name: &str) -> Result<(), Ec2Error> {
        let p = self.instance_profile(name)?.ok_or_else(|| no_profile(name))?;
        if !p.roles.is_empty() {
            return Err(rejected(
                "DeleteConflict",
                "Cannot delete entity, must remove roles from instance profile first.",
            ));
        }
        self.store.delete(INSTANCE_PROFILES, name)?;
        Ok(())
    }
}
