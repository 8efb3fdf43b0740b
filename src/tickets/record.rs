//! The call record: one per caller call, whatever happened to it. Supervision and assessment
//! (监督考核) are computed from these, and the ticket system receives them as JSON.
//!
//! The JSON form is the contract with the ticket system and the provincial platform: fields are
//! only ever added (with `#[serde(default)]`), and `schema` says which version wrote a record.
//! `docs/call-records.md` documents every field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version of the record's JSON form this engine writes.
pub const SCHEMA_VERSION: u32 = 2;

/// A timestamp with millisecond precision (RFC 3339 in JSON, UTC).
pub type Timestamp = DateTime<Utc>;

/// Everything known about one caller call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    /// Version of this form ([`SCHEMA_VERSION`] when written).
    pub schema: u32,
    /// Stable id (UUID v4); the idempotency key for exporters.
    pub id: String,
    /// SIP Call-IDs of every leg, the caller's first.
    pub sip_call_ids: Vec<String>,
    /// The caller.
    pub caller: Party,
    /// The number dialled (after stripping), as read from the INVITE.
    pub dialled: String,
    /// The hotline the number belongs to (`line` in the dialplan), when it is a declared one.
    #[serde(default)]
    pub hotline: Option<String>,
    /// `unified`, `retired`, `dual` or `subcentre`, when the number is declared.
    #[serde(default)]
    pub merge_mode: Option<String>,
    /// When things happened.
    pub times: Times,
    /// The walk through the dialplan: nodes entered and keys pressed, in order.
    #[serde(default)]
    pub navigation: Vec<NavigationStep>,
    /// Tags the dialplan set (topic, language, elderly-priority, survey answers...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Queues the call was handed to, in order.
    #[serde(default)]
    pub queues: Vec<QueueVisit>,
    /// Transfers and hand-overs to sub-centres, in order.
    #[serde(default)]
    pub transfers: Vec<TransferAttempt>,
    /// Seconds from arrival to a person answering (or to the end when no one did).
    #[serde(default)]
    pub wait_s: f64,
    /// Seconds talking to a person or a sub-centre.
    #[serde(default)]
    pub talk_s: f64,
    /// How the call ended; `None` while it runs (a progress row).
    #[serde(default)]
    pub end: Option<CallEnd>,
    /// Recordings of the call (质检).
    #[serde(default)]
    pub recordings: Vec<Recording>,
    /// The satisfaction survey's answer, 1..=5.
    #[serde(default)]
    pub survey: Option<u8>,
    /// A callback the caller asked for.
    #[serde(default)]
    pub callback: Option<Callback>,
}

/// A party to the call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The number (From user part).
    pub number: String,
    /// The display name, if the caller's phone sent one.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Milestones of a call; each is set once, when it happens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Times {
    /// The INVITE arrived.
    pub arrived: Timestamp,
    /// The engine answered (200 sent).
    #[serde(default)]
    pub answered: Option<Timestamp>,
    /// The dialplan handed the call on (queue, transfer) or ended.
    #[serde(default)]
    pub navigation_ended: Option<Timestamp>,
    /// The call entered its first queue.
    #[serde(default)]
    pub queued: Option<Timestamp>,
    /// A person (seat or sub-centre) answered.
    #[serde(default)]
    pub person_answered: Option<Timestamp>,
    /// The call ended.
    #[serde(default)]
    pub ended: Option<Timestamp>,
}

/// One step of the dialplan walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NavigationStep {
    /// When.
    pub at: Timestamp,
    /// A node entered, or the node a key was pressed in.
    pub node: String,
    /// The key, timeout or rejected entry, when the step is one (`"2"`, `"timeout"`,
    /// `"invalid"`); collected digits are not recorded here (their tag holds them).
    #[serde(default)]
    pub input: Option<String>,
}

/// A queue the call was handed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueVisit {
    /// The queue (skill group).
    pub queue: String,
    /// Its priority, 0..=9.
    pub priority: u8,
    /// When the call entered it.
    pub entered: Timestamp,
    /// When it left it.
    #[serde(default)]
    pub left: Option<Timestamp>,
    /// `answered`, `no-seat`, `abandoned`, `max-wait`, `removed`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The seat that answered (schema 2).
    #[serde(default)]
    pub seat: Option<String>,
    /// Each offer of the call to a seat, in order (schema 2).
    #[serde(default)]
    pub offers: Vec<SeatOffer>,
}

/// The call offered to one seat (its phone rang).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatOffer {
    /// The seat's id.
    pub seat: String,
    /// When its phone was called.
    pub offered: Timestamp,
    /// When the offer ended (answered, or not).
    #[serde(default)]
    pub ended: Option<Timestamp>,
    /// `answered`, `no-answer`, `declined`, `answered-elsewhere`, `logged-out`, `caller-gone`.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// A transfer attempt (to a sub-centre, or later by a seat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferAttempt {
    /// `subcentre` (a hand-over by the dialplan), later `blind`, `consult`, `three-way`.
    pub kind: String,
    /// The target (sub-centre name, seat id, queue).
    pub target: String,
    /// The seat that made it; none for the dialplan's hand-overs.
    #[serde(default)]
    pub by: Option<String>,
    /// The seat called in or sent the caller (`seat:ID`, or the seat picked from `queue:NAME`).
    #[serde(default)]
    pub seat: Option<String>,
    /// When it started.
    pub started: Timestamp,
    /// When the target answered.
    #[serde(default)]
    pub answered: Option<Timestamp>,
    /// When it ended.
    #[serde(default)]
    pub ended: Option<Timestamp>,
    /// `answered`, a SIP status (`486`), `no-answer`, `closed`, `timeout`...
    #[serde(default)]
    pub outcome: Option<String>,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallEnd {
    /// Who ended it: `caller`, `engine`, `subcentre`, `seat`.
    pub by: String,
    /// Why: `bye`, `cancel`, `dialplan`, `media-timeout`, `no-ack`, `shutdown`, `refused`.
    /// A call the engine stopped during has no `end` at all (it stays unfinished).
    pub cause: String,
    /// The SIP status the caller got when the call was refused (404, 487, 503...).
    #[serde(default)]
    pub sip_status: Option<u16>,
}

/// A recording of the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    /// The WAV file, relative to the data directory.
    pub path: String,
    /// `ok` or what went wrong (`write-error: ...`).
    pub status: String,
}

/// A callback the caller asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// The number to call back.
    pub number: String,
    /// When it was asked for.
    pub requested: Timestamp,
}

impl CallRecord {
    /// A new record for a call arriving `at`.
    pub fn new(
        id: String,
        sip_call_id: String,
        caller: Party,
        dialled: String,
        at: Timestamp,
    ) -> Self {
        CallRecord {
            schema: SCHEMA_VERSION,
            id,
            sip_call_ids: vec![sip_call_id],
            caller,
            dialled,
            hotline: None,
            merge_mode: None,
            times: Times {
                arrived: at,
                ..Times::default()
            },
            navigation: Vec::new(),
            tags: BTreeMap::new(),
            queues: Vec::new(),
            transfers: Vec::new(),
            wait_s: 0.0,
            talk_s: 0.0,
            end: None,
            recordings: Vec::new(),
            survey: None,
            callback: None,
        }
    }

    /// Whether the call has ended (a final record, not a progress row).
    pub fn is_finished(&self) -> bool {
        self.end.is_some()
    }
}
