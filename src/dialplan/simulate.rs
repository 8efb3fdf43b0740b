//! `hotline simulate`: a caller's walk through the dialplan in virtual time, with the engine's
//! own interpreter, printed step by step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDateTime};

use super::model::{Dialplan, MergeMode, QueueDecl, QueueId};
use super::navigation::{Action, Navigation, PathEvent};
use super::route::Routing;
use super::Plan;

/// Virtual time after which a walk that has not ended is cut off (a queue's wait is at most
/// an hour, and a walk may pass through a few).
const LIMIT: Duration = Duration::from_secs(4 * 3600);

/// One item of `--keys`: what the caller does at one wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Press {
    /// Digits typed without pauses.
    Keys(String),
    /// Nothing until the timeout (`-`).
    Silence,
    /// In a queue no seat answers: wait its `max_wait_s` (`wait`).
    QueueWait,
}

/// What the simulated caller does.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The number dialled.
    pub to: String,
    /// The caller's number.
    pub from: String,
    /// Local time of the call.
    pub at: Option<NaiveDateTime>,
    /// One item per wait for input or queue.
    pub keys: Vec<Press>,
}

/// Parses `--keys 2,1,-,13800000000#,wait`.
pub fn parse_keys(text: &str) -> Result<Vec<Press>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|item| {
            let item = item.trim();
            match item {
                "-" => Ok(Press::Silence),
                "wait" => Ok(Press::QueueWait),
                _ if !item.is_empty() && item.chars().all(is_key) => {
                    Ok(Press::Keys(item.to_string()))
                }
                _ => Err(format!(
                    "bad key item `{item}`: expected digits, * and #, - for silence, or wait \
                     (no seat answers in a queue)"
                )),
            }
        })
        .collect()
}

