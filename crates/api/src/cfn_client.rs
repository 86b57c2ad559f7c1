//! CloudFormation calls of the client, with typed results: what Cumulo's own commands send and
//! read, so that they know no element names.

use cfn_stacks::model::{ChangeSetStatus, EventStatus, StackStatus};

use crate::client::{Client, ClientError};
use crate::cloudformation::VERSION;
use crate::xml::XmlNode;

/// A stack as DescribeStacks gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack {
    pub stack_id: String,
    pub name: String,
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub creation_time: String,
    pub last_updated_time: Option<String>,
    pub parameters: Vec<(String, String)>,
    pub outputs: Vec<Output>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub key: String,
    pub value: String,
    pub description: Option<String>,
    pub export_name: Option<String>,
}

/// A stack event as DescribeStackEvents gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub stack_id: String,
    pub timestamp: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: EventStatus,
    pub reason: Option<String>,
}

impl From<&cfn_stacks::model::StackEvent> for Event {
    fn from(e: &cfn_stacks::model::StackEvent) -> Event {
        Event {
            event_id: e.event_id.clone(),
            stack_id: e.stack_id.clone(),
            timestamp: e.timestamp.clone(),
            logical_id: e.logical_id.clone(),
            physical_id: e.physical_id.clone(),
            resource_type: e.resource_type.clone(),
            status: e.status,
            reason: e.status_reason.clone(),
        }
    }
}

/// A change set as DescribeChangeSet gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeSet {
    pub change_set_id: String,
    pub stack_id: String,
    pub stack_name: String,
    pub status: ChangeSetStatus,
    pub status_reason: Option<String>,
    pub changes: Vec<Change>,
}

/// One resource change of a change set.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub action: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub replacement: Option<String>,
    pub details: Vec<ChangeDetail>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChangeDetail {
    pub attribute: String,
    pub name: Option<String>,
    pub requires_recreation: Option<String>,
    pub evaluation: Option<String>,
    pub change_source: Option<String>,
    pub causing_entity: Option<String>,
}

/// What CreateChangeSet takes.
#[derive(Clone, Debug, Default)]
pub struct ChangeSetRequest<'a> {
    pub stack_name: &'a str,
    pub template_body: &'a str,
    pub change_set_name: &'a str,
    /// CREATE or UPDATE.
    pub change_set_type: &'a str,
    pub parameters: Vec<(String, String)>,
    pub capabilities: Vec<String>,
}

impl Client {
    async fn cfn(&self, action: &str, params: &[(&str, &str)]) -> Result<XmlNode, ClientError> {
        let params: Vec<(String, String)> =
            params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.call(VERSION, action, &params).await
    }

    /// DescribeStacks: one stack, or every stack that is not deleted.
    pub async fn describe_stacks(&self, name: Option<&str>) -> Result<Vec<Stack>, ClientError> {
        let params: Vec<(&str, &str)> = name.map(|n| ("StackName", n)).into_iter().collect();
        let result = self.cfn("DescribeStacks", &params).await?;
        result.members("Stacks").into_iter().map(|s| self.stack(s)).collect()
    }

