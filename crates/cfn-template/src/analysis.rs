//! The whole pipeline: parse, read sections, check references, resolve parameters, evaluate
//! conditions and rules, build the graph, evaluate and check every resource and output.

use indexmap::IndexMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::eval::{
    Evaluator, NoResources, PSEUDO_PARAMETERS, Pseudo, Resolver, Truth, attribute_allowed,
    unresolved,
};
use crate::graph::Graph;
use crate::node::Node;
use crate::params::{Mode, ParameterValues, resolve_parameters};
use crate::refs::{RefKind, references};
use crate::span::Span;
use crate::ssm::ParameterStore;
use crate::template::{SERVERLESS_TRANSFORM, Template};
use crate::value::Value;
use crate::{conditions, parse, rules, schema_check};

/// What an analysis needs besides the template text.
pub struct Options<'a> {
    /// Parameter values given by the user (list values comma-separated).
    pub parameters: IndexMap<String, String>,
    pub mode: Mode,
    pub pseudo: Pseudo,
    pub store: &'a dyn ParameterStore,
    /// How resources' `Ref`/`GetAtt` and exports resolve; [`NoResources`] for a plain validation.
    pub resolver: &'a dyn Resolver,
}

impl<'a> Options<'a> {
    pub fn validate(store: &'a dyn ParameterStore) -> Options<'a> {
        Options {
            parameters: IndexMap::new(),
            mode: Mode::Validate,
            pseudo: Pseudo::default(),
            store,
            resolver: &NoResources,
        }
    }
}

/// The result of an analysis: the prepared stack (when the template could be read at all) and
/// every problem found, sorted by position.
pub struct Analysis {
    pub stack: Option<Prepared>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// A template with its parameter values and conditions decided: ready to create resources from.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub template: Template,
    pub parameters: ParameterValues,
    pub conditions: IndexMap<String, Truth>,
    pub pseudo: Pseudo,
    pub graph: Graph,
    pub mode: Mode,
}

/// A resolved output.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedOutput {
    pub name: String,
    pub value: Value,
    pub description: Option<String>,
    pub export_name: Option<String>,
}

/// Runs every check over a template body.
pub fn analyze(text: &str, options: &Options<'_>) -> Analysis {
    let mut diags = Diagnostics::default();
    let Some(root) = parse::parse(text, &mut diags) else {
        return Analysis { stack: None, diagnostics: diags.finish() };
    };
    let Some(template) = Template::from_root(root, &mut diags) else {
        return Analysis { stack: None, diagnostics: diags.finish() };
    };
    check_types(&template, &mut diags);
    check_references(&template, &mut diags);

    let parameters =
        resolve_parameters(&template, &options.parameters, options.mode, options.store, &mut diags);
    let no_conditions = IndexMap::new();
    let base = Evaluator {
        template: &template,
        params: &parameters.values,
        conditions: &no_conditions,
        pseudo: &options.pseudo,
        resolver: options.resolver,
        store: options.store,
        mode: options.mode,
        dynamic_references: false,
        section: "Resources",
    };
    let conditions = conditions::evaluate(&base, &mut diags);
    let ev = Evaluator { conditions: &conditions, ..base };
    rules::check(&ev, &mut diags);

    let graph = build_graph(&template, &conditions, &mut diags);
    let prepared = Prepared {
        template: template.clone(),
        parameters,
        conditions,
        pseudo: options.pseudo.clone(),
        graph,
        mode: options.mode,
    };

    for (name, resource) in &template.resources {
        if prepared.present(name) == Some(false) {
            continue;
        }
        let (value, errors) =
            prepared.resolve_properties_partial(name, options.resolver, options.store);
        errors.into_iter().for_each(|d| diags.push(d));
        if let Some(schema) = cfn_schema::get(&resource.type_name) {
            let fallback = resource.span;
            for d in schema_check::check_resource(
                name,
                &schema,
                value.as_ref(),
                resource.properties.as_ref(),
                fallback,
            ) {
                diags.push(d);
            }
        }
        let ev = prepared.evaluator(options.resolver, options.store);
        for node in [&resource.metadata, &resource.creation_policy, &resource.update_policy]
            .into_iter()
            .flatten()
        {
            if let Err(d) = ev.eval(node) {
                diags.push(d);
            }
        }
    }
    let (_, output_errors) = prepared.resolve_outputs(options.resolver, options.store);
    output_errors.into_iter().for_each(|d| diags.push(d));

    Analysis { stack: Some(prepared), diagnostics: diags.finish() }
}

