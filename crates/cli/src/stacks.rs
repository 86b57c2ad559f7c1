//! Client commands over the CloudFormation API: `deploy`, `diff`, `delete`, `status`, `events`,
//! `outputs`. They send the requests the aws CLI sends.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use api::{Client, ClientError, XmlNode};
use cfn_stacks::model::{ChangeSetStatus, StackStatus};
use serde_json::json;

use crate::OutputFormat;
use crate::common::{EndpointArgs, ParamArgs, read_template, stack_name_from};
use crate::events::{EventPrinter, EventView};
use crate::render::{say, table};

const VERSION: &str = "2010-05-15";
/// Cumulo's own commands accept every capability, as a local region has no IAM to protect.
const CAPABILITIES: &[&str] = &["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"];

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The template file.
    template: PathBuf,
    /// The stack (default: the template file's name).
    #[arg(long)]
    stack_name: Option<String>,
    #[command(flatten)]
    params: ParamArgs,
    /// Create the change set but do not execute it.
    #[arg(long)]
    no_execute_changeset: bool,
    /// Keep what was created if the creation fails (no rollback).
    #[arg(long)]
    disable_rollback: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    template: PathBuf,
    #[arg(long)]
    stack_name: Option<String>,
    #[command(flatten)]
    params: ParamArgs,
    /// Keep the change set (to execute it later with `aws cloudformation execute-change-set`).
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct StackArgs {
    /// The stack's name or id.
    stack_name: String,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// A stack's name or id (default: every stack).
    stack_name: Option<String>,
    #[command(flatten)]
    endpoint: EndpointArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

fn pairs(items: &[(&str, String)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

async fn describe_stack(client: &Client, name: &str) -> Result<Option<XmlNode>, ClientError> {
    match client.call(VERSION, "DescribeStacks", &pairs(&[("StackName", name.to_string())])).await {
        Ok(r) => Ok(r.members("Stacks").first().map(|n| (*n).clone())),
        Err(ClientError::Api { message, .. }) if message.contains("does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// A described stack's status.
fn stack_status(stack: &XmlNode) -> anyhow::Result<StackStatus> {
    Ok(stack.get("StackStatus").unwrap_or_default().parse()?)
}

fn change_set_params(
    name: &str,
    body: &str,
    params: &indexmap::IndexMap<String, String>,
    cs_name: &str,
    kind: &str,
) -> Vec<(String, String)> {
    let mut p = pairs(&[
        ("StackName", name.to_string()),
        ("TemplateBody", body.to_string()),
        ("ChangeSetName", cs_name.to_string()),
        ("ChangeSetType", kind.to_string()),
    ]);
    for (i, (k, v)) in params.iter().enumerate() {
        p.push((format!("Parameters.member.{}.ParameterKey", i + 1), k.clone()));
        p.push((format!("Parameters.member.{}.ParameterValue", i + 1), v.clone()));
    }
    for (i, c) in CAPABILITIES.iter().enumerate() {
        p.push((format!("Capabilities.member.{}", i + 1), c.to_string()));
    }
    p
}

/// Creates a change set and waits until it is ready; `None` when there is nothing to change.
async fn create_change_set(
    client: &Client,
    name: &str,
    body: &str,
    params: &indexmap::IndexMap<String, String>,
    kind: &str,
) -> anyhow::Result<Option<XmlNode>> {
    let cs_name = format!("cumulo-{}", aws_ids::hex(12));
    let created = client
        .call(VERSION, "CreateChangeSet", &change_set_params(name, body, params, &cs_name, kind))
        .await?;
    let id = created.get("Id").unwrap_or(&cs_name).to_string();
    for _ in 0..600 {
        let cs = client
            .call(
                VERSION,
                "DescribeChangeSet",
                &pairs(&[("ChangeSetName", id.clone()), ("StackName", name.to_string())]),
            )
            .await?;
        let status: ChangeSetStatus = cs.get("Status").unwrap_or_default().parse()?;
        match status {
            ChangeSetStatus::CreateComplete => return Ok(Some(cs)),
            ChangeSetStatus::Failed => {
                let reason = cs.get("StatusReason").unwrap_or_default().to_string();
                if reason.contains("didn't contain changes") || reason.contains("No updates") {
                    let _ = client
                        .call(VERSION, "DeleteChangeSet", &pairs(&[("ChangeSetName", id.clone())]))
                        .await;
                    return Ok(None);
                }
                bail!("change set failed: {reason}");
            }
            ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
        }
    }
    bail!("change set {id} was not ready in time")
}

/// Follows a stack's events until it reaches a terminal status; returns the final stack.
pub async fn follow(
    client: &Client,
    stack_id: &str,
    name: &str,
    verb: &str,
    total: usize,
    format: OutputFormat,
    since: &std::collections::HashSet<String>,
) -> anyhow::Result<XmlNode> {
    let mut printer = EventPrinter::new(format, name, verb, total);
    loop {
        // The status first, then the events: every event before a final status is shown.
        let stack = describe_stack(client, stack_id).await?.context("the stack disappeared")?;
        let status = stack_status(&stack)?;
        let events = client
            .call(VERSION, "DescribeStackEvents", &pairs(&[("StackName", stack_id.to_string())]))
            .await?;
        let mut views: Vec<EventView> = events
            .members("StackEvents")
            .into_iter()
            .map(EventView::from_xml)
            .collect::<anyhow::Result<_>>()?;
        views.reverse();
        for e in views.iter().filter(|e| !since.contains(&e.event_id)) {
            printer.show(e, verb);
        }
        if status.is_terminal() {
            printer.finish();
            return Ok(stack);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn event_ids(client: &Client, stack: &str) -> std::collections::HashSet<String> {
    match client
        .call(VERSION, "DescribeStackEvents", &pairs(&[("StackName", stack.to_string())]))
        .await
    {
        Ok(events) => events
            .members("StackEvents")
            .into_iter()
            .filter_map(|e| e.get("EventId").map(str::to_string))
            .collect(),
        Err(_) => Default::default(),
    }
}

pub async fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let body = read_template(&args.template)?;
    let name = args.stack_name.clone().unwrap_or_else(|| stack_name_from(&args.template));
    let params = args.params.values()?;
    let client = args.endpoint.client();
    let existing = describe_stack(&client, &name)
        .await?
        .filter(|s| stack_status(s).ok() != Some(StackStatus::ReviewInProgress));
    let kind = if existing.is_some() { "UPDATE" } else { "CREATE" };
    if args.output == OutputFormat::Table {
        eprintln!("Waiting for changeset to be created..");
    }
    let Some(cs) = create_change_set(&client, &name, &body, &params, kind).await? else {
        if args.output == OutputFormat::Table {
            say!("No changes to deploy. Stack {name} is up to date");
        } else {
            say!("{}", json!({"stackName": name, "changes": 0}));
        }
        return Ok(ExitCode::SUCCESS);
    };
    if args.output == OutputFormat::Table {
        print_changes(&cs);
    }
    let cs_id = cs.get("ChangeSetId").unwrap_or_default().to_string();
    let stack_id = cs.get("StackId").unwrap_or(&name).to_string();
    if args.no_execute_changeset {
        say!(
            "Change set {cs_id} created; execute it with: aws cloudformation execute-change-set --change-set-name {cs_id}"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let seen = event_ids(&client, &stack_id).await;
    client.call(VERSION, "ExecuteChangeSet", &pairs(&[("ChangeSetName", cs_id)])).await?;
    if args.output == OutputFormat::Table {
        eprintln!(
            "Waiting for stack {} to complete",
            if kind == "CREATE" { "create" } else { "update" }
        );
    }
    let total = cs.members("Changes").len();
    let verb =
        if kind == "CREATE" { format!("creating {name}") } else { format!("updating {name}") };
    let stack = follow(&client, &stack_id, &name, &verb, total, args.output, &seen).await?;
    let status = stack_status(&stack)?;
    let ok = matches!(status, StackStatus::CreateComplete | StackStatus::UpdateComplete);
    match args.output {
        OutputFormat::Table => {
            if ok {
                say!(
                    "Successfully {} stack - {name}",
                    if kind == "CREATE" { "created" } else { "updated" }
                );
                print_outputs(&stack, &endpoints(&client).await);
            } else {
                let reason = stack.get("StackStatusReason").unwrap_or_default();
                eprintln!("Stack {name} ended in {status}: {reason}");
            }
        }
        OutputFormat::Json => say!("{}", stack_json(&stack, &endpoints(&client).await)),
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let body = read_template(&args.template)?;
    let name = args.stack_name.clone().unwrap_or_else(|| stack_name_from(&args.template));
    let client = args.endpoint.client();
    let existing = describe_stack(&client, &name)
        .await?
        .filter(|s| stack_status(s).ok() != Some(StackStatus::ReviewInProgress));
    let kind = if existing.is_some() { "UPDATE" } else { "CREATE" };
    let Some(cs) = create_change_set(&client, &name, &body, &args.params.values()?, kind).await?
    else {
        say!("No changes: stack {name} matches {}", args.template.display());
        return Ok(ExitCode::SUCCESS);
    };
    match args.output {
        OutputFormat::Table => print_changes(&cs),
        OutputFormat::Json => say!("{}", change_set_json(&cs)),
    }
    let id = cs.get("ChangeSetId").unwrap_or_default().to_string();
    if args.keep {
        say!("Change set kept: {id}");
    } else {
        client.call(VERSION, "DeleteChangeSet", &pairs(&[("ChangeSetName", id)])).await?;
        if kind == "CREATE" {
            // The stack only existed to hold the change set.
            let _ = client.call(VERSION, "DeleteStack", &pairs(&[("StackName", name)])).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_changes(cs: &XmlNode) {
    let changes = cs.members("Changes");
    if changes.is_empty() {
        say!("No resource changes (outputs or parameters only).");
        return;
    }
    let mut t = table(["Action", "Logical ID", "Type", "Replacement", "Changed"]);
    for c in changes {
        let rc = c.path("ResourceChange").cloned().unwrap_or_default();
        let details: Vec<String> = rc
            .members("Details")
            .into_iter()
            .map(|d| {
                let name = d
                    .get("Target/Name")
                    .unwrap_or_else(|| d.get("Target/Attribute").unwrap_or_default());
                match d.get("Target/RequiresRecreation") {
                    Some("Always") => format!("{name} (replaces)"),
                    Some("Conditionally") => format!("{name} (may replace)"),
                    _ => name.to_string(),
                }
            })
            .collect();
        t.add_row([
            rc.get("Action").unwrap_or_default(),
            rc.get("LogicalResourceId").unwrap_or_default(),
            rc.get("ResourceType").unwrap_or_default(),
            rc.get("Replacement").unwrap_or(""),
            &details.join(", "),
        ]);
    }
    say!("{t}");
}

fn change_set_json(cs: &XmlNode) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = cs
        .members("Changes")
        .into_iter()
        .map(|c| {
            let rc = c.path("ResourceChange").cloned().unwrap_or_default();
            json!({
                "action": rc.get("Action"),
                "logicalResourceId": rc.get("LogicalResourceId"),
                "physicalResourceId": rc.get("PhysicalResourceId"),
                "resourceType": rc.get("ResourceType"),
                "replacement": rc.get("Replacement"),
                "details": rc.members("Details").into_iter().map(|d| json!({
                    "attribute": d.get("Target/Attribute"),
                    "name": d.get("Target/Name"),
                    "requiresRecreation": d.get("Target/RequiresRecreation"),
                    "evaluation": d.get("Evaluation"),
                    "changeSource": d.get("ChangeSource"),
                    "causingEntity": d.get("CausingEntity"),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"changeSetId": cs.get("ChangeSetId"), "stackName": cs.get("StackName"), "status": cs.get("Status"), "changes": changes})
}

/// Where the region's load balancers really answer (empty when it cannot tell).
async fn endpoints(client: &api::Client) -> Vec<elb::Endpoint> {
    let Ok(text) = client.get_text("/_cumulo/endpoints").await else { return Vec::new() };
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    list.iter()
        .filter_map(|e| {
            Some(elb::Endpoint {
                load_balancer: e.get("loadBalancer")?.as_str()?.to_string(),
                dns_name: e.get("dnsName")?.as_str()?.to_string(),
                port: u16::try_from(e.get("port")?.as_u64()?).ok()?,
                https: e.get("https")?.as_bool()?,
                addr: e.get("address")?.as_str()?.parse().ok()?,
            })
        })
        .collect()
}

/// Outputs as (key, value, description, export); load balancer URLs are made into addresses
/// that answer here.
fn outputs_of(
    stack: &XmlNode,
    endpoints: &[elb::Endpoint],
) -> Vec<(String, String, String, String)> {
    let mut outputs: Vec<(String, String, String, String)> = stack
        .members("Outputs")
        .into_iter()
        .map(|o| {
            let s = |p: &str| o.get(p).unwrap_or_default().to_string();
            (
                s("OutputKey"),
                elb::working_url(&s("OutputValue"), endpoints),
                s("Description"),
                s("ExportName"),
            )
        })
        .collect();
    // URLs first: that is what the user wants to open.
    outputs.sort_by_key(|(_, v, _, _)| !(v.starts_with("http://") || v.starts_with("https://")));
    outputs
}

pub fn print_outputs(stack: &XmlNode, endpoints: &[elb::Endpoint]) {
    let outputs = outputs_of(stack, endpoints);
    if outputs.is_empty() {
        return;
    }
    let mut t = table(["Output", "Value", "Description", "Export"]);
    for (k, v, d, e) in &outputs {
        t.add_row([k, v, d, e]);
    }
    say!("{t}");
}

fn stack_json(stack: &XmlNode, endpoints: &[elb::Endpoint]) -> serde_json::Value {
    json!({
        "stackName": stack.get("StackName"),
        "stackId": stack.get("StackId"),
        "status": stack.get("StackStatus"),
        "statusReason": stack.get("StackStatusReason"),
        "creationTime": stack.get("CreationTime"),
        "lastUpdatedTime": stack.get("LastUpdatedTime"),
        "parameters": stack.members("Parameters").into_iter().map(|p| json!({"key": p.get("ParameterKey"), "value": p.get("ParameterValue")})).collect::<Vec<_>>(),
        "outputs": outputs_of(stack, endpoints).into_iter().map(|(k, v, d, e)| json!({"key": k, "value": v, "description": d, "exportName": e})).collect::<Vec<_>>(),
    })
}

pub async fn delete(args: StackArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let Some(stack) = describe_stack(&client, &args.stack_name).await? else {
        bail!("Stack with id {} does not exist", args.stack_name);
    };
    let id = stack.get("StackId").unwrap_or_default().to_string();
    let seen = event_ids(&client, &id).await;
    client.call(VERSION, "DeleteStack", &pairs(&[("StackName", id.clone())])).await?;
    let total = client
        .call(VERSION, "DescribeStackResources", &pairs(&[("StackName", id.clone())]))
        .await
        .map(|r| r.members("StackResources").len())
        .unwrap_or(0);
    let done = follow(
        &client,
        &id,
        &args.stack_name,
        &format!("deleting {}", args.stack_name),
        total,
        args.output,
        &seen,
    )
    .await?;
    let status = stack_status(&done)?;
    match args.output {
        OutputFormat::Table if status == StackStatus::DeleteComplete => {
            say!("Successfully deleted stack - {}", args.stack_name)
        }
        OutputFormat::Table => eprintln!(
            "Stack {} ended in {status}: {}",
            args.stack_name,
            done.get("StackStatusReason").unwrap_or_default()
        ),
        OutputFormat::Json => say!("{}", stack_json(&done, &endpoints(&client).await)),
    }
    Ok(if status == StackStatus::DeleteComplete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let mut params = Vec::new();
    if let Some(n) = &args.stack_name {
        params.push(("StackName".to_string(), n.clone()));
    }
    let result = client.call(VERSION, "DescribeStacks", &params).await?;
    let stacks = result.members("Stacks");
    match args.output {
        OutputFormat::Json => {
            say!(
                "{}",
                serde_json::Value::Array({
                    let e = endpoints(&client).await;
                    stacks.iter().map(|s| stack_json(s, &e)).collect()
                })
            )
        }
        OutputFormat::Table => {
            if stacks.is_empty() {
                say!("No stacks.");
            }
            let mut t = table(["Stack", "Status", "Reason", "Created", "Updated"]);
            for s in &stacks {
                t.add_row([
                    s.get("StackName").unwrap_or_default(),
                    s.get("StackStatus").unwrap_or_default(),
                    s.get("StackStatusReason").unwrap_or_default(),
                    s.get("CreationTime").unwrap_or_default(),
                    s.get("LastUpdatedTime").unwrap_or_default(),
                ]);
            }
            if !stacks.is_empty() {
                say!("{t}");
            }
            if let (Some(_), [one]) = (&args.stack_name, stacks.as_slice()) {
                print_outputs(one, &endpoints(&client).await);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn events(args: StackArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let result = client
        .call(VERSION, "DescribeStackEvents", &pairs(&[("StackName", args.stack_name.clone())]))
        .await?;
    let mut events: Vec<EventView> = result
        .members("StackEvents")
        .into_iter()
        .map(EventView::from_xml)
        .collect::<anyhow::Result<_>>()?;
    events.reverse();
    match args.output {
        OutputFormat::Json => {
            say!("{}", serde_json::Value::Array(events.iter().map(EventView::to_json).collect()))
        }
        OutputFormat::Table => {
            let mut t = table(["Time", "Status", "Type", "Logical ID", "Physical ID", "Reason"]);
            for e in &events {
                t.add_row([
                    e.timestamp.as_str(),
                    e.status.as_str(),
                    &e.resource_type,
                    &e.logical_id,
                    e.physical_id.as_deref().unwrap_or(""),
                    e.reason.as_deref().unwrap_or(""),
                ]);
            }
            say!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn outputs(args: StackArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let Some(stack) = describe_stack(&client, &args.stack_name).await? else {
        bail!("Stack with id {} does not exist", args.stack_name);
    };
    match args.output {
        OutputFormat::Json => say!(
            "{}",
            serde_json::Value::Array(
                stack_json(&stack, &endpoints(&client).await)["outputs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            )
        ),
        OutputFormat::Table => {
            if outputs_of(&stack, &[]).is_empty() {
                say!("Stack {} has no outputs.", args.stack_name);
            }
            print_outputs(&stack, &endpoints(&client).await);
        }
    }
    Ok(ExitCode::SUCCESS)
}
