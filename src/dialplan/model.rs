//! The validated dialplan: what the loader builds from the files and the interpreter walks.
//!
//! References between items are indexes checked by the loader, so the interpreter never looks a
//! name up or meets a dangling reference.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveDate;

/// Index of a node in [`Dialplan::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Index of a schedule in [`Dialplan::schedules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScheduleId(pub u32);

/// Index of a calendar in [`Dialplan::calendars`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CalendarId(pub u32);

/// Index of a number list in [`Dialplan::lists`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListId(pub u32);

/// Index of a queue in [`Dialplan::queues`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueId(pub u32);

/// Index of a sub-centre in [`Dialplan::subcentres`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubCentreId(pub u32);

/// Where an item was declared, for logs and `simulate`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Origin {
    /// The file, as shown in messages (e.g. `dialplans/12345.toml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// A prompt name (`12333/greeting` = `prompts/12333/greeting.wav`).
pub type PromptName = String;

/// A whole validated dialplan set.
#[derive(Clone, Debug, Default)]
pub struct Dialplan {
    /// Declared numbers, in file order.
    pub numbers: Vec<NumberEntry>,
    /// Exact numbers → index in `numbers`.
    pub exact: HashMap<String, usize>,
    /// Prefixes with their index in `numbers`, longest first.
    pub prefixes: Vec<(String, usize)>,
    /// `[numbering]`.
    pub numbering: Numbering,
    /// `[unknown]`.
    pub unknown: UnknownTreatment,
    /// Local time offset from UTC in seconds (`[clock] utc_offset`).
    pub utc_offset_s: i32,
    /// All nodes.
    pub nodes: Vec<Node>,
    /// Node names → ids.
    pub node_ids: HashMap<String, NodeId>,
    /// All schedules.
    pub schedules: Vec<Schedule>,
    /// All calendars.
    pub calendars: Vec<Calendar>,
    /// All number lists.
    pub lists: Vec<NumberList>,
    /// All queues (skill groups).
    pub queues: Vec<QueueDecl>,
    /// All sub-centres.
    pub subcentres: Vec<SubCentre>,
    /// Every prompt name the set plays (checked to exist when loaded).
    pub prompts: BTreeSet<PromptName>,
}

impl Dialplan {
    /// What the node does.
    pub fn kind(&self, node: NodeId) -> Option<&NodeKind> {
        self.nodes.get(node.0 as usize).map(|n| &n.kind)
    }

    /// The node's name (for logs).
    pub fn node_name(&self, node: NodeId) -> &str {
        self.nodes
            .get(node.0 as usize)
            .map_or("?", |n| n.name.as_str())
    }
}

/// `[numbering]`: how the dialled number is read from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Numbering {
    /// Parts tried in order.
    pub match_on: Vec<MatchOn>,
    /// Prefixes removed before matching (e.g. `+86`).
    pub strip: Vec<String>,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering {
            match_on: vec![MatchOn::RequestUri],
            strip: Vec::new(),
        }
    }
}

/// A part of the INVITE the dialled number is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOn {
    /// The Request-URI's user part.
    RequestUri,
    /// The To header URI's user part.
    To,
}

/// What happens to a call to a number that matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnknownTreatment {
    /// Announce (early media) then refuse with `status`.
    Reject {
        /// Prompts played before the status (may be empty).
        prompts: Vec<PromptName>,
        /// The final status, 400..=699.
        status: u16,
    },
    /// Handle it as a call to the number at this index of [`Dialplan::numbers`].
    Route(usize),
}

impl Default for UnknownTreatment {
    fn default() -> Self {
        UnknownTreatment::Reject {
            prompts: Vec::new(),
            status: 404,
        }
    }
}

/// How a legacy line was merged into 12345 (or 12345 itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// The unified number.
    Unified,
    /// 整体并入: retired, answered as 12345.
    Retired,
    /// 双号并行: own greeting and menu, served in the 12345 centre.
    Dual,
    /// 分中心: passed to the sub-centre's trunk.
    SubCentre,
}

impl MergeMode {
    /// The word used in the files and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMode::Unified => "unified",
            MergeMode::Retired => "retired",
            MergeMode::Dual => "dual",
            MergeMode::SubCentre => "subcentre",
        }
    }
}