/// Unknown resource types, and types that need a transform Cumulo does not run.
fn check_types(template: &Template, diags: &mut Diagnostics) {
    for resource in template.resources.values() {
        let ty = resource.type_name.as_str();
        if ty.starts_with("Custom::") || ty == "AWS::CloudFormation::CustomResource" {
            continue;
        }
        if ty.starts_with("AWS::Serverless::") && template.has_transform(SERVERLESS_TRANSFORM) {
            diags.error(
                resource.type_span,
                format!("Transform {SERVERLESS_TRANSFORM} is not supported by Cumulo (resource {} of type {ty} needs it)", resource.name),
            );
            continue;
        }
        if !cfn_schema::is_known(ty) {
            diags.error(
                resource.type_span,
                format!("Template format error: Unrecognized resource types: [{ty}]"),
            );
        }
    }
}

/// References that can be checked without evaluating anything.
fn check_references(template: &Template, diags: &mut Diagnostics) {
    let is_param = |n: &str| template.parameters.contains_key(n) || PSEUDO_PARAMETERS.contains(&n);
    for name in template.parameters.keys() {
        if let Some(r) = template.resources.get(name) {
            diags.error(
                r.span,
                format!(
                    "Template format error: Duplicate logical id {name} in Parameters and Resources"
                ),
            );
        }
    }
    let unknown_cond = |name: &str, span: Span, diags: &mut Diagnostics| {
        if !template.conditions.contains_key(name) {
            diags.error(span, format!("Template error: unresolved condition dependency {name}"));
        }
    };
    let unknown_use = |c: &crate::refs::ConditionUse, diags: &mut Diagnostics| {
        if !template.conditions.contains_key(&c.name) {
            let suffix = if c.in_if { " in Fn::If" } else { "" };
            diags.error(
                c.span,
                format!("Template error: unresolved condition dependency {}{suffix}", c.name),
            );
        }
    };
    let no_truth = |_: &str| None;
    let check_node = |node: &Node, section: &str, diags: &mut Diagnostics| {
        for r in references(node, &no_truth) {
            match r.kind {
                RefKind::Ref | RefKind::Sub => {
                    if !is_param(&r.target) && !template.resources.contains_key(&r.target) {
                        diags.error(r.span, format!("Template format error: Unresolved resource dependencies [{}] in the {section} block of the template", r.target));
                    }
                }
                RefKind::GetAtt => match template.resources.get(&r.target) {
                    None => {
                        diags.error(r.span, format!("Template error: instance of Fn::GetAtt references undefined resource {}", r.target));
                    }
                    Some(res) => {
                        if let Some(attr) = &r.attribute
                            && !attribute_allowed(&res.type_name, attr)
                        {
                            diags.error(r.span, format!("Template error: resource {} does not support attribute type {attr} in Fn::GetAtt", r.target));
                        }
                    }
                },
            }
        }
        for c in crate::refs::condition_uses(node) {
            unknown_use(&c, diags);
        }
        unknown_functions(node, diags);
    };
    for resource in template.resources.values() {
        for node in [
            &resource.properties,
            &resource.metadata,
            &resource.creation_policy,
            &resource.update_policy,
        ]
        .into_iter()
        .flatten()
        {
            check_node(node, "Resources", diags);
        }
        for (dep, span) in &resource.depends_on {
            if !template.resources.contains_key(dep) {
                diags.error(*span, unresolved(dep));
            }
        }
        if let Some((cond, span)) = &resource.condition {
            unknown_cond(cond, *span, diags);
        }
    }
    for output in template.outputs.values() {
        for node in [Some(&output.value), output.export_name.as_ref(), output.description.as_ref()]
            .into_iter()
            .flatten()
        {
            check_node(node, "Outputs", diags);
        }
        if let Some((cond, span)) = &output.condition {
            unknown_cond(cond, *span, diags);
        }
    }
    for condition in template.conditions.values() {
        for r in references(&condition.expr, &no_truth) {
            if !is_param(&r.target) {
                diags.error(r.span, format!("Template format error: Unresolved dependencies [{}]. Cannot reference resources in the Conditions block of the template", r.target));
            }
        }
        for c in crate::refs::condition_uses(&condition.expr) {
            unknown_use(&c, diags);
        }
        unknown_functions(&condition.expr, diags);
    }
}

