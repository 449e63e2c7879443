//! A query's operator graph as the runtime builds it from its [`QueryPlan`]: one node per
//! operator with a stable id (`n0` the source, in pipeline order), the operator's
//! parallelism and the state it keeps, and edges saying how rows are distributed
//! between them (`forward`, `hash [keys]` at the key exchange, `merge` into the single
//! sink). `EXPLAIN (FORMAT DOT) ...` prints it as Graphviz DOT.
//!
//! The shapes are those of `runtime::pipeline` (see its module docs): the operators
//! before the key exchange run once per source partition group, the keyed ones once
//! per worker, a lookup join in a stage of its own; a two-input join's front decodes
//! both inputs per partition group and the join runs once per worker, by key.

use std::fmt::Write;

use super::pipeline::parallelism;
use crate::options::ConnectorOptions;
use crate::sql::planner::QueryPlan;

/// One operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `n0`, `n1`, ... in pipeline order.
    pub id: String,
    /// What it is (`source`, `decode`, `watermark`, `window aggregate`, ...).
    pub kind: &'static str,
    /// What it does, as EXPLAIN prints it.
    pub detail: String,
    /// Tasks running it.
    pub parallelism: usize,
    /// The state it keeps in checkpoints, if any.
    pub state: Option<&'static str>,
}

/// How rows go from one node to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Upstream node id.
    pub from: String,
    /// Downstream node id.
    pub to: String,
    /// `forward`, `hash [keys]`, `by partition` or `merge`.
    pub distribution: String,
}

/// A query's operator graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanGraph {
    /// The query's id.
    pub query: String,
    /// Operators in pipeline order.
    pub nodes: Vec<Node>,
    /// The edges between consecutive operators.
    pub edges: Vec<Edge>,
}

