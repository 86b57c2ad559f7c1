//! `cumulo up TEMPLATE`: the one-command path. Start a region in this process, deploy the
//! template with live events, print the outputs, keep running; Ctrl-C deletes the stack and
//! stops everything.

use std::path::PathBuf;
use std::process::ExitCode;

use cfn_stacks::model::{EventStatus, StackStatus};
use cfn_stacks::{Engine, ParamInput, StackInput};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::OutputFormat;
use crate::common::{ParamArgs, RegionArgs, StopSignal, read_template, stack_name_from};
use crate::events::{EventPrinter, EventView};
use crate::render::{say, table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The template to run.
    template: PathBuf,
    /// The stack's name (default: the template file's name).
    #[arg(long)]
    stack_name: Option<String>,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    region: RegionArgs,
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut stop = StopSignal::install()?;
    let body = read_template(&args.template)?;
    let file = args.template.display().to_string();
    let params = args.params.values()?;
    // Template problems are reported at file:line:column before anything starts.
    if !crate::validate::report(&file, &body, &params, &args.region.region) {
        return Ok(ExitCode::FAILURE);
    }
    let name = args.stack_name.clone().unwrap_or_else(|| stack_name_from(&args.template));
    let mut config = args.region.config(args.region.data_dir.clone())?;
    let region = match region::Region::start(config.clone()).await {
        Ok(r) => r,
        Err(region::RegionError::Listen { addr, source })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            config.listen = std::net::SocketAddr::new(addr.ip(), 0);
            let r = region::Region::start(config).await?;
            eprintln!(
                "{addr} is in use (another Cumulo region?); this one listens on {} instead",
                r.endpoint
            );
            r
        }
        Err(e) => return Err(e.into()),
    };
    let engine = region.engine.clone();
    if args.output == OutputFormat::Table {
        eprintln!(
            "Cumulo region {} on {} — deploying {name} from {file}",
            args.region.region, region.endpoint
        );
    }
    let mut events = engine.subscribe();
    let input = StackInput {
        stack_name: name.clone(),
        template_body: Some(body),
        parameters: params.into_iter().map(|(k, v)| (k, ParamInput::Value(v))).collect(),
        capabilities: vec![
            "CAPABILITY_IAM".into(),
            "CAPABILITY_NAMED_IAM".into(),
            "CAPABILITY_AUTO_EXPAND".into(),
        ],
        ..StackInput::default()
    };
    let stack_id = match engine.create_stack(input) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: {e}");
            region.shutdown().await;
            return Ok(ExitCode::FAILURE);
        }
    };
    let total = engine
        .find_stack(&stack_id)
        .map(|s| s.template_body.len())
        .map(|_| resource_count(&engine, &stack_id))
        .unwrap_or(0);
    let mut printer = EventPrinter::new(args.output, &name, &format!("creating {name}"), total);
    let created =
        follow(&engine, &mut events, &stack_id, &mut printer, &format!("creating {name}")).await;
    printer.finish();
    let stack = engine.find_stack(&stack_id)?;
    if created != Some(StackStatus::CreateComplete) {
        eprintln!(
            "Stack {name} ended in {}: {}",
            shown(created),
            stack.status_reason.clone().unwrap_or_default()
        );
        region.shutdown().await;
        return Ok(ExitCode::FAILURE);
    }
    // Load balancer URLs are shown as addresses that answer here.
    let endpoints = region.elb.endpoints()?;
    let local = |v: &str| elb::working_url(v, &endpoints);
    match args.output {
        OutputFormat::Table => {
            let mut outputs: Vec<_> = stack.outputs.iter().collect();
            outputs.sort_by_key(|o| {
                !(o.value.starts_with("http://") || o.value.starts_with("https://"))
            });
            if !outputs.is_empty() {
                let mut t = table(["Output", "Value", "Description"]);
                for o in outputs {
                    t.add_row([
                        o.key.as_str(),
                        local(&o.value).as_str(),
                        o.description.as_deref().unwrap_or(""),
                    ]);
                }
                say!("{t}");
            }
            say!(
                "Stack {name} is up. AWS API: {} — press Ctrl-C to delete the stack and stop.",
                region.endpoint
            );
        }
        OutputFormat::Json => say!(
            "{}",
            json!({
                "stackName": name,
                "stackId": stack_id,
                "status": shown(created),
                "endpoint": region.endpoint,
                "outputs": stack.outputs.iter().map(|o| json!({"key": o.key, "value": local(&o.value), "awsValue": o.value, "description": o.description})).collect::<Vec<_>>(),
            })
        ),
    }
    // Keep running (and showing what happens) until asked to stop.
    let mut printer = EventPrinter::new(args.output, &name, &format!("{name} is up"), 0);
    tokio::select! {
        _ = stop.wait() => {}
        _ = async { loop { follow_forever(&mut events, &stack_id, &mut printer, &format!("{name} is up")).await } } => {}
    }
    printer.finish();
    if args.output == OutputFormat::Table {
        eprintln!(
            "Deleting {name}… (load balancers drain their targets first; Ctrl-C again to stop at once)"
        );
    }
    engine.delete_stack(&stack_id)?;
    let mut printer = EventPrinter::new(
        args.output,
        &name,
        &format!("deleting {name}"),
        stack.creation_order.len(),
    );
    let verb = format!("deleting {name}");
    let deleted = tokio::select! {
        s = follow(&engine, &mut events, &stack_id, &mut printer, &verb) => Some(s),
        _ = stop.wait() => None,
    };
    printer.finish();
    region.shutdown().await;
    if args.output == OutputFormat::Table {
        let text = deleted.map_or("INTERRUPTED", shown);
        say!("Stack {name}: {text}. Stopped.");
    }
    let ok = deleted == Some(Some(StackStatus::DeleteComplete));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A final status as shown (`UNKNOWN` when the region stopped before telling).