/// Exact number or prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberPattern {
    /// This number only.
    Exact(String),
    /// Every number starting with this.
    Prefix(String),
}

/// One `[[numbers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberEntry {
    /// What it matches.
    pub pattern: NumberPattern,
    /// Its merge mode.
    pub mode: MergeMode,
    /// The hotline's name.
    pub line: String,
    /// Prompts played first, not interruptible.
    pub notice: Vec<PromptName>,
    /// Tags set when the call arrives.
    pub tags: Vec<(String, String)>,
    /// Where the call goes after the notice.
    pub start: Start,
    /// Where it was declared.
    pub origin: Origin,
}

/// Where a number's calls begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Navigation from this node.
    Node(NodeId),
    /// Straight to a sub-centre's trunk; `fallback` when that fails.
    SubCentre {
        /// The sub-centre.
        subcentre: SubCentreId,
        /// Where the call goes when the trunk fails.
        fallback: NodeId,
    },
}

/// A named node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Tags set on entry.
    pub tags: Vec<(String, String)>,
    /// What it does.
    pub kind: NodeKind,
    /// Where it was declared.
    pub origin: Origin,
}

/// What a node does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Play prompts, then go on.
    Play {
        /// The prompts, in order.
        prompts: Vec<PromptName>,
        /// A key stops the playback and is carried to `next`.
        barge_in: bool,
        /// The next node.
        next: NodeId,
    },
    /// A menu of keys.
    Menu(Menu),
    /// Collect a digit string into a tag.
    Collect(Collect),
    /// Ask for a 1–5 rating into a tag.
    Survey(Survey),
    /// The first rule that holds decides; else `otherwise`.
    Branch {
        /// Rules, in order.
        rules: Vec<Rule>,
        /// When no rule holds.
        otherwise: NodeId,
    },
    /// Go to another node.
    Goto(NodeId),
    /// Hand the call to a queue.
    Queue {
        /// The queue.
        queue: QueueId,
        /// 0..=9, higher first.
        priority: u8,
        /// When the queue cannot take the call.
        fallback: NodeId,
        /// Where the caller goes when the seat hangs up.
        after: Option<NodeId>,
    },
    /// Pass the call to a sub-centre.
    Transfer {
        /// The sub-centre.
        subcentre: SubCentreId,
        /// When the transfer fails.
        fallback: NodeId,
    },
    /// Take a number to call the caller back on.
    Callback(CallbackOffer),
    /// Play, then hang up.
    Hangup {
        /// The prompts (may be empty).
        prompts: Vec<PromptName>,
    },
}

/// Timing and retry settings shared by menus, collects and surveys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempts {
    /// Wait for the first key after the prompt.
    pub timeout: Duration,
    /// Wait between keys.
    pub inter_digit: Duration,
    /// Attempts before giving up.
    pub retries: u8,
    /// Played after a wrong entry.
    pub invalid: Vec<PromptName>,
    /// Played after a timeout without a key.
    pub no_input: Vec<PromptName>,
}

/// A `menu` node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    /// The menu prompt (always interruptible).
    pub prompts: Vec<PromptName>,
    /// Keys (one or more digits) → node, including an implied `0` → operator.
    pub keys: Vec<(String, NodeId)>,
    /// Timing and retries.
    pub attempts: Attempts,
    /// After the last failed attempt.
    pub fail: NodeId,
}

/// A `collect` node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collect {
    /// The prompt (always interruptible).
    pub prompts: Vec<PromptName>,
    /// The tag that receives the digits.
    pub tag: String,
    /// Fewest digits accepted.
    pub min_digits: usize,
    /// Most digits; reaching it ends the entry.
    pub max_digits: usize,
    /// Ends the entry early.
    pub terminator: Option<char>,
    /// Timing and retries.
    pub attempts: Attempts,
    /// After a complete entry.
    pub next: NodeId,
    /// After the last failed attempt.
    pub fail: NodeId,
}

/// A `survey` node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Survey {
    /// The question.
    pub prompts: Vec<PromptName>,
    /// The tag that receives "1".."5".
    pub tag: String,
    /// Timing and retries.
    pub attempts: Attempts,
    /// Where the caller goes next (answered or not).
    pub next: NodeId,
}