fn is_key(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// Walks the call and returns the lines to print; the last one starts with `ends:`.
pub fn simulate(plan: &Arc<Plan>, caller: &Caller, default_at: NaiveDateTime) -> Vec<String> {
    let dialplan = &plan.dialplan;
    let at = caller.at.unwrap_or(default_at);
    let mut out = Vec::new();
    let entry = match dialplan.route(Some(&caller.to), Some(&caller.to)) {
        Routing::Number { entry, .. } => entry,
        Routing::Reject {
            prompts, status, ..
        } => {
            out.push(format!(
                "{:>9}  call to {} at {}: no such number",
                "0.000",
                caller.to,
                show_time(at)
            ));
            if !prompts.is_empty() {
                out.push(format!(
                    "{:>9}  play {} (early media)",
                    "0.000",
                    show_prompts(plan, &prompts)
                ));
            }
            out.push(format!("ends: rejected {status}"));
            return out;
        }
    };
    let number = &dialplan.numbers[entry];
    out.push(format!(
        "{:>9}  call to {} from {} at {}: {} ({}, {}:{})",
        "0.000",
        caller.to,
        if caller.from.is_empty() {
            "unknown"
        } else {
            &caller.from
        },
        show_time(at),
        number.line,
        mode(number.mode),
        number.origin.file,
        number.origin.line,
    ));
    let start = Instant::now();
    let mut walk = Walk {
        plan: Arc::clone(plan),
        start,
        now: start,
        play_ends: None,
        wake: None,
        shown: 0,
        out,
        end: None,
        queued: None,
        waited: false,
    };
    let (mut nav, actions) = Navigation::start(Arc::clone(plan), entry, &caller.from, start, at);
    walk.apply(&nav, actions);
    let mut keys = caller.keys.iter().peekable();
    while walk.end.is_none() {
        if walk.now.duration_since(start) > LIMIT {
            let hours = LIMIT.as_secs() / 3600;
            walk.end = Some(format!("still in the dialplan after {hours} hours"));
            break;
        }
        let actions = if let Some((queue, priority)) = walk.queued.take() {
            let decl = dialplan.queues.get(queue.0 as usize);
            match decl {
                Some(decl) if keys.next_if_eq(&&Press::QueueWait).is_some() => {
                    walk.wait_in_queue(decl, priority);
                    nav.on_queue_max_wait(walk.now)
                }
                _ => {
                    let name = decl.map_or("?", |q| q.name.as_str());
                    walk.end = Some(format!("queue {name} (priority {priority})"));
                    break;
                }
            }
        } else if let Some(ends) = walk.play_ends {
            walk.now = walk.now.max(ends);
            walk.play_ends = None;
            nav.on_play_finished(walk.now)
        } else if let Some(wake) = walk.wake {
            match keys.next() {
                Some(Press::Keys(item)) => {
                    let mut actions = Vec::new();
                    let plural = if item.chars().count() > 1 { "s" } else { "" };
                    walk.line(format!("key{plural} {item}"));
                    for key in item.chars() {
                        actions.extend(nav.on_digit(walk.now, key));
                    }
                    walk.wake = None;
                    actions
                }
                _ => {
                    walk.now = walk.now.max(wake);
                    walk.wake = None;
                    nav.on_timeout(walk.now)
                }
            }
        } else {
            walk.end = Some("stuck: nothing to wait for".to_string());
            break;
        };
        walk.apply(&nav, actions);
    }
    walk.flush(&nav);
    let mut out = walk.out;
    out.push(format!("ends: {}", walk.end.unwrap_or_default()));
    out
}

/// The simulation's clock and what it waits for.
struct Walk {
    plan: Arc<Plan>,
    start: Instant,
    now: Instant,
    play_ends: Option<Instant>,
    wake: Option<Instant>,
    shown: usize,
    out: Vec<String>,
    end: Option<String>,
    /// Handed to this queue (with this priority) by the last actions.
    queued: Option<(QueueId, u8)>,
    /// The next fallback on the path is the queue's max wait.
    waited: bool,
}

impl Walk {
    /// No seat answers: the caller hears the queue's music and announcements until max wait.
    fn wait_in_queue(&mut self, queue: &QueueDecl, priority: u8) {
        let music = show_prompts(&self.plan, &queue.music);
        let announce = match queue.announce_every {
            Some(every) => format!(
                ", announcements every {} s (queue/ahead-before …)",
                every.as_secs()
            ),
            None => String::new(),
        };
        self.line(format!(
            "queue {} (priority {priority}): no seat answers; loops {music}{announce}",
            queue.name
        ));
        self.now += queue.max_wait;
        self.waited = true;
    }

    fn line(&mut self, text: String) {
        let at = self.now.duration_since(self.start).as_secs_f64();
        self.out.push(format!("{at:>9.3}  {text}"));
    }

    /// Prints the path steps not shown yet.
    fn flush(&mut self, nav: &Navigation) {
        let steps: Vec<PathEvent> = nav.path()[self.shown..]
            .iter()
            .map(|s| s.event.clone())
            .collect();
        self.shown = nav.path().len();
        let dialplan: &Dialplan = &Arc::clone(&self.plan).dialplan;
        for event in steps {
            match event {
                PathEvent::Enter(node) => {
                    let origin = dialplan.nodes.get(node.0 as usize).map(|n| &n.origin);
                    let place =
                        origin.map_or(String::new(), |o| format!("  ({}:{})", o.file, o.line));
                    self.line(format!("enter {}{place}", dialplan.node_name(node)));
                }
                PathEvent::Tag(name, value) => self.line(format!("tag {name}={value}")),
                PathEvent::NoInput => self.line("no input before the timeout".to_string()),
                PathEvent::Invalid(entry) => self.line(format!("not accepted: `{entry}`")),
                PathEvent::Fallback if self.waited => {
                    self.waited = false;
                    self.line("max wait reached: on to after_max_wait (or the fallback)".into());
                }
                PathEvent::Fallback => self.line("hand-over failed: fallback".to_string()),
                PathEvent::Stuck => self.line("cut short: too many steps".to_string()),
                PathEvent::Key(_) => {}
            }
        }
    }

    fn apply(&mut self, nav: &Navigation, actions: Vec<Action>) {
        // The number was confirmed before the walk went on to `next`.
        for action in &actions {
            if let Action::Callback { number } = action {
                self.line(format!(
                    "callback requested to {number} (in the call record)"
                ));
            }
        }
        self.flush(nav);
        let dialplan = &Arc::clone(&self.plan).dialplan;
        for action in actions {
            match action {
                Action::Play { prompts, barge_in } => {
                    let length: Duration = prompts
                        .iter()
                        .filter_map(|p| self.plan.prompts.get(p))
                        .map(|p| p.duration())
                        .sum();
                    let text = show_prompts(&self.plan, &prompts);
                    let barge = if barge_in { ", a key interrupts" } else { "" };
                    self.line(format!("play {text}{barge}"));
                    self.play_ends = Some(self.now + length);
                    self.wake = None;
                }
                Action::StopPlay => self.play_ends = None,
                Action::Wake(at) => self.wake = Some(at),
                Action::Queue { queue, priority } => self.queued = Some((queue, priority)),
                Action::Transfer { subcentre } => {
                    let name = dialplan.subcentres.get(subcentre.0 as usize);
                    self.end = Some(format!(
                        "transfer {}",
                        name.map_or("?", |s| s.name.as_str())
                    ));
                }
                Action::Hangup => self.end = Some("hangup".to_string()),
                Action::Callback { .. } => {}
            }
        }
    }
}

fn show_prompts(plan: &Plan, prompts: &[String]) -> String {
    let total: f64 = prompts
        .iter()
        .filter_map(|p| plan.prompts.get(p))
        .map(|p| p.duration().as_secs_f64())
        .sum();
    format!("{} ({total:.1} s)", prompts.join(" + "))
}

fn show_time(at: NaiveDateTime) -> String {
    format!("{} ({})", at.format("%Y-%m-%d %H:%M"), at.weekday())
}

fn mode(mode: MergeMode) -> &'static str {
    mode.as_str()
}
