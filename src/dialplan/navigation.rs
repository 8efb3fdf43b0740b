//! The dialplan interpreter: one caller's walk through the nodes, as a sans-IO state machine.
//!
//! The engine and `hotline simulate` drive it the same way: `start`, then `on_play_finished`,
//! `on_digit`, `on_timeout` and the hand-over results, each returning the [`Action`]s to carry
//! out. Time is an input: `now` for timers and the local wall-clock time at the start for
//! schedules, so tests run in virtual time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::model::{
    Attempts, CallbackNumber, Condition, Dialplan, NodeId, NodeKind, PromptName, QueueId, Start,
    SubCentreId, CALLBACK_MAX_DIGITS, CALLBACK_MIN_DIGITS,
};
use super::spoken::spoken_digits;
use super::Plan;

/// Transitions without waiting for the caller before the walk is cut short: the checker refuses
/// goto loops, but queue fallbacks could still chain into each other.
const MAX_HOPS: u32 = 64;

/// What the interpreter asks the call controller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Play these prompts in order; a key stops them when `barge_in`.
    Play {
        /// Prompt names.
        prompts: Vec<PromptName>,
        /// Whether a key stops the playback.
        barge_in: bool,
    },
    /// Stop the current playback (a key interrupted it).
    StopPlay,
    /// Call `on_timeout` at this instant.
    Wake(Instant),
    /// Hand the call to a queue; answer with `on_queue_unavailable` if it cannot take it, or
    /// `on_queue_max_wait` when the caller has waited the queue's `max_wait`.
    Queue {
        /// The queue.
        queue: QueueId,
        /// 0..=9, higher first.
        priority: u8,
    },
    /// Pass the call to a sub-centre; answer with `on_transfer_failed` if that fails.
    Transfer {
        /// The sub-centre.
        subcentre: SubCentreId,
    },
    /// The caller confirmed this number to be called back on (for the call record).
    Callback {
        /// The number, digits only.
        number: String,
    },
    /// Hang up.
    Hangup,
}

/// One thing that happened on the walk, for the call record and `simulate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathEvent {
    /// Entered a node.
    Enter(NodeId),
    /// The caller pressed a key.
    Key(char),
    /// A tag was set.
    Tag(String, String),
    /// No key before the timeout.
    NoInput,
    /// An entry that the node does not accept.
    Invalid(String),
    /// A hand-over did not work and the walk went on from a fallback.
    Fallback,
    /// The walk was cut short (too many transitions without the caller).
    Stuck,
}

/// A [`PathEvent`] with when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStep {
    /// When.
    pub at: Instant,
    /// What.
    pub event: PathEvent,
}

/// Where the walk stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// The number's notice is playing.
    Notice(Start),
    /// A `play` node's prompts are playing.
    Playing(NodeId),
    /// An input node's prompt is playing; keys interrupt it.
    Prompting(Input),
    /// Waiting for keys until the deadline.
    Waiting(Input, Instant),
    /// The last prompts before hanging up.
    Closing,
    /// Handed to a queue from this node.
    Queued(NodeId),
    /// Passing to a sub-centre; `fallback` when that fails.
    Transferring(NodeId),
    /// Hung up.
    Done,
}

/// The progress of a menu, collect, survey or callback node.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Input {
    node: NodeId,
    attempt: u8,
    digits: String,
    stage: Stage,
}

/// The step of an input node; only a callback node has more than one.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// A menu, collect or survey.
    Only,
    /// Callback: the caller types a number.
    Entry,
    /// Callback: 1 confirms the number, 2 types another.
    Confirm {
        /// The number read out.
        number: String,
        /// The caller typed it (else it is their own).
        entered: bool,
    },
}

/// One caller's walk through a dialplan.
#[derive(Debug)]
pub struct Navigation {
    plan: Arc<Plan>,
    caller: String,
    started: Instant,
    wall_at_start: NaiveDateTime,
    state: State,
    tags: Vec<(String, String)>,
    path: Vec<PathStep>,
    hops: u32,
}