impl PlanGraph {
    /// The graph of `plan`.
    pub fn of(plan: &QueryPlan) -> PlanGraph {
        let workers = parallelism(plan);
        let keyed = plan.aggregate.is_some() || plan.match_recognize.is_some();
        let mut nodes: Vec<Node> = Vec::new();
        let mut edges: Vec<Edge> = Vec::new();
        let mut add = |kind: &'static str, detail: String, parallelism: usize, state: Option<&'static str>, distribution: String| {
            let id = format!("n{}", nodes.len());
            if let Some(prev) = nodes.last() {
                edges.push(Edge { from: prev.id.clone(), to: id.clone(), distribution });
            }
            nodes.push(Node { id, kind, detail, parallelism, state });
        };
        let source = &plan.source;
        let two_inputs = match (&plan.interval_join, &plan.temporal_join) {
            (Some(j), _) => {
                Some((&j.right, "interval join", j.to_string(), "each stream's rows within the bound", [&j.left_keys, &j.right_keys]))
            }
            (None, Some(j)) => Some((
                &j.table,
                "temporal join",
                j.to_string(),
                "stream rows waiting for the watermark, table versions",
                [&j.stream_keys, &j.table_keys],
            )),
            (None, None) => None,
        };
        if let Some((other, kind, detail, state, [keys, other_keys])) = two_inputs {
            // Both topics in one source; each input decoded and timed by the join's front,
            // on each worker's share of the partitions; rows routed by key to the join.
            let names = format!("{} + {} ({} + {})", source.name, other.name, source.connector, other.connector);
            add("source", names, 1, Some("positions"), String::new());
            let by_partition = if workers > 1 { "by partition" } else { "forward" };
            add(
                "join front",
                "each input decoded, computed and timed".into(),
                workers,
                Some("per-partition watermarks"),
                by_partition.into(),
            );
            let backs = if keys.is_empty() { 1 } else { workers };
            let exchange = if backs > 1 {
                let side = |k: &Vec<crate::sql::planner::PlannedExpr>| k.iter().map(|e| e.display.clone()).collect::<Vec<_>>().join(", ");
                format!("hash [{}] / [{}]", side(keys), side(other_keys))
            } else {
                "forward".to_string()
            };
            add(kind, detail, backs, Some(state), exchange);
            if let Some(f) = &plan.filter {
                add("filter", f.display.clone(), backs, None, "forward".into());
            }
            let exprs: Vec<String> = plan.projection.iter().map(|p| format!("{} := {}", p.name, p.display)).collect();
            add("project", exprs.join(", "), backs, None, "forward".into());
            let merge = if backs > 1 { "merge" } else { "forward" };
            add("sink", format!("{} ({})", plan.sink.name, plan.sink.connector), 1, None, merge.into());
            return PlanGraph { query: plan.id.clone(), nodes, edges };
        }
        if !plan.union.is_empty() {
            let names: Vec<&str> = std::iter::once(source.name.as_str()).chain(plan.union.iter().map(|b| b.source.name.as_str())).collect();
            add("source", names.join(" + "), 1, Some("positions"), String::new());
            add("union all", format!("{} branches, each decoded, filtered and projected", names.len()), 1, None, "forward".into());
            add("sink", format!("{} ({})", plan.sink.name, plan.sink.connector), 1, None, "forward".into());
            return PlanGraph { query: plan.id.clone(), nodes, edges };
        }
        add("source", format!("{} ({})", source.name, source.connector), 1, Some("positions"), String::new());
        let format = source.connector.format().map_or_else(|| source.connector.name().to_string(), |f| f.to_string());
        add("decode", format, workers, None, if workers > 1 { "by partition".into() } else { "forward".into() });
        for c in &source.computed {
            add("computed", format!("{} := {}", c.name, c.display), workers, None, "forward".into());
        }
        let timed = keyed || matches!(plan.sink.connector, ConnectorOptions::Kafka(_));
        if timed {
            add("watermark", source.event_time.to_string(), workers, Some("per-partition watermarks"), "forward".into());
        }
        if let Some(j) = &plan.lookup_join {
            add("lookup join", j.to_string(), 1, None, "forward".into());
        }
        let filter_first = plan.match_recognize.is_none();
        if let (true, Some(f)) = (filter_first, &plan.filter) {
            add("filter", f.display.clone(), if plan.lookup_join.is_some() { 1 } else { workers }, None, "forward".into());
        }
        let exchange = |keys: Vec<String>| if workers > 1 { format!("hash [{}]", keys.join(", ")) } else { "forward".to_string() };
        if let Some(m) = &plan.match_recognize {
            let keys: Vec<String> = m.partition_by.iter().map(|k| k.display.clone()).collect();
            add("match_recognize", m.to_string(), workers, Some("sort buffer, partial matches"), exchange(keys));
            if let Some(f) = &plan.filter {
                add("filter", f.display.clone(), workers, None, "forward".into());
            }
        }
        if let Some(a) = &plan.aggregate {
            let keys: Vec<String> = a.keys.iter().map(|k| k.display.clone()).collect();
            let state = if a.window.is_some() { "open windows and their accumulators" } else { "groups and their accumulators" };
            // Pre-aggregated per batch on the front workers (Flink's local-global
            // aggregation): partial states cross the exchange.
            let distribution = match (workers > 1, super::pipeline::local_aggregation(plan)) {
                (true, true) => format!("{} of local partial aggregates", exchange(keys)),
                _ => exchange(keys),
            };
            add("window aggregate", a.to_string().replace('\n', " "), workers, Some(state), distribution);
            if let Some(h) = &plan.having {
                add("having", h.display.clone(), workers, None, "forward".into());
            }
        }
        let exprs: Vec<String> = plan.projection.iter().map(|p| format!("{} := {}", p.name, p.display)).collect();
        add("project", exprs.join(", "), if keyed { workers } else { 1 }, None, "forward".into());
        let merge = if keyed && workers > 1 { "merge" } else { "forward" };
        add("sink", format!("{} ({})", plan.sink.name, plan.sink.connector), 1, None, merge.into());
        PlanGraph { query: plan.id.clone(), nodes, edges }
    }

    /// Graphviz DOT: a left-to-right digraph named after the query, one box per operator
    /// (its kind, detail, parallelism and state), edges labelled with their distribution.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", escape(&self.query));
        let _ = writeln!(out, "  rankdir=LR;");
        let _ = writeln!(out, "  node [shape=box, fontname=\"monospace\"];");
        for n in &self.nodes {
            let mut label = format!("{}: {}\\n{}", n.id, n.kind, escape(&n.detail));
            let _ = write!(label, "\\nparallelism {}", n.parallelism);
            if let Some(s) = n.state {
                let _ = write!(label, "\\nstate: {s}");
            }
            let style = if n.state.is_some() && n.kind != "source" { ", style=bold" } else { "" };
            let _ = writeln!(out, "  {} [label=\"{label}\"{style}];", n.id);
        }
        for e in &self.edges {
            let _ = writeln!(out, "  {} -> {} [label=\"{}\"];", e.from, e.to, escape(&e.distribution));
        }
        out.push('}');
        out
    }
}

impl std::fmt::Display for PlanGraph {
    /// One line per operator: `n3 window aggregate x2 <- n2 (hash [k]) state: ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{} {} x{}", n.id, n.kind, n.parallelism)?;
            if let Some(e) = self.edges.iter().find(|e| e.to == n.id) {
                write!(f, " <- {} ({})", e.from, e.distribution)?;
            }
            if let Some(s) = n.state {
                write!(f, " state: {s}")?;
            }
        }
        Ok(())
    }
}

/// `text` inside a DOT double-quoted string.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
