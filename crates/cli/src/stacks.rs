//! Client commands over the CloudFormation API: `deploy`, `diff`, `delete`, `status`, `events`,
//! `outputs`. They send the requests the aws CLI sends.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use api::Client;
use api::cfn_client::{ChangeSet, ChangeSetRequest, Stack};
use cfn_stacks::model::{ChangeSetStatus, StackStatus};
use serde_json::json;

use crate::OutputFormat;
use crate::common::{EndpointArgs, ParamArgs, read_template, stack_name_from};
use crate::events::{EventPrinter, EventView};
use crate::render::{say, table};

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

/// Creates a change set and waits until it is ready; `None` when there is nothing to change.
async fn create_change_set(
    client: &Client,
    name: &str,
    body: &str,
    params: &indexmap::IndexMap<String, String>,
    kind: &str,
) -> anyhow::Result<Option<ChangeSet>> {
    let cs_name = format!("cumulo-{}", aws_ids::hex(12));
    let id = client
        .create_change_set(&ChangeSetRequest {
            stack_name: name,
            template_body: body,
            change_set_name: &cs_name,
            change_set_type: kind,
            parameters: params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        })
        .await?;
    for _ in 0..600 {
        let cs = client.describe_change_set(&id, name).await?;
        match cs.status {
            ChangeSetStatus::CreateComplete => return Ok(Some(cs)),
            ChangeSetStatus::Failed => {
                let reason = cs.status_reason.unwrap_or_default();
                if reason.contains("didn't contain changes") || reason.contains("No updates") {
                    let _ = client.delete_change_set(&id).await;
                    return Ok(None);
                }
                bail!("change set failed: {reason}");
            }
            ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress => {
                // Real time: a client polling a region over HTTP does not share its clock.
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
) -> anyhow::Result<Stack> {
    let mut printer = EventPrinter::new(format, name, verb, total);
    loop {
        // The status first, then the events: every event before a final status is shown.
        let stack = client.describe_stack(stack_id).await?.context("the stack disappeared")?;
        let mut views: Vec<EventView> = client.stack_events(stack_id).await?;
        views.reverse();
        for e in views.iter().filter(|e| !since.contains(&e.event_id)) {
            printer.show(e, verb);
        }
        if stack.status.is_terminal() {
            printer.finish();
            return Ok(stack);
        }
        // Real time: a client polling a region over HTTP does not share its clock.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn event_ids(client: &Client, stack: &str) -> std::collections::HashSet<String> {
    match client.stack_events(stack).await {
        Ok(events) => events.into_iter().map(|e| e.event_id).collect(),
        Err(_) => Default::default(),
    }
}

pub async fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let body = read_template(&args.template)?;
    let name = args.stack_name.clone().unwrap_or_else(|| stack_name_from(&args.template));
    let params = args.params.values()?;
    let client = args.endpoint.client();
    let existing =
        client.describe_stack(&name).await?.filter(|s| s.status != StackStatus::ReviewInProgress);
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
    let cs_id = cs.change_set_id.clone();
    let stack_id = if cs.stack_id.is_empty() { name.clone() } else { cs.stack_id.clone() };
    if args.no_execute_changeset {
        say!(
            "Change set {cs_id} created; execute it with: aws cloudformation execute-change-set --change-set-name {cs_id}"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let seen = event_ids(&client, &stack_id).await;
    client.execute_change_set(&cs_id).await?;
    if args.output == OutputFormat::Table {
        eprintln!(
            "Waiting for stack {} to complete",
            if kind == "CREATE" { "create" } else { "update" }
        );
    }
    let total = cs.changes.len();
    let verb =
        if kind == "CREATE" { format!("creating {name}") } else { format!("updating {name}") };
    let stack = follow(&client, &stack_id, &name, &verb, total, args.output, &seen).await?;
    let status = stack.status;
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
                let reason = match stack.status_reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None => first_failure(&client, &stack_id).await,
                };
                eprintln!("Stack {name} ended in {status}: {reason}");
            }
        }
        OutputFormat::Json => say!("{}", stack_json(&stack, &endpoints(&client).await)),
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What made an operation fail: the first resource that failed, and why (a rolled-back
/// stack's own status carries no reason).
async fn first_failure(client: &api::Client, stack_id: &str) -> String {
    let Ok(events) = client.stack_events(stack_id).await else { return String::new() };
    events
        .iter()
        .rev()
        .find(|e| {
            e.status.as_str().ends_with("_FAILED")
                && e.reason
                    .as_deref()
                    .is_some_and(|r| !r.is_empty() && r != "Resource creation cancelled")
        })
        .map(|e| {
            format!(
                "{} ({}) failed: {}",
                e.logical_id,
                e.resource_type,
                e.reason.as_deref().unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

pub async fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let body = read_template(&args.template)?;
    let name = args.stack_name.clone().unwrap_or_else(|| stack_name_from(&args.template));
    let client = args.endpoint.client();
    let existing =
        client.describe_stack(&name).await?.filter(|s| s.status != StackStatus::ReviewInProgress);
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
    let id = &cs.change_set_id;
    if args.keep {
        say!("Change set kept: {id}");
    } else {
        client.delete_change_set(id).await?;
        if kind == "CREATE" {
            // The stack only existed to hold the change set.
            let _ = client.delete_stack(&name).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_changes(cs: &ChangeSet) {
    if cs.changes.is_empty() {
        say!("No resource changes (outputs or parameters only).");
        return;
    }
    let mut t = table(["Action", "Logical ID", "Type", "Replacement", "Changed"]);
    for c in &cs.changes {
        let details: Vec<String> = c
            .details
            .iter()
            .map(|d| {
                let name = d.name.as_deref().unwrap_or(&d.attribute);
                match d.requires_recreation.as_deref() {
                    Some("Always") => format!("{name} (replaces)"),
                    Some("Conditionally") => format!("{name} (may replace)"),
                    _ => name.to_string(),
                }
            })
            .collect();
        t.add_row([
            c.action.as_str(),
            &c.logical_id,
            &c.resource_type,
            c.replacement.as_deref().unwrap_or(""),
            &details.join(", "),
        ]);
    }
    say!("{t}");
}

fn change_set_json(cs: &ChangeSet) -> serde_json::Value {
    let changes: Vec<serde_json::Value> = cs
        .changes
        .iter()
        .map(|c| {
            json!({
                "action": c.action,
                "logicalResourceId": c.logical_id,
                "physicalResourceId": c.physical_id,
                "resourceType": c.resource_type,
                "replacement": c.replacement,
                "details": c.details.iter().map(|d| json!({
                    "attribute": d.attribute,
                    "name": d.name,
                    "requiresRecreation": d.requires_recreation,
                    "evaluation": d.evaluation,
                    "changeSource": d.change_source,
                    "causingEntity": d.causing_entity,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"changeSetId": cs.change_set_id, "stackName": cs.stack_name, "status": cs.status.as_str(), "changes": changes})
}

/// Where the region's load balancers really answer (empty when it cannot tell).
async fn endpoints(client: &api::Client) -> Vec<elb::Endpoint> {
    client.endpoints().await.unwrap_or_default()
}

/// Outputs as (key, value, description, export); load balancer URLs are made into addresses
/// that answer here.
fn outputs_of(stack: &Stack, endpoints: &[elb::Endpoint]) -> Vec<(String, String, String, String)> {
    let mut outputs: Vec<(String, String, String, String)> = stack
        .outputs
        .iter()
        .map(|o| {
            (
                o.key.clone(),
                elb::working_url(&o.value, endpoints),
                o.description.clone().unwrap_or_default(),
                o.export_name.clone().unwrap_or_default(),
            )
        })
        .collect();
    // URLs first: that is what the user wants to open.
    outputs.sort_by_key(|(_, v, _, _)| !(v.starts_with("http://") || v.starts_with("https://")));
    outputs
}

pub fn print_outputs(stack: &Stack, endpoints: &[elb::Endpoint]) {
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

fn stack_json(stack: &Stack, endpoints: &[elb::Endpoint]) -> serde_json::Value {
    json!({
        "stackName": stack.name,
        "stackId": stack.stack_id,
        "status": stack.status.as_str(),
        "statusReason": stack.status_reason,
        "creationTime": stack.creation_time,
        "lastUpdatedTime": stack.last_updated_time,
        "parameters": stack.parameters.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "outputs": outputs_of(stack, endpoints).into_iter().map(|(k, v, d, e)| json!({"key": k, "value": v, "description": d, "exportName": e})).collect::<Vec<_>>(),
    })
}

pub async fn delete(args: StackArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let Some(stack) = client.describe_stack(&args.stack_name).await? else {
        bail!("Stack with id {} does not exist", args.stack_name);
    };
    let id = stack.stack_id;
    let seen = event_ids(&client, &id).await;
    client.delete_stack(&id).await?;
    let total = client.stack_resource_count(&id).await.unwrap_or(0);
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
    let status = done.status;
    match args.output {
        OutputFormat::Table if status == StackStatus::DeleteComplete => {
            say!("Successfully deleted stack - {}", args.stack_name)
        }
        OutputFormat::Table => eprintln!(
            "Stack {} ended in {status}: {}",
            args.stack_name,
            done.status_reason.as_deref().unwrap_or_default()
        ),
        OutputFormat::Json => say!("{}", stack_json(&done, &endpoints(&client).await)),
    }
    Ok(if status == StackStatus::DeleteComplete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.endpoint.client();
    let stacks = client.describe_stacks(args.stack_name.as_deref()).await?;
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
                    s.name.as_str(),
                    s.status.as_str(),
                    s.status_reason.as_deref().unwrap_or_default(),
                    &s.creation_time,
                    s.last_updated_time.as_deref().unwrap_or_default(),
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
    let mut events: Vec<EventView> = client.stack_events(&args.stack_name).await?;
    events.reverse();
    match args.output {
        OutputFormat::Json => {
            say!(
                "{}",
                serde_json::Value::Array(events.iter().map(crate::events::to_json).collect())
            )
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
    let Some(stack) = client.describe_stack(&args.stack_name).await? else {
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