    /// One stack; `None` when it does not exist.
    pub async fn describe_stack(&self, name: &str) -> Result<Option<Stack>, ClientError> {
        match self.describe_stacks(Some(name)).await {
            Ok(stacks) => Ok(stacks.into_iter().next()),
            Err(ClientError::Api { message, .. }) if message.contains("does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// DescribeStackEvents: newest first.
    pub async fn stack_events(&self, name: &str) -> Result<Vec<Event>, ClientError> {
        let result = self.cfn("DescribeStackEvents", &[("StackName", name)]).await?;
        result.members("StackEvents").into_iter().map(|e| self.event(e)).collect()
    }

    /// How many resources DescribeStackResources lists.
    pub async fn stack_resource_count(&self, name: &str) -> Result<usize, ClientError> {
        let result = self.cfn("DescribeStackResources", &[("StackName", name)]).await?;
        Ok(result.members("StackResources").len())
    }

    pub async fn delete_stack(&self, name: &str) -> Result<(), ClientError> {
        self.cfn("DeleteStack", &[("StackName", name)]).await.map(drop)
    }

    /// CreateChangeSet; returns the change set's id.
    pub async fn create_change_set(
        &self,
        request: &ChangeSetRequest<'_>,
    ) -> Result<String, ClientError> {
        let mut params = vec![
            ("StackName".to_string(), request.stack_name.to_string()),
            ("TemplateBody".to_string(), request.template_body.to_string()),
            ("ChangeSetName".to_string(), request.change_set_name.to_string()),
            ("ChangeSetType".to_string(), request.change_set_type.to_string()),
        ];
        for (i, (k, v)) in request.parameters.iter().enumerate() {
            params.push((format!("Parameters.member.{}.ParameterKey", i + 1), k.clone()));
            params.push((format!("Parameters.member.{}.ParameterValue", i + 1), v.clone()));
        }
        for (i, c) in request.capabilities.iter().enumerate() {
            params.push((format!("Capabilities.member.{}", i + 1), c.clone()));
        }
        let created = self.call(VERSION, "CreateChangeSet", &params).await?;
        Ok(created.get("Id").unwrap_or(request.change_set_name).to_string())
    }

    pub async fn describe_change_set(
        &self,
        change_set: &str,
        stack_name: &str,
    ) -> Result<ChangeSet, ClientError> {
        let cs = self
            .cfn("DescribeChangeSet", &[("ChangeSetName", change_set), ("StackName", stack_name)])
            .await?;
        let text = |p: &str| cs.get(p).unwrap_or_default().to_string();
        Ok(ChangeSet {
            change_set_id: text("ChangeSetId"),
            stack_id: text("StackId"),
            stack_name: text("StackName"),
            status: self.parse(cs.get("Status").unwrap_or_default())?,
            status_reason: cs.get("StatusReason").map(str::to_string),
            changes: cs
                .members("Changes")
                .into_iter()
                .map(|c| {
                    let rc = c.path("ResourceChange").cloned().unwrap_or_default();
                    let text = |p: &str| rc.get(p).unwrap_or_default().to_string();
                    Change {
                        action: text("Action"),
                        logical_id: text("LogicalResourceId"),
                        physical_id: rc.get("PhysicalResourceId").map(str::to_string),
                        resource_type: text("ResourceType"),
                        replacement: rc.get("Replacement").map(str::to_string),
                        details: rc
                            .members("Details")
                            .into_iter()
                            .map(|d| {
                                let opt = |p: &str| d.get(p).map(str::to_string);
                                ChangeDetail {
                                    attribute: d
                                        .get("Target/Attribute")
                                        .unwrap_or_default()
                                        .to_string(),
                                    name: opt("Target/Name"),
                                    requires_recreation: opt("Target/RequiresRecreation"),
                                    evaluation: opt("Evaluation"),
                                    change_source: opt("ChangeSource"),
                                    causing_entity: opt("CausingEntity"),
                                }
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
    }

    pub async fn execute_change_set(&self, change_set: &str) -> Result<(), ClientError> {
        self.cfn("ExecuteChangeSet", &[("ChangeSetName", change_set)]).await.map(drop)
    }

    pub async fn delete_change_set(&self, change_set: &str) -> Result<(), ClientError> {
        self.cfn("DeleteChangeSet", &[("ChangeSetName", change_set)]).await.map(drop)
    }

    fn stack(&self, s: &XmlNode) -> Result<Stack, ClientError> {
        let text = |p: &str| s.get(p).unwrap_or_default().to_string();
        Ok(Stack {
            stack_id: text("StackId"),
            name: text("StackName"),
            status: self.parse(s.get("StackStatus").unwrap_or_default())?,
            status_reason: s.get("StackStatusReason").map(str::to_string),
            creation_time: text("CreationTime"),
            last_updated_time: s.get("LastUpdatedTime").map(str::to_string),
            parameters: s
                .members("Parameters")
                .into_iter()
                .map(|p| {
                    let text = |k: &str| p.get(k).unwrap_or_default().to_string();
                    (text("ParameterKey"), text("ParameterValue"))
                })
                .collect(),
            outputs: s
                .members("Outputs")
                .into_iter()
                .map(|o| Output {
                    key: o.get("OutputKey").unwrap_or_default().to_string(),
                    value: o.get("OutputValue").unwrap_or_default().to_string(),
                    description: o.get("Description").map(str::to_string),
                    export_name: o.get("ExportName").map(str::to_string),
                })
                .collect(),
        })
    }

    fn event(&self, e: &XmlNode) -> Result<Event, ClientError> {
        let text = |p: &str| e.get(p).unwrap_or_default().to_string();
        // The stack's own events (its physical id is the stack id) carry stack statuses.
        let of_stack = e.get("PhysicalResourceId").is_some()
            && e.get("PhysicalResourceId") == e.get("StackId");
        let status = EventStatus::parse(e.get("ResourceStatus").unwrap_or_default(), of_stack)
            .map_err(|u| self.bad(u.to_string()))?;
        Ok(Event {
            event_id: text("EventId"),
            stack_id: text("StackId"),
            timestamp: text("Timestamp"),
            logical_id: text("LogicalResourceId"),
            physical_id: e.get("PhysicalResourceId").map(str::to_string),
            resource_type: text("ResourceType"),
            status,
            reason: e.get("ResourceStatusReason").map(str::to_string),
        })
    }

    fn parse<T: std::str::FromStr<Err = cfn_stacks::model::UnknownStatus>>(
        &self,
        text: &str,
    ) -> Result<T, ClientError> {
        text.parse().map_err(|u: cfn_stacks::model::UnknownStatus| self.bad(u.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use cfn_stacks::model::ResourceStatus;

    use super::*;

    #[test]
    fn events_carry_the_stack_or_the_resource_status() {
        let client = Client::new("http://127.0.0.1:1");
        let event = |physical: &str| {
            let xml = format!(
                "<member><StackId>arn:s</StackId><EventId>e</EventId><LogicalResourceId>s</LogicalResourceId><PhysicalResourceId>{physical}</PhysicalResourceId><ResourceType>AWS::CloudFormation::Stack</ResourceType><Timestamp>t</Timestamp><ResourceStatus>CREATE_COMPLETE</ResourceStatus></member>"
            );
            client.event(&XmlNode::parse(&xml).unwrap()).unwrap()
        };
        assert_eq!(event("arn:s").status, EventStatus::Stack(StackStatus::CreateComplete));
        assert_eq!(
            event("arn:child").status,
            EventStatus::Resource(ResourceStatus::CreateComplete)
        );
        let bad = XmlNode::parse("<member><StackStatus>DONE</StackStatus></member>").unwrap();
        assert!(matches!(client.stack(&bad), Err(ClientError::Protocol { .. })));
    }
}
