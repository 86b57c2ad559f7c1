//! The resource dependency graph: edges from `Ref`, `Fn::GetAtt`, `Fn::Sub` and `DependsOn`,
//! cycles named in full, and a creation order that groups independent resources.

use indexmap::{IndexMap, IndexSet};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diag::Diagnostics;
use crate::span::Span;

/// Dependencies between the resources that exist (condition not false).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// For each resource, the resources it depends on, in template order.
    pub deps: IndexMap<String, IndexSet<String>>,
    /// Creation waves: each wave depends only on earlier waves, so its resources can be
    /// created in parallel. Deletion runs the waves backwards.
    pub waves: Vec<Vec<String>>,
}

impl Graph {
    /// Builds the graph. `deps` maps each resource to `(dependency, span of the reference)`.
    pub fn build(deps: IndexMap<String, Vec<(String, Span)>>, diags: &mut Diagnostics) -> Graph {
        let mut graph = DiGraph::<&str, ()>::new();
        let index: IndexMap<&str, NodeIndex> =
            deps.keys().map(|k| (k.as_str(), graph.add_node(k.as_str()))).collect();
        let mut clean: IndexMap<String, IndexSet<String>> = IndexMap::new();
        for (from, targets) in &deps {
            let set = clean.entry(from.clone()).or_default();
            for (to, _) in targets {
                if let Some(&to_idx) = index.get(to.as_str())
                    && set.insert(to.clone())
                {
                    graph.add_edge(index[from.as_str()], to_idx, ());
                }
            }
        }
        // Cycles: strongly connected components with more than one node, or a self edge.
        let mut cyclic: IndexSet<String> = IndexSet::new();
        for scc in petgraph::algo::tarjan_scc(&graph) {
            let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                let mut names: Vec<&str> = scc.iter().map(|i| graph[*i]).collect();
                names.sort_by_key(|n| index.get_index_of(n));
                let span = deps
                    .get(names[0])
                    .and_then(|t| t.iter().find(|(to, _)| names.contains(&to.as_str())))
                    .map_or(Span::default(), |(_, s)| *s);
                diags.error(
                    span,
                    format!("Circular dependency between resources: [{}]", names.join(", ")),
                );
                cyclic.extend(names.into_iter().map(str::to_string));
            }
        }
        // Kahn's algorithm by waves; resources in cycles are left out.
        let mut remaining: IndexMap<&str, usize> = IndexMap::new();
        for (name, targets) in &clean {
            if cyclic.contains(name) {
                continue;
            }
            remaining.insert(name, targets.iter().filter(|t| !cyclic.contains(*t)).count());
        }
        let mut dependents: IndexMap<&str, Vec<&str>> = IndexMap::new();
        for (name, targets) in &clean {
            for t in targets {
                dependents.entry(t.as_str()).or_default().push(name.as_str());
            }
        }
        let mut waves = Vec::new();
        let mut ready: Vec<&str> =
            remaining.iter().filter(|(_, n)| **n == 0).map(|(k, _)| *k).collect();
        while !ready.is_empty() {
            let mut next = Vec::new();
            for name in &ready {
                remaining.shift_remove(name);
                for dependent in dependents.get(name).into_iter().flatten() {
                    if let Some(n) = remaining.get_mut(dependent) {
                        *n -= 1;
                        if *n == 0 {
                            next.push(*dependent);
                        }
                    }
                }
            }
            next.sort_by_key(|n| deps.get_index_of(*n));
            waves.push(ready.iter().map(|s| s.to_string()).collect());
            ready = next;
        }
        Graph { deps: clean, waves }
    }

    /// Every resource that depends on `name`, directly or not.
    pub fn dependents_of(&self, name: &str) -> IndexSet<String> {
        let mut out = IndexSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(current) = stack.pop() {
            for (other, deps) in &self.deps {
                if deps.contains(&current) && out.insert(other.clone()) {
                    stack.push(other.clone());
                }
            }
        }
        out
    }
}