impl Navigation {
    /// Starts a call to the number at `entry` from `caller`; `wall` is the local time now.
    pub fn start(
        plan: Arc<Plan>,
        entry: usize,
        caller: &str,
        now: Instant,
        wall: NaiveDateTime,
    ) -> (Navigation, Vec<Action>) {
        let mut nav = Navigation {
            plan,
            caller: caller.to_string(),
            started: now,
            wall_at_start: wall,
            state: State::Done,
            tags: Vec::new(),
            path: Vec::new(),
            hops: 0,
        };
        let mut actions = Vec::new();
        let plan = Arc::clone(&nav.plan);
        let Some(number) = plan.dialplan.numbers.get(entry) else {
            return (nav, vec![Action::Hangup]);
        };
        for (name, value) in &number.tags {
            nav.set_tag(now, name, value);
        }
        if number.notice.is_empty() {
            nav.begin(now, number.start, &mut actions);
        } else {
            nav.state = State::Notice(number.start);
            actions.push(Action::Play {
                prompts: number.notice.clone(),
                barge_in: false,
            });
        }
        (nav, actions)
    }

    /// The plan version this call runs on.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Tags set so far, in the order first set.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    /// The walk so far.
    pub fn path(&self) -> &[PathStep] {
        &self.path
    }

    /// Whether the walk has hung up.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The current playback ended (finished, or stopped after a key).
    pub fn on_play_finished(&mut self, now: Instant) -> Vec<Action> {
        self.hops = 0;
        let mut actions = Vec::new();
        let plan = self.shared_plan();
        match std::mem::replace(&mut self.state, State::Done) {
            State::Notice(start) => self.begin(now, start, &mut actions),
            State::Playing(node) => match plan.dialplan.kind(node) {
                Some(NodeKind::Play { next, .. }) => self.enter(now, *next, None, &mut actions),
                _ => actions.push(Action::Hangup),
            },
            State::Prompting(input) => {
                let wait = self.attempts(input.node).map(|a| a.timeout);
                let deadline = now + wait.unwrap_or_default();
                self.state = State::Waiting(input, deadline);
                actions.push(Action::Wake(deadline));
            }
            State::Closing => actions.push(Action::Hangup),
            other => self.state = other,
        }
        actions
    }

    /// The caller pressed a key.
    pub fn on_digit(&mut self, now: Instant, digit: char) -> Vec<Action> {
        self.hops = 0;
        let mut actions = Vec::new();
        let plan = self.shared_plan();
        match std::mem::replace(&mut self.state, State::Done) {
            State::Playing(node) => match plan.dialplan.kind(node) {
                Some(NodeKind::Play {
                    barge_in: true,
                    next,
                    ..
                }) => {
                    self.record(now, PathEvent::Key(digit));
                    actions.push(Action::StopPlay);
                    self.enter(now, *next, Some(digit), &mut actions);
                }
                _ => self.state = State::Playing(node),
            },
            State::Prompting(input) => {
                self.record_key(now, &input, digit);
                actions.push(Action::StopPlay);
                self.key(now, input, digit, &mut actions);
            }
            State::Waiting(input, _) => {
                self.record_key(now, &input, digit);
                self.key(now, input, digit, &mut actions);
            }
            other => self.state = other,
        }
        actions
    }