/// Intrinsic function names CloudFormation does not know, wherever they appear.
fn unknown_functions(node: &Node, diags: &mut Diagnostics) {
    node.walk(&mut |n| {
        if let Some((name, _)) = n.as_intrinsic()
            && !crate::node::INTRINSICS.contains(&name)
        {
            diags.push(crate::eval::unsupported_function(name, n.span));
        }
    });
}

fn build_graph(
    template: &Template,
    conditions: &IndexMap<String, Truth>,
    diags: &mut Diagnostics,
) -> Graph {
    let truth = |c: &str| conditions.get(c).copied().flatten();
    let present = |name: &str| {
        template
            .resources
            .get(name)
            .is_some_and(|r| r.condition.as_ref().is_none_or(|(c, _)| truth(c) != Some(false)))
    };
    let mut deps: IndexMap<String, Vec<(String, Span)>> = IndexMap::new();
    for (name, resource) in &template.resources {
        if !present(name) {
            continue;
        }
        let mut targets = Vec::new();
        for node in [
            &resource.properties,
            &resource.metadata,
            &resource.creation_policy,
            &resource.update_policy,
        ]
        .into_iter()
        .flatten()
        {
            for r in references(node, &truth) {
                if template.resources.contains_key(&r.target)
                    && !template.parameters.contains_key(&r.target)
                {
                    targets.push((r.target, r.span));
                }
            }
        }
        targets.extend(resource.depends_on.iter().cloned());
        deps.insert(name.clone(), targets.into_iter().filter(|(t, _)| present(t)).collect());
    }
    Graph::build(deps, diags)
}

/// Evaluates a `Properties` node one top-level property at a time.
fn partial(ev: &Evaluator<'_>, node: &Node) -> (Option<Value>, Vec<Diagnostic>) {
    let Some(map) = node.as_map().filter(|_| node.as_intrinsic().is_none()) else {
        return match ev.eval(node) {
            Ok(v) => (v, Vec::new()),
            Err(d) => (Some(Value::Unknown), vec![d]),
        };
    };
    let mut out = IndexMap::new();
    let mut errors = Vec::new();
    for entry in map.iter() {
        match ev.eval(&entry.value) {
            Ok(Some(v)) => {
                out.insert(entry.key.clone(), v);
            }
            Ok(None) => {}
            Err(d) => {
                errors.push(d);
                out.insert(entry.key.clone(), Value::Unknown);
            }
        }
    }
    (Some(Value::Map(out)), errors)
}

// === impl Prepared ===

impl Prepared {
    /// The names of the parameters declared `NoEcho` (their values are shown masked).
    pub fn no_echo(&self) -> Vec<String> {
        self.template.parameters.values().filter(|p| p.no_echo).map(|p| p.name.clone()).collect()
    }

    /// Whether a resource exists under the decided conditions (`None` when undecided).
    pub fn present(&self, logical_id: &str) -> Truth {
        let resource = self.template.resources.get(logical_id)?;
        match &resource.condition {
            None => Some(true),
            Some((c, _)) => self.conditions.get(c).copied().flatten(),
        }
    }

