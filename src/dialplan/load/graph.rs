//! Checks on the node graph that keep callers from being trapped (GB/T 33358): every node can
//! reach a queue, a transfer or a hang-up; no `goto`/`branch` cycle spins without waiting; the
//! operator reaches a person; and a warning for nodes nothing leads to.

use std::collections::VecDeque;

use super::spans::{Diags, Pos};
use super::Loader;
use crate::dialplan::model::{Dialplan, NodeId, NodeKind, Start};

/// The nodes a node can lead to, in the order its keys are read.
pub(super) fn successors(kind: &NodeKind) -> Vec<NodeId> {
    match kind {
        NodeKind::Play { next, .. } => vec![*next],
        NodeKind::Menu(m) => m.keys.iter().map(|(_, id)| *id).chain([m.fail]).collect(),
        NodeKind::Collect(c) => vec![c.next, c.fail],
        NodeKind::Survey(s) => vec![s.next],
        NodeKind::Branch { rules, otherwise } => {
            rules.iter().map(|r| r.goto).chain([*otherwise]).collect()
        }
        NodeKind::Goto(id) => vec![*id],
        NodeKind::Queue {
            fallback, after, ..
        } => std::iter::once(*fallback).chain(*after).collect(),
        NodeKind::Transfer { fallback, .. } => vec![*fallback],
        NodeKind::Callback(c) => vec![c.next, c.fallback],
        NodeKind::Hangup { .. } => Vec::new(),
    }
}

/// Every check; only called when every reference resolved.
pub(super) fn check(l: &mut Loader<'_>) {
    let graph = Graph::new(&l.plan);
    trapped(&graph, &l.plan, &l.node_pos, &mut l.d);
    spinning(&graph, &l.plan, &l.node_pos, &mut l.d);
    if let Some((operator, pos)) = &l.defaults.operator {
        let reached = graph.reachable([operator.0 as usize]);
        let person = reached.iter().enumerate().any(|(i, r)| {
            *r && matches!(
                l.plan.nodes[i].kind,
                NodeKind::Queue { .. } | NodeKind::Transfer { .. }
            )
        });
        if !person {
            l.d.error(
                pos,
                format!(
                    "`operator` node `{}` never reaches a person; expected a queue or transfer \
                     node to be reachable from it",
                    l.plan.nodes[operator.0 as usize].name
                ),
            );
        }
    }
    let mut roots: Vec<usize> = Vec::new();
    for n in &l.plan.numbers {
        match n.start {
            Start::Node(id) => roots.push(id.0 as usize),
            Start::SubCentre { fallback, .. } => roots.push(fallback.0 as usize),
        }
    }
    roots.extend(l.defaults.operator.as_ref().map(|(id, _)| id.0 as usize));
    roots.extend(l.defaults.queue_fallback.map(|id| id.0 as usize));
    let reached = graph.reachable(roots);
    for (i, node) in l.plan.nodes.iter().enumerate() {
        if !reached[i] {
            l.d.warning(
                &l.node_pos[i],
                format!("node `{}` is not reached from any number", node.name),
            );
        }
    }
}

/// Successor lists by node index.
struct Graph {
    succ: Vec<Vec<usize>>,
}

impl Graph {
    /// A queue node also leads where its queue sends callers at max wait.
    fn new(plan: &Dialplan) -> Graph {
        let succ = plan
            .nodes
            .iter()
            .map(|n| {
                let after_max_wait = match &n.kind {
                    NodeKind::Queue { queue, .. } => plan
                        .queues
                        .get(queue.0 as usize)
                        .and_then(|q| q.after_max_wait),
                    _ => None,
                };
                successors(&n.kind)
                    .into_iter()
                    .chain(after_max_wait)
                    .map(|id| id.0 as usize)
                    .collect()
            })
            .collect();
        Graph { succ }
    }