/// Fewest digits of a callback number.
pub const CALLBACK_MIN_DIGITS: usize = 5;
/// Most digits of a callback number.
pub const CALLBACK_MAX_DIGITS: usize = 20;

/// Which number a `callback` node proposes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackNumber {
    /// The caller's own number, when it is 5 to 20 digits; else the caller types one.
    Caller,
    /// None: the caller types one.
    Ask,
}

/// A `callback` node: the caller confirms (or types) the number to be called back on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackOffer {
    /// What is proposed first.
    pub propose: CallbackNumber,
    /// Played before the proposed number (or, with `ask`, before the entry prompt).
    pub prompts: Vec<PromptName>,
    /// Timing and retries of each step.
    pub attempts: Attempts,
    /// After the number is confirmed.
    pub next: NodeId,
    /// When no usable number was confirmed.
    pub fallback: NodeId,
}

/// One `branch` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What must hold.
    pub condition: Condition,
    /// Where to go when it does.
    pub goto: NodeId,
}

/// A condition on time or on the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The schedule is open now.
    Open(ScheduleId),
    /// The schedule is closed now.
    Closed(ScheduleId),
    /// The caller's number is on the list.
    CallerIn(ListId),
    /// The caller's number is not on the list.
    CallerNotIn(ListId),
    /// The tag has this value.
    Tag {
        /// Tag name.
        name: String,
        /// Expected value.
        value: String,
    },
}

/// A `[schedules.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// 7×24.
    pub always: bool,
    /// Opening intervals.
    pub hours: Vec<Interval>,
    /// Holidays close, make-up workdays open (with Monday's hours).
    pub calendar: Option<CalendarId>,
}

/// An opening interval on some weekdays; `end <= start` runs past midnight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Weekdays it starts on, Monday = 0.
    pub days: [bool; 7],
    /// Start, minutes after midnight.
    pub start_min: u16,
    /// End, minutes after midnight (1440 = 24:00).
    pub end_min: u16,
}

/// A `[calendars.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// Its name.
    pub name: String,
    /// Closed days.
    pub holidays: BTreeSet<NaiveDate>,
    /// Weekend days worked, with Monday's hours.
    pub workdays: BTreeSet<NaiveDate>,
}

/// A `[lists.NAME]`: caller numbers read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberList {
    /// Its name.
    pub name: String,
    /// The numbers.
    pub numbers: HashSet<String>,
}

/// How a queue picks the seat that rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The free seat that has waited longest since its last call.
    #[default]
    LongestIdle,
    /// Free seats in turn.
    RoundRobin,
    /// Every free seat at once; the first to answer takes the call.
    RingAll,
}

impl Strategy {
    /// The word used in the files.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest-idle",
            Strategy::RoundRobin => "round-robin",
            Strategy::RingAll => "ring-all",
        }
    }
}

/// A `[queues.NAME]`: a skill group and how its waiting callers are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDecl {
    /// Its name (the key).
    pub name: String,
    /// Display name.
    pub display: String,
    /// The skill a seat needs.
    pub skill: String,
    /// The lowest skill level (1..=5) a seat needs.
    pub min_level: u8,
    /// A group of expert seats.
    pub experts: bool,
    /// Which free seat rings.
    pub strategy: Strategy,
    /// A seat that does not answer within this is skipped.
    pub ring_timeout: Duration,
    /// After-call work time before a seat of this group is offered another call.
    pub wrap_up: Duration,
    /// Waiting this long makes the call overflow (required when there is somewhere to go).
    pub overflow_after: Option<Duration>,
    /// Queues whose seats may take the call once it overflows, in order.
    pub overflow_to: Vec<QueueId>,
    /// Expert seats with this skill may take the call once it overflows.
    pub overflow_experts: bool,
    /// The longest a caller waits.
    pub max_wait: Duration,
    /// Where the caller goes at `max_wait`; `None`: the queue node's `fallback`.
    pub after_max_wait: Option<NodeId>,
    /// Prompts looped while the caller waits.
    pub music: Vec<PromptName>,
    /// Period of the position/estimated-wait announcement; `None`: never.
    pub announce_every: Option<Duration>,
    /// Calls answered from this queue are recorded.
    pub record: bool,
}