    /// An evaluator over this stack's parameters and conditions.
    pub fn evaluator<'a>(
        &'a self,
        resolver: &'a dyn Resolver,
        store: &'a dyn ParameterStore,
    ) -> Evaluator<'a> {
        Evaluator {
            template: &self.template,
            params: &self.parameters.values,
            conditions: &self.conditions,
            pseudo: &self.pseudo,
            resolver,
            store,
            mode: self.mode,
            dynamic_references: false,
            section: "Resources",
        }
    }

    /// A resource's `Properties`, resolved. Each top-level property is evaluated on its own, so
    /// that every problem is reported. `Ok(None)` when the resource has no properties.
    pub fn resolve_properties(
        &self,
        logical_id: &str,
        resolver: &dyn Resolver,
        store: &dyn ParameterStore,
    ) -> Result<Option<Value>, Vec<Diagnostic>> {
        let Some(resource) = self.template.resources.get(logical_id) else { return Ok(None) };
        let Some(node) = &resource.properties else { return Ok(None) };
        let ev = Evaluator { dynamic_references: true, ..self.evaluator(resolver, store) };
        let (value, errors) = partial(&ev, node);
        if errors.is_empty() { Ok(value) } else { Err(errors) }
    }

    /// Like [`Prepared::resolve_properties`], but a property that fails to evaluate becomes
    /// `Unknown` (so that the rest can still be checked) and the problems are returned beside.
    pub fn resolve_properties_partial(
        &self,
        logical_id: &str,
        resolver: &dyn Resolver,
        store: &dyn ParameterStore,
    ) -> (Option<Value>, Vec<Diagnostic>) {
        let Some(node) =
            self.template.resources.get(logical_id).and_then(|r| r.properties.as_ref())
        else {
            return (None, Vec::new());
        };
        let ev = Evaluator { dynamic_references: true, ..self.evaluator(resolver, store) };
        partial(&ev, node)
    }

    /// Evaluates any node of the template (metadata, policies) in this stack's context.
    pub fn resolve_node(
        &self,
        node: &Node,
        resolver: &dyn Resolver,
        store: &dyn ParameterStore,
    ) -> Result<Option<Value>, Diagnostic> {
        self.evaluator(resolver, store).eval(node)
    }

    /// The outputs whose condition holds, resolved, and the problems met.
    pub fn resolve_outputs(
        &self,
        resolver: &dyn Resolver,
        store: &dyn ParameterStore,
    ) -> (Vec<ResolvedOutput>, Vec<Diagnostic>) {
        let ev = Evaluator { section: "Outputs", ..self.evaluator(resolver, store) };
        let mut outputs = Vec::new();
        let mut errors = Vec::new();
        for output in self.template.outputs.values() {
            if let Some((c, _)) = &output.condition
                && self.conditions.get(c).copied().flatten() == Some(false)
            {
                continue;
            }
            let mut text = |node: Option<&Node>| -> Option<Value> {
                match ev.value(node?) {
                    Ok(v) => Some(v),
                    Err(d) => {
                        errors.push(d);
                        None
                    }
                }
            };
            let Some(value) = text(Some(&output.value)) else { continue };
            let description = text(output.description.as_ref()).and_then(|v| v.as_text());
            let export_name = match output.export_name.as_ref() {
                Some(n) => {
                    match text(Some(n)) {
                        Some(Value::Unknown) => None,
                        Some(v) => match v.as_text() {
                            Some(t) => Some(t),
                            None => {
                                errors.push(Diagnostic::error(n.span, format!("Template error: the export name of output {} must be a string", output.name)));
                                None
                            }
                        },
                        None => None,
                    }
                }
                None => None,
            };
            if let Value::List(items) = &value {
                // Outputs are strings; lists are joined by commas, as CloudFormation shows them.
                if items.iter().any(|i| i.as_text().is_none() && !i.is_unknown()) {
                    errors.push(Diagnostic::error(output.value.span, format!("Template format error: Output {} must be a string or a list of strings", output.name)));
                    continue;
                }
            }
            if matches!(value, Value::Map(_)) {
                errors.push(Diagnostic::error(
                    output.value.span,
                    format!(
                        "Template format error: Output {} must be a string or a list of strings",
                        output.name
                    ),
                ));
                continue;
            }
            outputs.push(ResolvedOutput {
                name: output.name.clone(),
                value,
                description,
                export_name,
            });
        }
        (outputs, errors)
    }
}