    /// The nodes reachable from `roots` (including them).
    fn reachable(&self, roots: impl IntoIterator<Item = usize>) -> Vec<bool> {
        let mut seen = vec![false; self.succ.len()];
        let mut queue: VecDeque<usize> = VecDeque::new();
        for r in roots {
            if !seen[r] {
                seen[r] = true;
                queue.push_back(r);
            }
        }
        while let Some(i) = queue.pop_front() {
            for &j in &self.succ[i] {
                if !seen[j] {
                    seen[j] = true;
                    queue.push_back(j);
                }
            }
        }
        seen
    }

    /// The nodes that can reach a node for which `goal` holds.
    fn can_reach(&self, goal: impl Fn(usize) -> bool) -> Vec<bool> {
        let n = self.succ.len();
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, s) in self.succ.iter().enumerate() {
            for &j in s {
                pred[j].push(i);
            }
        }
        let mut ok: Vec<bool> = (0..n).map(&goal).collect();
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| ok[i]).collect();
        while let Some(i) = queue.pop_front() {
            for &p in &pred[i] {
                if !ok[p] {
                    ok[p] = true;
                    queue.push_back(p);
                }
            }
        }
        ok
    }
}

/// Names joined with arrows.
fn path(plan: &Dialplan, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|&i| plan.nodes[i].name.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Nodes from which no queue, transfer or hang-up can be reached.
fn trapped(graph: &Graph, plan: &Dialplan, pos: &[Pos], d: &mut Diags) {
    let escapes = graph.can_reach(|i| {
        matches!(
            plan.nodes[i].kind,
            NodeKind::Queue { .. } | NodeKind::Transfer { .. } | NodeKind::Hangup { .. }
        )
    });
    for start in (0..plan.nodes.len()).filter(|&i| !escapes[i]) {
        // Every successor of a trapped node is trapped and every trapped node has one:
        // following the first successor ends in a cycle.
        let mut walk = vec![start];
        let mut at = start;
        let cycle_from = loop {
            let Some(&next) = graph.succ[at].first() else {
                break walk.len() - 1;
            };
            if let Some(k) = walk.iter().position(|&w| w == next) {
                walk.push(next);
                break k;
            }
            walk.push(next);
            at = next;
        };
        let cycle = path(plan, &walk[cycle_from..]);
        let how = if cycle_from == 0 {
            format!("cycle: {cycle}")
        } else {
            format!("it leads into the cycle {cycle}")
        };
        d.error(
            &pos[start],
            format!(
                "node `{}` can never reach a person, a hang-up or a queue: callers would be \
                 trapped ({how})",
                plan.nodes[start].name
            ),
        );
    }
}

/// Cycles of `goto`/`branch` nodes, which never wait for the caller; one error per cycle.
fn spinning(graph: &Graph, plan: &Dialplan, pos: &[Pos], d: &mut Diags) {
    let n = plan.nodes.len();
    let instant: Vec<bool> = plan
        .nodes
        .iter()
        .map(|node| matches!(node.kind, NodeKind::Goto(_) | NodeKind::Branch { .. }))
        .collect();
    let mut reported = vec![false; n];
    for s in (0..n).filter(|&s| instant[s]) {
        if reported[s] {
            continue;
        }
        // Breadth-first from s over instant nodes, looking for the way back to s.
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut queue: VecDeque<usize> = VecDeque::from([s]);
        let mut back = None;
        'search: while let Some(i) = queue.pop_front() {
            for &j in &graph.succ[i] {
                if j == s {
                    back = Some(i);
                    break 'search;
                }
                if instant[j] && parent[j].is_none() {
                    parent[j] = Some(i);
                    queue.push_back(j);
                }
            }
        }
        let Some(mut at) = back else { continue };
        let mut cycle = vec![s];
        while at != s {
            cycle.push(at);
            at = parent[at].unwrap_or(s);
        }
        cycle.push(s);
        cycle.reverse();
        for &i in &cycle {
            reported[i] = true;
        }
        d.error(
            &pos[s],
            format!(
                "goto loop with no wait: {}; expected a play, menu, collect or survey node in \
                 the loop",
                path(plan, &cycle)
            ),
        );
    }
}