    /// A wake-up set with [`Action::Wake`] is due (stale ones are ignored).
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let State::Waiting(input, deadline) = &self.state else {
            return actions;
        };
        if now < *deadline {
            return actions;
        }
        self.hops = 0;
        let input = input.clone();
        self.state = State::Done;
        let plan = self.shared_plan();
        match plan.dialplan.kind(input.node) {
            Some(NodeKind::Menu(menu)) if !input.digits.is_empty() => {
                match menu.keys.iter().find(|(key, _)| *key == input.digits) {
                    Some(&(_, target)) => self.enter(now, target, None, &mut actions),
                    None => self.failed(now, input, false, &mut actions),
                }
            }
            Some(NodeKind::Collect(_)) if !input.digits.is_empty() => {
                self.finish_collect(now, input, &mut actions)
            }
            Some(NodeKind::Callback(_)) if !input.digits.is_empty() => {
                self.finish_entry(now, input, &mut actions)
            }
            _ => self.failed(now, input, true, &mut actions),
        }
        actions
    }

    /// The queue could not take the call (no seat logged in): go on from the fallback.
    pub fn on_queue_unavailable(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let plan = self.shared_plan();
        if let State::Queued(node) = self.state {
            if let Some(NodeKind::Queue { fallback, .. }) = plan.dialplan.kind(node) {
                self.record(now, PathEvent::Fallback);
                self.enter(now, *fallback, None, &mut actions);
            }
        }
        actions
    }

    /// The caller waited the queue's `max_wait` without a seat answering: go on from the
    /// queue's `after_max_wait`, else the queue node's `fallback`.
    pub fn on_queue_max_wait(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let plan = self.shared_plan();
        if let State::Queued(node) = self.state {
            if let Some(NodeKind::Queue {
                queue, fallback, ..
            }) = plan.dialplan.kind(node)
            {
                let decl = plan.dialplan.queues.get(queue.0 as usize);
                let to = decl.and_then(|q| q.after_max_wait).unwrap_or(*fallback);
                self.hops = 0;
                self.record(now, PathEvent::Fallback);
                self.enter(now, to, None, &mut actions);
            }
        }
        actions
    }

    /// The transfer to a sub-centre failed: go on from its fallback.
    pub fn on_transfer_failed(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if let State::Transferring(fallback) = self.state {
            self.record(now, PathEvent::Fallback);
            self.enter(now, fallback, None, &mut actions);
        }
        actions
    }

    /// The seat the queue connected hung up: go to the queue node's `after` (e.g. a survey).
    pub fn on_seat_hung_up(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let plan = self.shared_plan();
        if let State::Queued(node) = self.state {
            match plan.dialplan.kind(node) {
                Some(NodeKind::Queue {
                    after: Some(after), ..
                }) => {
                    self.hops = 0;
                    self.enter(now, *after, None, &mut actions);
                }
                _ => {
                    self.state = State::Done;
                    actions.push(Action::Hangup);
                }
            }
        }
        actions
    }

    /// The local wall-clock time at `now`.
    pub fn wall_time(&self, now: Instant) -> NaiveDateTime {
        let elapsed = now.saturating_duration_since(self.started);
        self.wall_at_start + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    fn begin(&mut self, now: Instant, start: Start, actions: &mut Vec<Action>) {
        match start {
            Start::Node(node) => self.enter(now, node, None, actions),
            Start::SubCentre {
                subcentre,
                fallback,
            } => {
                self.state = State::Transferring(fallback);
                actions.push(Action::Transfer { subcentre });
            }
        }
    }

    /// Enters `node`; `carried` is a key that interrupted the previous playback.
    fn enter(
        &mut self,
        now: Instant,
        mut node: NodeId,
        carried: Option<char>,
        actions: &mut Vec<Action>,
    ) {
        let plan = Arc::clone(&self.plan);
        loop {
            self.hops += 1;
            if self.hops > MAX_HOPS {
                self.record(now, PathEvent::Stuck);
                self.state = State::Done;
                actions.push(Action::Hangup);
                return;
            }
            let Some(spec) = plan.dialplan.nodes.get(node.0 as usize) else {
                self.state = State::Done;
                actions.push(Action::Hangup);
                return;
            };
            self.record(now, PathEvent::Enter(node));
            for (name, value) in &spec.tags {
                self.set_tag(now, name, value);
            }
            match &spec.kind {
                NodeKind::Play {
                    prompts,
                    barge_in,
                    next,
                } => {
                    if *barge_in && carried.is_some() {
                        node = *next;
                        continue;
                    }
                    self.state = State::Playing(node);
                    actions.push(Action::Play {
                        prompts: prompts.clone(),
                        barge_in: *barge_in,
                    });
                }
                NodeKind::Menu(_) | NodeKind::Collect(_) | NodeKind::Survey(_) => {
                    let input = Input {
                        node,
                        attempt: 1,
                        digits: String::new(),
                        stage: Stage::Only,
                    };
                    match carried {
                        Some(digit) => self.key(now, input, digit, actions),
                        None => self.prompt(input, Vec::new(), actions),
                    }
                }
                NodeKind::Branch { rules, otherwise } => {
                    let wall = self.wall_time(now);
                    node = rules
                        .iter()
                        .find(|rule| self.holds(&plan.dialplan, &rule.condition, wall))
                        .map_or(*otherwise, |rule| rule.goto);
                    continue;
                }
                NodeKind::Goto(target) => {
                    node = *target;
                    continue;
                }
                NodeKind::Queue {
                    queue, priority, ..
                } => {
                    self.state = State::Queued(node);
                    actions.push(Action::Queue {
                        queue: *queue,
                        priority: *priority,
                    });
                }
                NodeKind::Transfer {
                    subcentre,
                    fallback,
                } => {
                    self.state = State::Transferring(*fallback);
                    actions.push(Action::Transfer {
                        subcentre: *subcentre,
                    });
                }
                NodeKind::Callback(offer) => {
                    let stage = match offer.propose {
                        CallbackNumber::Caller if callback_number(&self.caller) => Stage::Confirm {
                            number: self.caller.clone(),
                            entered: false,
                        },
                        _ => Stage::Entry,
                    };
                    let input = Input {
                        node,
                        attempt: 1,
                        digits: String::new(),
                        stage,
                    };
                    match carried {
                        Some(digit) => self.key(now, input, digit, actions),
                        None => self.prompt(input, Vec::new(), actions),
                    }
                }
                NodeKind::Hangup { prompts } if prompts.is_empty() => {
                    self.state = State::Done;
                    actions.push(Action::Hangup);
                }
                NodeKind::Hangup { prompts } => {
                    self.state = State::Closing;
                    actions.push(Action::Play {
                        prompts: prompts.clone(),
                        barge_in: false,
                    });
                }
            }
            return;
        }
    }

    /// Plays `before` then the input node's own prompt, interruptible.
    fn prompt(&mut self, input: Input, mut before: Vec<PromptName>, actions: &mut Vec<Action>) {
        match self.plan.dialplan.kind(input.node) {
            Some(NodeKind::Menu(menu)) => before.extend_from_slice(&menu.prompts),
            Some(NodeKind::Collect(collect)) => before.extend_from_slice(&collect.prompts),
            Some(NodeKind::Survey(survey)) => before.extend_from_slice(&survey.prompts),
            Some(NodeKind::Callback(offer)) => match &input.stage {
                Stage::Confirm { number, entered } => {
                    match entered {
                        true => before.push("queue/callback-entered".to_string()),
                        false => before.extend_from_slice(&offer.prompts),
                    }
                    before.extend(spoken_digits(number));
                    before.push("queue/callback-confirm".to_string());
                }
                _ => {
                    // With `ask` the node's own prompts introduce the entry.
                    if offer.propose == CallbackNumber::Ask {
                        before.extend_from_slice(&offer.prompts);
                    }
                    before.push("queue/callback-enter".to_string());
                }
            },
            _ => {}
        }
        self.state = State::Prompting(input);
        actions.push(Action::Play {
            prompts: before,
            barge_in: true,
        });
    }

    /// A key for an input node.
    fn key(&mut self, now: Instant, mut input: Input, digit: char, actions: &mut Vec<Action>) {
        let plan = self.shared_plan();
        match plan.dialplan.kind(input.node) {
            Some(NodeKind::Menu(menu)) => {
                input.digits.push(digit);
                let exact = menu.keys.iter().find(|(key, _)| *key == input.digits);
                let longer = menu.keys.iter().any(|(key, _)| {
                    key.len() > input.digits.len() && key.starts_with(&input.digits)
                });
                match (exact, longer) {
                    (Some(&(_, target)), false) => self.enter(now, target, None, actions),
                    (_, true) => self.wait(now, input, menu.attempts.inter_digit, actions),
                    (None, false) => self.failed(now, input, false, actions),
                }
            }
            Some(NodeKind::Collect(collect)) => {
                if Some(digit) == collect.terminator {
                    return self.finish_collect(now, input, actions);
                }
                input.digits.push(digit);
                if input.digits.len() >= collect.max_digits {
                    self.finish_collect(now, input, actions)
                } else {
                    self.wait(now, input, collect.attempts.inter_digit, actions)
                }
            }
            Some(NodeKind::Survey(survey)) => match digit {
                '1'..='5' => {
                    self.set_tag(now, &survey.tag, &digit.to_string());
                    self.enter(now, survey.next, None, actions);
                }
                _ => {
                    input.digits.push(digit);
                    self.failed(now, input, false, actions)
                }
            },
            Some(NodeKind::Callback(offer)) => match (&input.stage, digit) {
                (Stage::Confirm { number, .. }, '1') => {
                    actions.push(Action::Callback {
                        number: number.clone(),
                    });
                    self.enter(now, offer.next, None, actions);
                }
                (Stage::Confirm { .. }, '2') => {
                    let entry = Input {
                        node: input.node,
                        attempt: 1,
                        digits: String::new(),
                        stage: Stage::Entry,
                    };
                    self.prompt(entry, Vec::new(), actions);
                }
                (Stage::Entry, '#') => self.finish_entry(now, input, actions),
                (Stage::Entry, '0'..='9') if input.digits.len() < CALLBACK_MAX_DIGITS => {
                    input.digits.push(digit);
                    self.wait(now, input, offer.attempts.inter_digit, actions);
                }
                (Stage::Entry, _) => {
                    input.digits = private_entry(&input.digits);
                    self.failed(now, input, false, actions)
                }
                _ => {
                    input.digits.push(digit);
                    self.failed(now, input, false, actions)
                }
            },
            _ => {}
        }
    }

    /// A callback number typed (ended by `#` or a pause): read it back for confirmation.
    fn finish_entry(&mut self, now: Instant, mut input: Input, actions: &mut Vec<Action>) {
        if !callback_number(&input.digits) {
            input.digits = private_entry(&input.digits);
            return self.failed(now, input, false, actions);
        }
        let confirm = Input {
            node: input.node,
            attempt: 1,
            digits: String::new(),
            stage: Stage::Confirm {
                number: input.digits,
                entered: true,
            },
        };
        self.prompt(confirm, Vec::new(), actions);
    }

    fn wait(&mut self, now: Instant, input: Input, wait: Duration, actions: &mut Vec<Action>) {
        let deadline = now + wait;
        self.state = State::Waiting(input, deadline);
        actions.push(Action::Wake(deadline));
    }

    fn finish_collect(&mut self, now: Instant, input: Input, actions: &mut Vec<Action>) {
        let plan = self.shared_plan();
        let Some(NodeKind::Collect(collect)) = plan.dialplan.kind(input.node) else {
            return;
        };
        if input.digits.len() < collect.min_digits {
            return self.failed(now, input, false, actions);
        }
        self.set_tag(now, &collect.tag, &input.digits);
        self.enter(now, collect.next, None, actions);
    }

    /// A wrong entry or a timeout: try again, or leave by the node's way out.
    fn failed(&mut self, now: Instant, input: Input, no_input: bool, actions: &mut Vec<Action>) {
        let event = match no_input {
            true => PathEvent::NoInput,
            false => PathEvent::Invalid(input.digits.clone()),
        };
        self.record(now, event);
        let plan = self.shared_plan();
        let Some(attempts) = self.attempts(input.node).cloned() else {
            return;
        };
        if input.attempt >= attempts.retries {
            let out = match plan.dialplan.kind(input.node) {
                Some(NodeKind::Menu(menu)) => menu.fail,
                Some(NodeKind::Collect(collect)) => collect.fail,
                Some(NodeKind::Survey(survey)) => survey.next,
                Some(NodeKind::Callback(offer)) => offer.fallback,
                _ => return,
            };
            return self.enter(now, out, None, actions);
        }
        let before = match no_input {
            true => attempts.no_input.clone(),
            false => attempts.invalid.clone(),
        };
        let retry = Input {
            node: input.node,
            attempt: input.attempt + 1,
            digits: String::new(),
            stage: input.stage,
        };
        self.prompt(retry, before, actions);
    }

    fn holds(&self, dialplan: &Dialplan, condition: &Condition, wall: NaiveDateTime) -> bool {
        let open = |id: &super::model::ScheduleId| {
            dialplan
                .schedules
                .get(id.0 as usize)
                .is_some_and(|s| s.is_open(&dialplan.calendars, wall))
        };
        let listed = |id: &super::model::ListId| {
            dialplan
                .lists
                .get(id.0 as usize)
                .is_some_and(|l| l.numbers.contains(&self.caller))
        };
        match condition {
            Condition::Open(id) => open(id),
            Condition::Closed(id) => !open(id),
            Condition::CallerIn(id) => listed(id),
            Condition::CallerNotIn(id) => !listed(id),
            Condition::Tag { name, value } => {
                self.tags.iter().any(|(n, v)| n == name && v == value)
            }
        }
    }

    /// The plan, held apart from `self` so a node can be read while the walk changes.
    fn shared_plan(&self) -> Arc<Plan> {
        Arc::clone(&self.plan)
    }

    fn attempts(&self, node: NodeId) -> Option<&Attempts> {
        match self.plan.dialplan.kind(node)? {
            NodeKind::Menu(menu) => Some(&menu.attempts),
            NodeKind::Collect(collect) => Some(&collect.attempts),
            NodeKind::Survey(survey) => Some(&survey.attempts),
            NodeKind::Callback(offer) => Some(&offer.attempts),
            _ => None,
        }
    }

    fn set_tag(&mut self, now: Instant, name: &str, value: &str) {
        match self.tags.iter_mut().find(|(n, _)| n == name) {
            Some(tag) => tag.1 = value.to_string(),
            None => self.tags.push((name.to_string(), value.to_string())),
        }
        self.record(now, PathEvent::Tag(name.to_string(), value.to_string()));
    }

    /// Keys go on the path, except the digits of a collect or of a callback number (an ID or
    /// phone number is private; its tag or the call record's callback carries it).
    fn record_key(&mut self, now: Instant, input: &Input, digit: char) {
        let private = input.stage == Stage::Entry
            || matches!(
                self.plan.dialplan.kind(input.node),
                Some(NodeKind::Collect(_))
            );
        if !private {
            self.record(now, PathEvent::Key(digit));
        }
    }

    fn record(&mut self, at: Instant, event: PathEvent) {
        self.path.push(PathStep { at, event });
    }
}

/// Whether `number` can be called back: 5 to 20 digits.
fn callback_number(number: &str) -> bool {
    (CALLBACK_MIN_DIGITS..=CALLBACK_MAX_DIGITS).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// A refused phone number entry as it may appear on the path: its length, not its digits.
fn private_entry(digits: &str) -> String {
    format!("{} digits", digits.len())
}