fn shown(status: Option<StackStatus>) -> &'static str {
    status.map_or("UNKNOWN", StackStatus::as_str)
}

/// How many resources the stack's template creates.
fn resource_count(engine: &Engine, stack_id: &str) -> usize {
    let Ok(stack) = engine.find_stack(stack_id) else { return 0 };
    let store = cfn_template::public_parameters();
    let mut options = cfn_template::Options::validate(&store);
    options.parameters = stack.parameters.clone();
    cfn_template::analyze(&stack.template_body, &options).stack.map_or(0, |s| s.graph.deps.len())
}

/// Shows the stack's events until it reaches a terminal status; returns that status (`None`
/// when the region stopped first).
async fn follow(
    engine: &Engine,
    events: &mut tokio::sync::broadcast::Receiver<cfn_stacks::model::StackEvent>,
    stack_id: &str,
    printer: &mut EventPrinter,
    verb: &str,
) -> Option<StackStatus> {
    loop {
        let terminal = |engine: &Engine| {
            engine.find_stack(stack_id).ok().map(|s| s.status).filter(|s| s.is_terminal())
        };
        match events.recv().await {
            Ok(e) if e.stack_id == stack_id => {
                printer.show(&EventView::from(&e), verb);
                if let EventStatus::Stack(status) = e.status
                    && e.is_stack_event()
                    && status.is_terminal()
                {
                    // Let the engine finish its bookkeeping before the status is read.
                    if let Ok(done) = engine.wait_terminal(stack_id).await {
                        return Some(done.status);
                    }
                    return Some(status);
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => {
                if let Some(s) = terminal(engine) {
                    return Some(s);
                }
            }
            Err(RecvError::Closed) => return terminal(engine),
        }
    }
}

async fn follow_forever(
    events: &mut tokio::sync::broadcast::Receiver<cfn_stacks::model::StackEvent>,
    stack_id: &str,
    printer: &mut EventPrinter,
    verb: &str,
) {
    match events.recv().await {
        Ok(e) if e.stack_id == stack_id => printer.show(&EventView::from(&e), verb),
        Ok(_) | Err(RecvError::Lagged(_)) => {}
        Err(RecvError::Closed) => std::future::pending::<()>().await,
    }
}