impl QueueDecl {
    /// A queue `name` with the documented defaults (skill = name).
    pub fn new(name: &str) -> QueueDecl {
        QueueDecl {
            name: name.to_string(),
            display: name.to_string(),
            skill: name.to_string(),
            min_level: 1,
            experts: false,
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(20),
            wrap_up: Duration::from_secs(30),
            overflow_after: None,
            overflow_to: Vec::new(),
            overflow_experts: false,
            max_wait: Duration::from_secs(300),
            after_max_wait: None,
            music: vec!["queue/music".to_string()],
            announce_every: Some(Duration::from_secs(30)),
            record: true,
        }
    }
}

/// SIP transport to a trunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunkTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// A `[subcentres.NAME]`: a sub-centre PBX reached over a SIP trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubCentre {
    /// Its name (the key).
    pub name: String,
    /// Display name.
    pub display: String,
    /// The PBX's SIP address.
    pub trunk: SocketAddr,
    /// Transport to it.
    pub transport: TrunkTransport,
    /// Request-URI user sent to the trunk; `None` = the number dialled.
    pub number: Option<String>,
    /// Digest username (empty: none).
    pub username: String,
    /// Digest password.
    pub password: String,
    /// 7×24.
    pub always_open: bool,
    /// When it takes calls, with `always_open = false`.
    pub schedule: Option<ScheduleId>,
    /// External numbers a seat may transfer a caller to over this trunk (`number:DIGITS`).
    pub dial_out: Vec<DialPattern>,
    /// How long it may ring before the engine gives up (CANCEL).
    pub ring_timeout: Duration,
    /// Where a caller a seat passed on blind goes when the sub-centre does not take the call;
    /// `None`: back to the queue the caller came from.
    pub unanswered: Option<QueueId>,
}

/// How long a sub-centre rings before the engine gives up, unless it sets `ring_timeout_s`.
pub const DEFAULT_SUBCENTRE_RING: Duration = Duration::from_secs(30);

/// The most digits an external number (a `number:` target, a `dial_out` pattern) may have.
pub const MAX_DIALLED_DIGITS: usize = 24;

/// One `dial_out` pattern: digits, `?` for exactly one digit, and a final `*` for any further
/// digits (none included): `"0571*"`, `"1??????????"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialPattern {
    /// The pattern as written.
    text: String,
}

/// Why a `dial_out` pattern is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialPatternError {
    /// Nothing to match.
    #[error("it is empty")]
    Empty,
    /// A character other than a digit, `?` or `*`.
    #[error("`{0}` is not allowed")]
    Character(char),
    /// A `*` before the end.
    #[error("`*` is only allowed at the end")]
    StarInside,
    /// A `*` with nothing before it would let a seat dial anything.
    #[error("`*` alone would allow every number")]
    StarAlone,
    /// More positions than any number we dial has.
    #[error("it is longer than {MAX_DIALLED_DIGITS} digits")]
    TooLong,
}

impl DialPattern {
    /// Reads a pattern.
    pub fn parse(text: &str) -> Result<DialPattern, DialPatternError> {
        let (fixed, open) = match text.strip_suffix('*') {
            Some(fixed) => (fixed, true),
            None => (text, false),
        };
        if text.is_empty() {
            return Err(DialPatternError::Empty);
        }
        if open && fixed.is_empty() {
            return Err(DialPatternError::StarAlone);
        }
        if let Some(c) = fixed.chars().find(|c| !c.is_ascii_digit() && *c != '?') {
            return Err(match c {
                '*' => DialPatternError::StarInside,
                other => DialPatternError::Character(other),
            });
        }
        if fixed.len() > MAX_DIALLED_DIGITS {
            return Err(DialPatternError::TooLong);
        }
        Ok(DialPattern {
            text: text.to_string(),
        })
    }

    /// Whether `number` (digits only) is one the pattern allows.
    pub fn matches(&self, number: &str) -> bool {
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let (fixed, open) = match self.text.strip_suffix('*') {
            Some(fixed) => (fixed, true),
            None => (self.text.as_str(), false),
        };
        let long_enough = match open {
            true => number.len() >= fixed.len(),
            false => number.len() == fixed.len(),
        };
        long_enough
            && fixed
                .bytes()
                .zip(number.bytes())
                .all(|(p, d)| p == b'?' || p == d)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}
