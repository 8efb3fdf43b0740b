//! Keeping each call's record as the call goes: opened when the INVITE arrives (a progress row,
//! so a crash leaves the call visible as unfinished), noted at each hand-over, finished when the
//! call ends. The shell writes what `poll_output` hands it to the ticket store.

use std::time::Instant;

use super::{Switch, Wake};
use crate::acd::SeatId;
use crate::call::caller::{CallId, CallRoute, Caller, Ending};
use crate::dialplan::clock::WallClock;
use crate::dialplan::navigation::{Navigation, PathEvent};
use crate::media::control::{LegId, MediaCommand};
use crate::sip::fields::Fields;
use crate::sip::message::Request;
use crate::tickets::record::{
    CallEnd, CallRecord, NavigationStep, Party, QueueVisit, Recording, Timestamp, TransferAttempt,
};

/// How long a finished call's record waits for the recorder to close its WAV.
const RECORDER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Switch {
    /// The record of a call arriving now with `invite`.
    pub(super) fn open_record(
        &mut self,
        now: Instant,
        invite: &Request,
        route: &CallRoute,
    ) -> CallRecord {
        let id = uuid::Builder::from_random_bytes(self.endpoint.new_id()).into_uuid();
        let from = invite.from_header().ok();
        let caller = Party {
            number: from
                .as_ref()
                .and_then(|f| f.uri.user.clone())
                .unwrap_or_default(),
            display_name: from.and_then(|f| f.display).filter(|name| !name.is_empty()),
        };
        let call_id = invite.call_id().map(str::to_string).unwrap_or_default();
        let (dialled, number) = match route {
            CallRoute::Number { entry, dialled } => {
                (dialled, self.plan.dialplan.numbers.get(*entry))
            }
            CallRoute::Announce { dialled, .. } => (dialled, None),
        };
        let mut record = CallRecord::new(
            id.to_string(),
            call_id,
            caller,
            dialled.clone(),
            self.utc(now),
        );
        if let Some(number) = number {
            record.hotline = Some(number.line.clone());
            record.merge_mode = Some(number.mode.as_str().to_string());
        }
        record
    }

    /// UTC at `now`.
    pub(super) fn utc(&self, now: Instant) -> Timestamp {
        self.clock.utc_at(now)
    }

    /// Hands the record of a call as it stands now to the shell (a progress row).
    pub(super) fn save_progress(&mut self, id: CallId) {
        if let Some(call) = self.calls.get(&id) {
            self.records.push_back(call.record.clone());
        }
    }

    /// The dialplan handed the call to a queue that could not take it (`outcome`).
    pub(super) fn note_queue(
        &mut self,
        now: Instant,
        id: CallId,
        queue: &str,
        priority: u8,
        outcome: &str,
    ) {
        self.push_queue_visit(now, id, queue, priority, Some(outcome));
    }

    /// The call enters `queue` to wait for a seat; returns the visit's index in the record.
    pub(super) fn open_queue_visit(
        &mut self,
        now: Instant,
        id: CallId,
        queue: &str,
        priority: u8,
    ) -> usize {
        self.push_queue_visit(now, id, queue, priority, None)
    }

    /// A visit to `queue` in the record, left at once with `outcome` when given.
    fn push_queue_visit(
        &mut self,
        now: Instant,
        id: CallId,
        queue: &str,
        priority: u8,
        outcome: Option<&str>,
    ) -> usize {
        let at = self.utc(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        let times = &mut call.record.times;
        times.navigation_ended.get_or_insert(at);
        times.queued.get_or_insert(at);
        call.record.queues.push(QueueVisit {
            queue: queue.to_string(),
            priority,
            entered: at,
            left: outcome.map(|_| at),
            outcome: outcome.map(str::to_string),
            seat: None,
            offers: Vec::new(),
        });
        let visit = call.record.queues.len() - 1;
        self.save_progress(id);
        visit
    }

    /// A transfer to `target` starts, by the call's seat if it has one, toward `seat` when a
    /// seat is called; returns its index in the record's transfers.
    pub(super) fn note_transfer(
        &mut self,
        now: Instant,
        id: CallId,
        kind: &str,
        target: &str,
        seat: Option<SeatId>,
    ) -> usize {
        let at = self.utc(now);
        let name = |seat: SeatId| self.acd.seat_name(seat).to_string();
        let by = self.calls.get(&id).and_then(|c| c.seat_on_call()).map(name);
        let seat = seat.map(name);
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        call.record.times.navigation_ended.get_or_insert(at);
        call.record.transfers.push(TransferAttempt {
            kind: kind.to_string(),
            target: target.to_string(),
            by,
            seat,
            started: at,
            answered: None,
            ended: None,
            outcome: None,
        });
        let index = call.record.transfers.len() - 1;
        self.save_progress(id);
        index
    }

    /// The transfer at `index` has an outcome (`answered`, a status, `no-answer`...).
    pub(super) fn note_transfer_outcome(
        &mut self,
        now: Instant,
        id: CallId,
        index: usize,
        outcome: &str,
    ) {
        let at = self.utc(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let answered = outcome == "answered";
        if answered {
            call.record.times.person_answered.get_or_insert(at);
        }
        if let Some(transfer) = call.record.transfers.get_mut(index) {
            transfer.outcome.get_or_insert_with(|| outcome.to_string());
            match answered {
                true => transfer.answered = Some(at),
                false => transfer.ended = Some(at),
            }
        }
        if answered {
            self.save_progress(id);
        }
    }

    /// Completes the record of a call that ends now and hands it to the shell — or, while its
    /// recording is still being written, holds it until the recorder says how that went.
    pub(super) fn finish_record(&mut self, now: Instant, id: CallId, why: &Ending) {
        let at = self.utc(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        complete(call, &self.clock, at, why);
        self.unsaved.insert(call.record.id.clone());
        if call.recording {
            call.recording = false;
            self.awaiting_recording
                .insert(call.leg, call.record.clone());
            self.wakes.set(Wake::Recording(id), now + RECORDER_WAIT);
        } else {
            self.records.push_back(call.record.clone());
        }
    }

    /// Starts recording a bridged call into `<recordings>/<local date>/<record id>.wav`.
    pub(super) fn start_recording(&mut self, now: Instant, id: CallId) {
        let Some(dir) = self.config.recordings.clone() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.recording {
            return;
        }
        let day = self
            .clock
            .local(now, call.plan.dialplan.utc_offset_s)
            .date();
        let file = format!("{}/{}.wav", day.format("%Y-%m-%d"), call.record.id);
        call.record.recordings.push(Recording {
            path: format!("recordings/{file}"),
            status: "recording".to_string(),
        });
        call.recording = true;
        let leg = call.leg;
        self.media.push_back(MediaCommand::Record {
            leg,
            path: dir.join(file),
        });
    }

    /// The recorder finished the recording of `leg` (or did not say in time): the record says
    /// how it went, and a held final record goes out.
    pub(super) fn recording_done(&mut self, leg: LegId, error: Option<String>, silent: bool) {
        let status = match (&error, silent) {
            (_, true) => "unknown: the recorder did not report".to_string(),
            (None, false) => "ok".to_string(),
            (Some(error), false) => format!("failed: {error}"),
        };
        let note = |record: &mut CallRecord| {
            if let Some(recording) = record.recordings.last_mut() {
                recording.status = status.clone();
            }
        };
        if let Some(mut record) = self.awaiting_recording.remove(&leg) {
            note(&mut record);
            self.wakes.clear(&Wake::Recording(CallId(leg.0)));
            self.records.push_back(record);
        } else if let Some(call) = self.calls.get_mut(&CallId(leg.0)) {
            // Stopped while the call goes on (a write error): the call is not affected.
            if call.recording && !silent {
                call.recording = false;
                note(&mut call.record);
            }
        }
    }

    /// A call refused before it became a call (unknown number, no capacity, bad offer): its
    /// record is finished at once.
    pub(super) fn refused_record(
        &mut self,
        now: Instant,
        invite: &Request,
        status: u16,
        route: &CallRoute,
    ) {
        let mut record = self.open_record(now, invite, route);
        let at = record.times.arrived;
        record.times.ended = Some(at);
        record.end = Some(end_of(&Ending::Refused(status)));
        self.unsaved.insert(record.id.clone());
        self.records.push_back(record);
    }

    /// The hand-overs for the `call ended` log line: `queue:general`, `transfer:tax=486`.
    pub(super) fn describe_handovers(call: &Caller) -> String {
        let mut steps: Vec<(Timestamp, String)> = Vec::new();
        for visit in &call.record.queues {
            let outcome = visit.outcome.as_deref().map(|o| format!("={o}"));
            let seat = visit.seat.as_deref().map(|s| format!("@{s}"));
            let text = format!(
                "queue:{}{}{}",
                visit.queue,
                outcome.unwrap_or_default(),
                seat.unwrap_or_default()
            );
            steps.push((visit.entered, text));
        }
        for transfer in &call.record.transfers {
            let outcome = transfer.outcome.as_deref().map(|o| format!("={o}"));
            let text = format!(
                "transfer:{}{}",
                transfer.target,
                outcome.unwrap_or_default()
            );
            steps.push((transfer.started, text));
        }
        // In the order they happened; a queue after a failed transfer at the same millisecond
        // comes after it.
        steps.sort_by_key(|(at, text)| (*at, text.starts_with("queue:")));
        let texts: Vec<String> = steps.into_iter().map(|(_, text)| text).collect();
        texts.join(",")
    }
}

/// Fills in the end of the record: who and why, the walk, tags, survey and durations.
fn complete(call: &mut Caller, clock: &WallClock, at: Timestamp, why: &Ending) {
    let record = &mut call.record;
    if let Some(nav) = &call.nav {
        record.navigation = steps_of(nav, clock);
        record.tags = nav.tags().iter().cloned().collect();
        record.survey = record
            .tags
            .get("satisfaction")
            .and_then(|v| v.parse().ok())
            .filter(|v| (1..=5).contains(v));
    }
    record.times.navigation_ended.get_or_insert(at);
    record.times.ended = Some(at);
    let seconds = |from: Timestamp, to: Timestamp| (to - from).num_milliseconds() as f64 / 1000.0;
    let person = record.times.person_answered;
    record.wait_s = seconds(record.times.arrived, person.unwrap_or(at));
    // A seat that hung up before the caller (who went on to a survey) ended the talk then.
    let talk_end = call.talk_ended.map_or(at, |end| clock.utc_at(end));
    record.talk_s = person.map_or(0.0, |p| seconds(p, talk_end));
    for transfer in &mut record.transfers {
        if transfer.answered.is_some() {
            transfer.ended.get_or_insert(at);
        }
    }
    record.end = Some(end_of(why));
}

/// The walk as record steps.
fn steps_of(nav: &Navigation, clock: &WallClock) -> Vec<NavigationStep> {
    let dialplan = &nav.plan().dialplan;
    let mut node = String::new();
    let mut steps = Vec::new();
    for step in nav.path() {
        let input = match &step.event {
            PathEvent::Enter(id) => {
                node = dialplan.node_name(*id).to_string();
                None
            }
            PathEvent::Key(key) => Some(key.to_string()),
            PathEvent::NoInput => Some("timeout".to_string()),
            PathEvent::Invalid(_) => Some("invalid".to_string()),
            PathEvent::Fallback => Some("fallback".to_string()),
            PathEvent::Stuck => Some("stuck".to_string()),
            PathEvent::Tag(..) => continue,
        };
        steps.push(NavigationStep {
            at: clock.utc_at(step.at),
            node: node.clone(),
            input,
        });
    }
    steps
}

/// Who ended the call and why, as the record says it.
fn end_of(why: &Ending) -> CallEnd {
    let (by, cause, sip_status) = match why {
        Ending::CallerHungUp => ("caller", "bye", None),
        Ending::CallerCancelled => ("caller", "cancel", Some(487)),
        Ending::SubCentreHungUp => ("subcentre", "bye", None),
        Ending::SeatHungUp => ("seat", "bye", None),
        Ending::FlowDone => ("engine", "dialplan", None),
        Ending::MediaTimeout => ("engine", "media-timeout", None),
        Ending::NoAck => ("engine", "no-ack", None),
        Ending::Shutdown => ("engine", "shutdown", None),
        Ending::Refused(status) => ("engine", "refused", Some(*status)),
    };
    CallEnd {
        by: by.to_string(),
        cause: cause.to_string(),
        sip_status,
    }
}
