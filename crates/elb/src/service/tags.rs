//! Tags of load balancers, target groups, listeners and rules (AddTags, RemoveTags,
//! DescribeTags), kept on their records.

use super::{Elb, ElbError};
use crate::model::*;

/// What an ARN names.
enum Tagged {
    LoadBalancer(LoadBalancerRecord),
    TargetGroup(TargetGroupRecord),
    Listener(ListenerRecord),
    Rule(RuleRecord),
}

impl Tagged {
    fn tags(&self) -> &Vec<Tag> {
        match self {
            Tagged::LoadBalancer(r) => &r.tags,
            Tagged::TargetGroup(r) => &r.tags,
            Tagged::Listener(r) => &r.tags,
            Tagged::Rule(r) => &r.tags,
        }
    }

    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        match self {
            Tagged::LoadBalancer(r) => &mut r.tags,
            Tagged::TargetGroup(r) => &mut r.tags,
            Tagged::Listener(r) => &mut r.tags,
            Tagged::Rule(r) => &mut r.tags,
        }
    }
}

/// At most 50 tags a resource; a key given twice in one call is refused.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<(), ElbError> {
    let mut keys = std::collections::HashSet::new();
    for t in tags {
        if !keys.insert(t.key.as_str()) {
            return Err(ElbError::api(
                "DuplicateTagKeys",
                format!("Tag key '{}' is given more than once", t.key),
            ));
        }
    }
    Ok(())
}

/// `tags` over `current`: a key already there takes the new value.
pub(crate) fn merge_tags(current: &mut Vec<Tag>, tags: &[Tag]) -> Result<(), ElbError> {
    check_tags(tags)?;
    for t in tags {
        match current.iter_mut().find(|c| c.key == t.key) {
            Some(c) => c.value = t.value.clone(),
            None => current.push(t.clone()),
        }
    }
    if current.len() > 50 {
        return Err(ElbError::api(
            "TooManyTags",
            "The quota for the number of tags (50) was reached",
        ));
    }
    Ok(())
}

impl Elb {
    fn tagged(&self, arn: &str) -> Result<Tagged, ElbError> {
        if arn.contains(":loadbalancer/") {
            self.load_balancer(arn)?.filter(|l| l.arn == arn).map(Tagged::LoadBalancer).ok_or_else(
                || {
                    ElbError::api(
                        "LoadBalancerNotFound",
                        format!("Load balancers '[{arn}]' not found"),
                    )
                },
            )
        } else if arn.contains(":targetgroup/") {
            self.target_group(arn)?.map(Tagged::TargetGroup).ok_or_else(|| {
                ElbError::api("TargetGroupNotFound", format!("Target groups '[{arn}]' not found"))
            })
        } else if arn.contains(":listener/") {
            self.listener(arn)?
                .map(Tagged::Listener)
                .ok_or_else(|| ElbError::api("ListenerNotFound", "One or more listeners not found"))
        } else if arn.contains(":listener-rule/") {
            self.rule(arn)?
                .map(Tagged::Rule)
                .ok_or_else(|| ElbError::api("RuleNotFound", "One or more rules not found"))
        } else {
            Err(ElbError::api("ValidationError", format!("'{arn}' is not a valid resource ARN")))
        }
    }

    fn store_tagged(&self, t: &Tagged) -> Result<(), ElbError> {
        match t {
            Tagged::LoadBalancer(r) => self.store.put(LOAD_BALANCERS, &r.arn, r)?,
            Tagged::TargetGroup(r) => self.store.put(TARGET_GROUPS, &r.arn, r)?,
            Tagged::Listener(r) => self.store.put(LISTENERS, &r.arn, r)?,
            Tagged::Rule(r) => self.store.put(RULES, &r.arn, r)?,
        }
        Ok(())
    }

    /// AddTags: every resource is looked up before any changes.
    pub fn add_tags(&self, arns: &[String], tags: &[Tag]) -> Result<(), ElbError> {
        let mut resources = Vec::new();
        for arn in arns {
            let mut t = self.tagged(arn)?;
            merge_tags(t.tags_mut(), tags)?;
            resources.push(t);
        }
        for t in &resources {
            self.store_tagged(t)?;
        }
        Ok(())
    }

    /// RemoveTags.
    pub fn remove_tags(&self, arns: &[String], keys: &[String]) -> Result<(), ElbError> {
        let mut resources = Vec::new();
        for arn in arns {
            let mut t = self.tagged(arn)?;
            t.tags_mut().retain(|tag| !keys.contains(&tag.key));
            resources.push(t);
        }
        for t in &resources {
            self.store_tagged(t)?;
        }
        Ok(())
    }

    /// DescribeTags: each resource's tags, in the order asked.
    pub fn describe_tags(&self, arns: &[String]) -> Result<Vec<(String, Vec<Tag>)>, ElbError> {
        arns.iter().map(|arn| Ok((arn.clone(), self.tagged(arn)?.tags().clone()))).collect()
    }
}
