//! The switch: the sans-IO call controller on top of the SIP endpoint.
//!
//! It routes each call by the number plan, answers it, walks the caller through the dialplan by
//! commanding the media plane, and ends calls cleanly. Unknown numbers get their announcement as
//! early media and a final status. Feed it with `handle_message`, `handle_media_event`,
//! `handle_timeout` and `shutdown`; after each, drain `poll_output` until `None`, then read
//! `poll_timeout`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::caller::{CallId, CallRoute, Caller, Ending, Phase, Reinvite};
use super::trunk_leg::TrunkState;
use crate::acd::stats::Stats;
use crate::acd::{Acd, QueueRules, Strategy};
use crate::config::SeatsConfig;
use crate::deadlines::Deadlines;
use crate::desk::DeskEvent;
use crate::dialplan::clock::WallClock;
use crate::dialplan::model::Strategy as PlanStrategy;
use crate::dialplan::navigation::{Action, Navigation, PathEvent};
use crate::dialplan::route::Routing;
use crate::dialplan::Plan;
use crate::media::codec::Codec as MediaCodec;
use crate::media::control::{DigitSource, LegId, MediaCommand, MediaEvent, StreamParams};
use crate::sdp::{self, LocalMedia, MediaParams, NegotiationError, SdpSession, SessionDescription};
use crate::seats::{Registrations, SeatBook};
use crate::sip::dialog::{Dialog, DialogId, SequenceCheck};
use crate::sip::endpoint::{ClientTxnId, Endpoint, ServerTxnId, SipEvent, Transmit};
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Method, Request, Response};
use crate::sip::peer::Peer;
use crate::sip::uri::Uri;
use crate::tickets::record::CallRecord;

mod callback;
mod consult_line;
mod desk;
mod records;
mod register;
mod seat;
mod seat_transfer;
mod transfer;
mod trunk;

/// Methods the engine implements (the Allow header).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER, REFER";

/// The switch's settings.
#[derive(Clone, Debug)]
pub struct SwitchConfig {
    /// How long to ring (180) before answering; zero answers at once.
    pub ring: Duration,
    /// New calls beyond this many get 503.
    pub max_calls: usize,
    /// Our media address for SDP.
    pub media_ip: IpAddr,
    /// Our Contact URI.
    pub contact: Uri,
    /// Codecs in our order of preference.
    pub codecs: Vec<sdp::Codec>,
    /// Mask the middle digits of callers' numbers in logs.
    pub redact_numbers: bool,
    /// Record bridged calls into this directory (`None`: no recordings).
    pub recordings: Option<std::path::PathBuf>,
    /// Seat phone registration settings.
    pub seats: SeatsConfig,
}

/// What the switch asks its I/O shell to do.
#[derive(Debug)]
pub enum SwitchOutput {
    /// Send SIP bytes.
    Transmit(Transmit),
    /// Command the media plane.
    Media(MediaCommand),
    /// Write this call record to the ticket store (a progress row, or the final one); answer
    /// with [`Switch::record_durable`] once a final one is on disk.
    Record(Box<CallRecord>),
    /// Tell the agent desktops' event streams.
    Desk(DeskEvent),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Wake {
    Answer(CallId),
    Flow(CallId),
    Trunk(CallId),
    /// Stop waiting for the recorder's word on a finished call's recording.
    Recording(CallId),
}

/// The call controller.
pub struct Switch {
    config: SwitchConfig,
    endpoint: Endpoint,
    plan: Arc<Plan>,
    clock: WallClock,
    calls: HashMap<CallId, Caller>,
    by_dialog: HashMap<DialogId, CallId>,
    by_invite: HashMap<ServerTxnId, CallId>,
    by_bye: HashMap<ClientTxnId, CallId>,
    by_trunk_invite: HashMap<ClientTxnId, CallId>,
    wakes: Deadlines<Wake>,
    media: VecDeque<MediaCommand>,
    records: VecDeque<CallRecord>,
    /// Final records held until their recording is finished, by the caller's leg.
    awaiting_recording: HashMap<LegId, CallRecord>,
    /// Final records handed out and not yet durable: the switch is not idle until they are.
    unsaved: HashSet<String>,
    /// Calls that ended, with why, for the tests to observe. Not kept otherwise: the shell
    /// learns of an end from the call's record, and this list grew by every call.
    #[cfg(test)]
    ended: Vec<(CallId, Ending)>,
    next_call: u64,
    next_play: u64,
    draining: bool,
    /// The call distribution.
    acd: Acd,
    /// Its statistics.
    stats: Stats,
    /// The seats as declared.
    seat_book: Arc<SeatBook>,
    /// Their phones' registrations.
    registrations: Registrations,
    /// Our INVITEs to seats' phones.
    by_seat_invite: HashMap<ClientTxnId, CallId>,
    /// INVITEs to seats' phones given up on, until they are over.
    withdrawn: HashMap<ClientTxnId, seat::Withdrawn>,
    desk_events: VecDeque<DeskEvent>,
    /// Where each registered phone contact registered from (by contact URI).
    phone_peers: HashMap<String, Peer>,
}

impl Switch {
    /// A switch over `endpoint` that runs calls on `plan`; `clock` gives schedules local time.
    pub fn new(
        config: SwitchConfig,
        endpoint: Endpoint,
        plan: Arc<Plan>,
        clock: WallClock,
    ) -> Switch {
        let registrations = Registrations::new(&config.seats, clock.instant);
        let mut acd = Acd::new();
        acd.set_queues(clock.instant, queue_rules(&plan));
        let stats = Stats::new(clock.instant, STATS_INTERVAL);
        Switch {
            config,
            endpoint,
            plan,
            clock,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            by_invite: HashMap::new(),
            by_bye: HashMap::new(),
            by_trunk_invite: HashMap::new(),
            wakes: Deadlines::new(),
            media: VecDeque::new(),
            records: VecDeque::new(),
            awaiting_recording: HashMap::new(),
            unsaved: HashSet::new(),
            #[cfg(test)]
            ended: Vec::new(),
            next_call: 0,
            next_play: 0,
            draining: false,
            acd,
            stats,
            seat_book: Arc::new(SeatBook::default()),
            registrations,
            by_seat_invite: HashMap::new(),
            withdrawn: HashMap::new(),
            desk_events: VecDeque::new(),
            phone_peers: HashMap::new(),
        }
    }

    /// Takes a new dialplan version for new calls; calls in progress keep theirs.
    pub fn set_plan(&mut self, now: Instant, plan: Arc<Plan>) {
        self.acd.set_queues(now, queue_rules(&plan));
        self.plan = plan;
        self.run_acd(now);
    }

    /// Feeds SIP bytes received from `source`.
    pub fn handle_message(&mut self, now: Instant, source: Peer, bytes: &[u8]) {
        self.endpoint.handle_message(now, source, bytes);
        self.settle(now);
    }

    /// Works off what an input set going: SIP events and the call distribution's decisions.
    fn settle(&mut self, now: Instant) {
        self.process_sip_events(now);
        self.run_acd(now);
        self.process_sip_events(now);
    }

    /// Feeds an event from the media plane.
    pub fn handle_media_event(&mut self, now: Instant, event: MediaEvent) {
        let partner = |leg: LegId| leg != leg.call_leg();
        match event {
            MediaEvent::Opened { leg, local } if partner(leg) => {
                let id = CallId(leg.call_leg().0);
                if leg == leg.fourth() {
                    self.consult_line_opened(now, id, local.port());
                } else if self.trunk_leg(id) == Some(leg) {
                    self.trunk_opened(now, id, local.port());
                } else {
                    self.seat_media_opened(now, id, local.port());
                }
            }
            MediaEvent::OpenFailed { leg } if leg == leg.fourth() => {
                self.end_consult_line(now, CallId(leg.call_leg().0));
            }
            MediaEvent::OpenFailed { leg } if partner(leg) => {
                let id = CallId(leg.call_leg().0);
                match self.trunk_leg(id) == Some(leg) {
                    true => self.trunk_failed(now, id, "no-rtp-port"),
                    false => self.seat_media_failed(now, id),
                }
            }
            MediaEvent::Opened { leg, local } => self.leg_opened(now, CallId(leg.0), local.port()),
            MediaEvent::OpenFailed { leg } => {
                warn!(leg = leg.0, "no RTP port for a new call");
                self.refuse_pending(now, CallId(leg.0), 503);
            }
            // Keys from the far end of a bridge are not the caller's.
            MediaEvent::Digit { leg, .. } if partner(leg) => {}
            MediaEvent::Digit { leg, digit, source } => {
                self.digit(now, CallId(leg.0), digit, source)
            }
            MediaEvent::PlayFinished { leg, play } => {
                let id = CallId(leg.0);
                if self.waiting_play_finished(id, play) {
                    return self.settle(now);
                }
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                if call.current_play == Some(play) {
                    call.current_play = None;
                    if let CallRoute::Announce { status, .. } = call.route {
                        self.refuse_pending(now, id, status);
                    } else if let Some(nav) = call.nav.as_mut() {
                        let actions = nav.on_play_finished(now);
                        self.run_flow(now, id, actions);
                    }
                }
            }
            MediaEvent::RecordingDone { leg, error, .. } => self.recording_done(leg, error, false),
            MediaEvent::Timeout { leg } => {
                info!(leg = leg.0, "no RTP on a leg: hanging up");
                self.hang_up(now, CallId(leg.call_leg().0), Ending::MediaTimeout);
            }
        }
        self.settle(now);
    }

    /// The media leg of the call's trunk, when it has one (a trunk given up on has closed its
    /// leg: the seats' side may be opening the same leg again).
    fn trunk_leg(&self, id: CallId) -> Option<LegId> {
        let trunk = self.calls.get(&id)?.trunk.as_ref();
        trunk
            .filter(|t| t.state != TrunkState::Abandoned)
            .map(|t| t.leg)
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.acd.handle_timeout(now);
        self.expire_registrations(now);
        while let Some(wake) = self.wakes.pop_due(now) {
            match wake {
                Wake::Answer(id) => self.answer(now, id),
                Wake::Trunk(id) => self.trunk_ring_timeout(now, id),
                Wake::Recording(id) => self.recording_done(LegId(id.0), None, true),
                Wake::Flow(id) => {
                    let nav = self.calls.get_mut(&id).and_then(|c| c.nav.as_mut());
                    if let Some(nav) = nav {
                        let actions = nav.on_timeout(now);
                        self.run_flow(now, id, actions);
                    }
                }
            }
        }
        self.settle(now);
    }

    /// Stops taking calls and ends the ones in progress (BYE, or 503 before the answer).
    pub fn shutdown(&mut self, now: Instant) {
        self.draining = true;
        let mut ids: Vec<CallId> = self.calls.keys().copied().collect();
        // In arrival order, so that what goes on the wire does not depend on hashing.
        ids.sort_unstable();
        for id in ids {
            let phase = self.calls.get(&id).map(|c| c.phase);
            match phase {
                Some(Phase::Opening | Phase::Ringing) => self.refuse_pending(now, id, 503),
                Some(Phase::Answering | Phase::Talking) => self.hang_up(now, id, Ending::Shutdown),
                _ => {}
            }
        }
        self.process_sip_events(now);
    }

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<SwitchOutput> {
        if let Some(transmit) = self.endpoint.poll_transmit() {
            return Some(SwitchOutput::Transmit(transmit));
        }
        if let Some(command) = self.media.pop_front() {
            return Some(SwitchOutput::Media(command));
        }
        if let Some(record) = self.records.pop_front() {
            return Some(SwitchOutput::Record(Box::new(record)));
        }
        self.desk_events.pop_front().map(SwitchOutput::Desk)
    }

    /// The ticket store has the final record `id` on disk.
    pub fn record_durable(&mut self, id: &str) {
        self.unsaved.remove(id);
    }

    /// Final records handed out and not yet reported durable.
    pub fn unsaved_records(&self) -> usize {
        self.unsaved.len()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.endpoint.poll_timeout(),
            self.wakes.next_deadline(),
            self.acd.poll_timeout(),
            self.registrations.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Calls that ended since the last call, with why (drained).
    #[cfg(test)]
    pub fn take_ended(&mut self) -> Vec<(CallId, Ending)> {
        std::mem::take(&mut self.ended)
    }

    /// Gives back table space left over from a load peak (call it now and then).
    pub fn shrink(&mut self) {
        self.endpoint.shrink();
        crate::memory::shrink_sparse(&mut self.calls);
        crate::memory::shrink_sparse(&mut self.by_dialog);
        crate::memory::shrink_sparse(&mut self.by_invite);
        crate::memory::shrink_sparse(&mut self.by_bye);
        crate::memory::shrink_sparse(&mut self.by_trunk_invite);
        self.wakes.shrink();
        self.media.shrink_to_fit();
        self.records.shrink_to_fit();
        if self.unsaved.len() * 4 < self.unsaved.capacity() {
            self.unsaved.shrink_to_fit();
        }
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether nothing is left: no calls and no transactions (shutdown may exit).
    pub fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.endpoint.transactions() == 0 && self.unsaved.is_empty()
    }

    fn process_sip_events(&mut self, now: Instant) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                SipEvent::Request {
                    txn,
                    request,
                    source,
                } => self.request(now, txn, request, source),
                SipEvent::Ack { request, .. } => self.ack(now, &request),
                SipEvent::Cancelled { invite } => {
                    // A CANCEL that crosses our 200 changes nothing (RFC 3261 §9.2).
                    let Some(&id) = self.by_invite.get(&invite) else {
                        continue;
                    };
                    if self.consult_line_cancelled(now, id, invite) {
                        continue;
                    }
                    let phase = self.calls.get(&id).map(|c| c.phase);
                    if matches!(phase, Some(Phase::Opening | Phase::Ringing)) {
                        self.refuse_pending(now, id, 487);
                    }
                }
                SipEvent::Response { txn, response } => {
                    if self.seat_response(now, txn, &response) {
                        continue;
                    }
                    if let Some(&id) = self.by_trunk_invite.get(&txn) {
                        self.trunk_response(now, id, txn, response);
                    } else if response.status >= 200 {
                        if let Some(id) = self.by_bye.remove(&txn) {
                            self.finish(now, id);
                        }
                    }
                }
                SipEvent::ClientTimeout { txn } => {
                    if self.seat_timeout(now, txn) {
                        continue;
                    }
                    if let Some(&id) = self.by_trunk_invite.get(&txn) {
                        self.trunk_timeout(now, id, txn);
                    } else if let Some(id) = self.by_bye.remove(&txn) {
                        self.finish(now, id);
                    }
                }
                SipEvent::AckTimeout { txn } => {
                    // The 2xx to the INVITE or to a re-INVITE was never ACKed: end the session
                    // with a BYE (RFC 3261 §13.3.1.4).
                    let Some(&id) = self.by_invite.get(&txn) else {
                        continue;
                    };
                    let unacked = self.calls.get(&id).is_some_and(|call| {
                        (call.invite_txn == txn && call.phase == Phase::Answering)
                            || call.reinvite.is_some_and(|r| r.txn == txn)
                    });
                    if unacked {
                        self.hang_up(now, id, Ending::NoAck);
                    }
                }
            }
        }
    }

    fn request(&mut self, now: Instant, txn: ServerTxnId, request: Request, source: Peer) {
        let dialog = match DialogId::for_incoming(&request) {
            Ok(dialog) => dialog,
            Err(_) => return self.reply(now, txn, &request, 400),
        };
        match dialog {
            Some(dialog) => self.in_dialog(now, txn, request, dialog),
            None => match request.method {
                Method::Invite if self.is_a_seats_second_line(&request, source) => {
                    self.consult_from_phone(now, txn, request, source)
                }
                Method::Invite => self.new_call(now, txn, request, source),
                Method::Options => self.reply(now, txn, &request, 200),
                Method::Register => self.register(now, txn, request, source),
                Method::Bye | Method::Info => self.reply(now, txn, &request, 481),
                _ => self.reply_unsupported(now, txn, &request),
            },
        }
    }

    fn reply(&mut self, now: Instant, txn: ServerTxnId, request: &Request, status: u16) {
        let mut response = self.endpoint.tagged(request, status);
        if request.method == Method::Options || status == 405 || status == 501 {
            response.headers.push(HeaderName::Allow, ALLOW);
            response
                .headers
                .push(HeaderName::Other("Accept".into()), "application/sdp");
        } else if status == 415 {
            // A 415 must say what is accepted (RFC 3261 §21.4.13).
            let accept = match request.method {
                Method::Info => "application/dtmf-relay, application/dtmf",
                _ => "application/sdp",
            };
            response
                .headers
                .push(HeaderName::Other("Accept".into()), accept);
        }
        self.endpoint.respond(now, txn, response);
    }

    fn reply_unsupported(&mut self, now: Instant, txn: ServerTxnId, request: &Request) {
        let status = match request.method {
            Method::Other(_) => 501,
            _ => 405,
        };
        self.reply(now, txn, request, status);
    }

    fn new_call(&mut self, now: Instant, txn: ServerTxnId, invite: Request, source: Peer) {
        let to_user = invite.to_header().ok().and_then(|to| to.uri.user);
        let route = match self
            .plan
            .dialplan
            .route(invite.uri.user.as_deref(), to_user.as_deref())
        {
            Routing::Number { entry, dialled } => CallRoute::Number { entry, dialled },
            Routing::Reject {
                prompts,
                status,
                dialled,
            } => {
                debug!(uri = %invite.uri, status, "no such number");
                CallRoute::Announce {
                    prompts,
                    status,
                    dialled,
                }
            }
        };
        if self.draining || self.calls.len() >= self.config.max_calls {
            let mut response = self.endpoint.tagged(&invite, 503);
            response
                .headers
                .push(HeaderName::Other("Retry-After".into()), "5");
            self.refused_record(now, &invite, 503, &route);
            return self.endpoint.respond(now, txn, response);
        }
        if let CallRoute::Announce {
            prompts, status, ..
        } = &route
        {
            // The announcement needs an offer to answer with early media.
            if prompts.is_empty() || invite.body.is_empty() {
                let status = *status;
                self.refused_record(now, &invite, status, &route);
                return self.reply(now, txn, &invite, status);
            }
        }
        let offer = if invite.body.is_empty() {
            None
        } else {
            if invite.content_type().as_deref() != Some("application/sdp") {
                self.refused_record(now, &invite, 415, &route);
                return self.reply(now, txn, &invite, 415);
            }
            let offer = match SessionDescription::parse(&invite.body) {
                Ok(offer) => offer,
                Err(error) => {
                    debug!(%error, "unreadable SDP offer");
                    self.refused_record(now, &invite, 400, &route);
                    return self.reply(now, txn, &invite, 400);
                }
            };
            // Refuse an offer we cannot answer before spending a port on it.
            if sdp::answer(&offer, &self.local_media(9, 0)).is_err() {
                self.refused_record(now, &invite, 488, &route);
                return self.reply(now, txn, &invite, 488);
            }
            Some(offer)
        };
        self.next_call += 1;
        let id = CallId(self.next_call);
        let local_tag = self.endpoint.new_token();
        let leg = LegId(id.0);
        let caller = invite
            .from_header()
            .ok()
            .and_then(|from| from.uri.user)
            .unwrap_or_default();
        info!(call = id.0, caller = %self.show_number(&caller), ?route, "incoming call");
        let record = self.open_record(now, &invite, &route);
        self.calls.insert(
            id,
            Caller {
                leg,
                peer: source,
                invite,
                invite_txn: txn,
                local_tag,
                phase: Phase::Opening,
                dialog: None,
                offer,
                sdp: None,
                plan: Arc::clone(&self.plan),
                route,
                caller,
                nav: None,
                record,
                trunk: None,
                recording: false,
                current_play: None,
                bye: None,
                reinvite: None,
                arrived: now,
                waiting: None,
                returns_to: None,
                consulting: false,
                consult_line: None,
                seats: None,
                hold_play: None,
                talk_ended: None,
            },
        );
        self.by_invite.insert(txn, id);
        self.save_progress(id);
        self.media.push_back(MediaCommand::Open { leg });
    }

    fn local_media(&self, port: u16, session_id: u64) -> LocalMedia {
        let mut local = LocalMedia::new(self.config.media_ip, port, session_id);
        local.codecs = self.config.codecs.clone();
        local
    }

    fn leg_opened(&mut self, now: Instant, id: CallId, port: u16) {
        let local = self.local_media(port, id.0);
        let ring = self.config.ring;
        let Some(call) = self.calls.get_mut(&id) else {
            // The call ended while the port was being bound.
            self.media
                .push_back(MediaCommand::Close { leg: LegId(id.0) });
            return;
        };
        if call.phase != Phase::Opening {
            return;
        }
        call.sdp = Some(SdpSession::new(local));
        if let CallRoute::Announce { prompts, .. } = &call.route {
            let prompts = prompts.clone();
            return self.announce(now, id, prompts);
        }
        if ring.is_zero() {
            self.answer(now, id);
        } else {
            let ringing = self.response_for_invite(id, 180);
            if let Some((txn, response)) = ringing {
                self.endpoint.respond(now, txn, response);
            }
            if let Some(call) = self.calls.get_mut(&id) {
                call.phase = Phase::Ringing;
            }
            self.wakes.set(Wake::Answer(id), now + ring);
        }
    }

    fn response_for_invite(&mut self, id: CallId, status: u16) -> Option<(ServerTxnId, Response)> {
        let call = self.calls.get(&id)?;
        let mut response = Response::to(&call.invite, status);
        let to = call.invite.headers.get(&HeaderName::To).unwrap_or("");
        response
            .headers
            .set(HeaderName::To, format!("{to};tag={}", call.local_tag));
        response
            .headers
            .push(HeaderName::Contact, format!("<{}>", self.config.contact));
        Some((call.invite_txn, response))
    }

    fn answer(&mut self, now: Instant, id: CallId) {
        let Some((txn, mut response)) = self.response_for_invite(id, 200) else {
            return;
        };
        let contact = self.config.contact.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(session) = call.sdp.as_mut() else {
            return;
        };
        let (body, params) = match &call.offer {
            Some(offer) => match session.answer(offer) {
                Ok(answer) => (answer.sdp.to_bytes(), Some(answer.media)),
                Err(_) => return self.refuse_pending(now, id, 488),
            },
            None => (session.offer().to_bytes(), None),
        };
        let dialog = match Dialog::as_uas(&call.invite, &call.local_tag, contact) {
            Ok(dialog) => dialog,
            Err(_) => return self.refuse_pending(now, id, 400),
        };
        response.headers.push(HeaderName::Allow, ALLOW);
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = body;
        call.phase = Phase::Answering;
        call.record.times.answered = Some(self.clock.utc_at(now));
        let progress = call.record.clone();
        self.records.push_back(progress);
        self.by_dialog.insert(dialog.id.clone(), id);
        call.dialog = Some(dialog);
        let leg = call.leg;
        self.endpoint.respond(now, txn, response);
        if let Some(params) = params {
            self.media.push_back(MediaCommand::Stream {
                leg,
                params: stream_params(&params),
            });
            self.start_flow(now, id);
        }
    }

    /// Early media for an unknown number: 183 with our answer, then the announcement; the
    /// final status follows when it has played.
    fn announce(&mut self, now: Instant, id: CallId, prompts: Vec<String>) {
        let Some((txn, mut response)) = self.response_for_invite(id, 183) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let answer = match (call.sdp.as_mut(), &call.offer) {
            (Some(session), Some(offer)) => session.answer(offer).ok(),
            _ => None,
        };
        let Some(answer) = answer else {
            let status = match &call.route {
                CallRoute::Announce { status, .. } => *status,
                CallRoute::Number { .. } => 404,
            };
            return self.refuse_pending(now, id, status);
        };
        call.phase = Phase::Ringing;
        let leg = call.leg;
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = answer.sdp.to_bytes();
        self.endpoint.respond(now, txn, response);
        self.media.push_back(MediaCommand::Stream {
            leg,
            params: stream_params(&answer.media),
        });
        self.run_flow(
            now,
            id,
            vec![Action::Play {
                prompts,
                barge_in: false,
            }],
        );
    }

    fn start_flow(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let CallRoute::Number { entry, .. } = call.route else {
            return;
        };
        let wall = self.clock.local(now, call.plan.dialplan.utc_offset_s);
        let plan = Arc::clone(&call.plan);
        let (nav, actions) = Navigation::start(plan, entry, &call.caller, now, wall);
        call.nav = Some(nav);
        self.run_flow(now, id, actions);
    }

    fn ack(&mut self, now: Instant, ack: &Request) {
        let Ok(Some(dialog)) = DialogId::for_incoming(ack) else {
            return;
        };
        let Some(&id) = self.by_dialog.get(&dialog) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let trunk_side = call.trunk.as_ref().and_then(|t| t.dialog.as_ref());
        if trunk_side.is_some_and(|d| d.id == dialog) {
            return self.trunk_acked(now, id);
        }
        let seat_side = call.seats.as_ref().and_then(|s| s.link.as_ref());
        if seat_side.is_some_and(|l| l.dialog.id == dialog) {
            return self.seat_acked(now, id, ack);
        }
        let line = call.consult_line.as_ref().and_then(|l| l.dialog.as_ref());
        if line.is_some_and(|d| d.id == dialog) {
            let txn = call.consult_line.as_ref().map(|l| l.txn);
            if let Some(txn) = txn {
                self.endpoint.ack_received(now, txn);
            }
            return;
        }
        if call.phase == Phase::Talking {
            return self.reinvite_acked(now, id, ack);
        }
        if call.phase != Phase::Answering {
            return;
        }
        call.phase = Phase::Talking;
        let txn = call.invite_txn;
        let late_offer = call.offer.is_none();
        let leg = call.leg;
        let answer = late_offer.then(|| answer_in_ack(call.sdp.as_mut(), ack));
        self.endpoint.ack_received(now, txn);
        match answer {
            None => {}
            Some(Ok(params)) => {
                self.media.push_back(MediaCommand::Stream {
                    leg,
                    params: stream_params(&params),
                });
                self.start_flow(now, id);
            }
            Some(Err(error)) => {
                info!(call = id.0, %error, "late-offer ACK without a usable answer");
                self.hang_up(now, id, Ending::Refused(488));
            }
        }
    }

    /// The ACK for our 2xx to a re-INVITE: stops its retransmission; when that 2xx carried our
    /// offer, the ACK carries the answer.
    fn reinvite_acked(&mut self, now: Instant, id: CallId, ack: &Request) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let seq = ack.cseq().ok().map(|cseq| cseq.seq);
        let Some(pending) = call.reinvite.filter(|r| Some(r.seq) == seq) else {
            return;
        };
        call.reinvite = None;
        let leg = call.leg;
        let answer = pending
            .offered
            .then(|| answer_in_ack(call.sdp.as_mut(), ack));
        self.by_invite.remove(&pending.txn);
        self.endpoint.ack_received(now, pending.txn);
        match answer {
            None => {}
            Some(Ok(params)) => self.media.push_back(MediaCommand::Stream {
                leg,
                params: stream_params(&params),
            }),
            Some(Err(error)) => {
                info!(call = id.0, %error, "re-INVITE ACK without a usable answer");
                self.hang_up(now, id, Ending::Refused(488));
            }
        }
    }

    fn in_dialog(&mut self, now: Instant, txn: ServerTxnId, request: Request, dialog: DialogId) {
        let Some(&id) = self.by_dialog.get(&dialog) else {
            return self.reply(now, txn, &request, 481);
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return self.reply(now, txn, &request, 481);
        };
        if let Some(trunk) = call.trunk.as_mut() {
            if let Some(state) = trunk.dialog.as_mut().filter(|d| d.id == dialog) {
                if let Ok(SequenceCheck::OutOfOrder) = state.check_sequence(&request) {
                    return self.reply(now, txn, &request, 500);
                }
                return self.trunk_request(now, id, txn, request);
            }
        }
        let line = call.consult_line.as_mut().and_then(|l| l.dialog.as_mut());
        if let Some(line) = line.filter(|d| d.id == dialog) {
            if let Ok(SequenceCheck::OutOfOrder) = line.check_sequence(&request) {
                return self.reply(now, txn, &request, 500);
            }
            return self.consult_line_request(now, id, txn, request);
        }
        let seat_link = call.seats.as_mut().and_then(|s| s.link.as_mut());
        if let Some(link) = seat_link.filter(|l| l.dialog.id == dialog) {
            if let Ok(SequenceCheck::OutOfOrder) = link.dialog.check_sequence(&request) {
                return self.reply(now, txn, &request, 500);
            }
            return self.seat_request(now, id, txn, request);
        }
        // Our 2xx responses still waiting for their ACK.
        let unacked = [
            (call.phase == Phase::Answering).then_some(call.invite_txn),
            call.reinvite.map(|r| r.txn),
        ];
        let Some(state) = call.dialog.as_mut() else {
            return self.reply(now, txn, &request, 481);
        };
        if let Ok(SequenceCheck::OutOfOrder) = state.check_sequence(&request) {
            return self.reply(now, txn, &request, 500);
        }
        match request.method {
            Method::Bye => {
                self.reply(now, txn, &request, 200);
                // The BYE shows our 2xx arrived: stop resending it should its ACK be lost.
                for invite in unacked.into_iter().flatten() {
                    self.endpoint.ack_received(now, invite);
                }
                info!(call = id.0, "caller hung up");
                self.end(now, id, Ending::CallerHungUp);
            }
            Method::Invite => self.reinvite(now, id, txn, request),
            Method::Info => self.info(now, id, txn, &request),
            Method::Options => self.reply(now, txn, &request, 200),
            _ => self.reply_unsupported(now, txn, &request),
        }
    }

    /// A re-INVITE: hold, resume or a new address; answered from the same SDP session.
    fn reinvite(&mut self, now: Instant, id: CallId, txn: ServerTxnId, request: Request) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(dialog), Some(session)) = (call.dialog.as_mut(), call.sdp.as_mut()) else {
            return self.reply(now, txn, &request, 491);
        };
        dialog.refresh_target(request.contact());
        let mut response = Response::to(&request, 200);
        let (body, params) = if request.body.is_empty() {
            // Offerless re-INVITE: we offer in the 200; the answer comes in the ACK.
            (session.offer().to_bytes(), None)
        } else {
            let offer = match SessionDescription::parse(&request.body) {
                Ok(offer) => offer,
                Err(_) => return self.reply(now, txn, &request, 400),
            };
            match session.answer(&offer) {
                Ok(answer) => (answer.sdp.to_bytes(), Some(answer.media)),
                Err(_) => return self.reply(now, txn, &request, 488),
            }
        };
        let leg = call.leg;
        response
            .headers
            .push(HeaderName::Contact, format!("<{}>", self.config.contact));
        response.headers.push(HeaderName::Allow, ALLOW);
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = body;
        self.endpoint.respond(now, txn, response);
        // Wait for the ACK of this 2xx. A newer re-INVITE shows the caller got the older 2xx.
        let pending = Reinvite {
            txn,
            seq: request.cseq().map(|cseq| cseq.seq).unwrap_or_default(),
            offered: params.is_none(),
        };
        if let Some(old) = call.reinvite.replace(pending) {
            self.by_invite.remove(&old.txn);
            self.endpoint.ack_received(now, old.txn);
        }
        self.by_invite.insert(txn, id);
        if let Some(params) = params {
            info!(call = id.0, held = params.held_by_remote(), "re-INVITE");
            self.media.push_back(MediaCommand::Stream {
                leg,
                params: stream_params(&params),
            });
        }
    }

    /// SIP INFO with application/dtmf-relay (`Signal=5`) or application/dtmf (`5`).
    fn info(&mut self, now: Instant, id: CallId, txn: ServerTxnId, request: &Request) {
        let digit = match request.content_type().as_deref() {
            Some("application/dtmf-relay") => {
                std::str::from_utf8(&request.body).ok().and_then(|body| {
                    body.lines()
                        .filter_map(|l| l.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("signal"))
                        .and_then(|(_, v)| v.trim().chars().next())
                })
            }
            Some("application/dtmf") => std::str::from_utf8(&request.body)
                .ok()
                .and_then(|b| b.trim().chars().next()),
            _ => return self.reply(now, txn, request, 415),
        };
        match digit.filter(|d| d.is_ascii_digit() || "*#ABCD".contains(*d)) {
            Some(digit) => {
                self.reply(now, txn, request, 200);
                self.digit(now, id, digit, DigitSource::SipInfo);
            }
            None => self.reply(now, txn, request, 400),
        }
    }

    fn digit(&mut self, now: Instant, id: CallId, digit: char, source: DigitSource) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase != Phase::Talking && call.phase != Phase::Answering {
            return;
        }
        debug!(call = id.0, %digit, ?source, "key");
        let Some(nav) = call.nav.as_mut() else {
            return;
        };
        let actions = nav.on_digit(now, digit);
        self.run_flow(now, id, actions);
    }

    fn run_flow(&mut self, now: Instant, id: CallId, actions: Vec<Action>) {
        let mut actions = VecDeque::from(actions);
        while let Some(action) = actions.pop_front() {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let leg = call.leg;
            match action {
                Action::Play { prompts, barge_in } => {
                    self.next_play += 1;
                    call.current_play = Some(self.next_play);
                    let prompts = prompts
                        .iter()
                        .filter_map(|name| {
                            let prompt = call.plan.prompts.get(name);
                            if prompt.is_none() {
                                warn!(prompt = %name, "prompt missing");
                            }
                            prompt
                        })
                        .collect();
                    self.media.push_back(MediaCommand::Play {
                        leg,
                        play: self.next_play,
                        prompts,
                        barge_in,
                    });
                }
                Action::StopPlay => self.media.push_back(MediaCommand::StopPlay { leg }),
                Action::Wake(at) => self.wakes.set(Wake::Flow(id), at),
                Action::Hangup => self.hang_up(now, id, Ending::FlowDone),
                Action::Callback { number } => self.note_callback(now, id, number),
                Action::Queue { queue, priority } => {
                    actions.extend(self.enter_queue(now, id, queue, priority));
                }
                Action::Transfer { subcentre } => {
                    if !self.start_trunk(now, id, subcentre, None) {
                        let nav = self.calls.get_mut(&id).and_then(|c| c.nav.as_mut());
                        if let Some(nav) = nav {
                            actions.extend(nav.on_transfer_failed(now));
                        }
                    }
                }
            }
        }
    }

    /// Refuses a call that is not answered yet (487 after CANCEL, 503, 488...).
    fn refuse_pending(&mut self, now: Instant, id: CallId, status: u16) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !matches!(call.phase, Phase::Opening | Phase::Ringing) {
            // Already answered: too late to refuse, hang up instead.
            return self.hang_up(now, id, Ending::Refused(status));
        }
        if let Some((txn, mut response)) = self.response_for_invite(id, status) {
            response.headers.remove(&HeaderName::Contact);
            self.endpoint.respond(now, txn, response);
        }
        let ending = if status == 487 {
            Ending::CallerCancelled
        } else {
            Ending::Refused(status)
        };
        self.end(now, id, ending);
    }

    /// Sends BYE; the call ends when it is answered or times out.
    fn hang_up(&mut self, now: Instant, id: CallId, why: Ending) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase == Phase::HangingUp {
            return;
        }
        let Some(dialog) = call.dialog.as_mut() else {
            return self.end(now, id, why);
        };
        let mut bye = dialog.request(Method::Bye);
        if let Ending::MediaTimeout = why {
            bye.headers
                .push(HeaderName::Reason, "SIP;cause=408;text=\"media timeout\"");
        }
        call.phase = Phase::HangingUp;
        let peer = call.peer;
        let leg = call.leg;
        self.end_trunk(now, id);
        self.end_consult_line(now, id);
        self.leave_seats(now, id, &why);
        self.media.push_back(MediaCommand::Close { leg });
        self.record_end(now, id, why);
        match self.endpoint.send_request(now, bye, peer) {
            Some(txn) => {
                self.by_bye.insert(txn, id);
                if let Some(call) = self.calls.get_mut(&id) {
                    call.bye = Some(txn);
                }
            }
            None => self.forget(now, id),
        }
    }

    /// The call is over once our BYE got its answer.
    fn finish(&mut self, now: Instant, id: CallId) {
        self.forget(now, id);
    }

    /// Ends a call now (the caller hung up, or it never got answered).
    fn end(&mut self, now: Instant, id: CallId, why: Ending) {
        self.end_trunk(now, id);
        self.end_consult_line(now, id);
        self.leave_seats(now, id, &why);
        if let Some(call) = self.calls.get(&id) {
            // After our BYE the leg is closed and the ending recorded already (BYE glare).
            if call.phase != Phase::HangingUp {
                self.media.push_back(MediaCommand::Close { leg: call.leg });
                self.record_end(now, id, why);
            }
        }
        self.forget(now, id);
    }

    fn record_end(&mut self, now: Instant, id: CallId, why: Ending) {
        self.finish_record(now, id, &why);
        if let Some(call) = self.calls.get(&id) {
            let (line, dialled) = match &call.route {
                CallRoute::Number { entry, dialled } => {
                    let number = call.plan.dialplan.numbers.get(*entry);
                    let line = number.map_or(String::new(), |n| {
                        format!("{} ({})", n.line, n.mode.as_str())
                    });
                    (line, dialled.as_str())
                }
                CallRoute::Announce { dialled, .. } => (String::new(), dialled.as_str()),
            };
            let (path, tags) = match &call.nav {
                Some(nav) => (describe_path(nav), self.describe_tags(nav)),
                None => (String::new(), String::new()),
            };
            info!(
                call = id.0,
                ?why,
                dialled,
                line,
                path,
                tags,
                handovers = Self::describe_handovers(call),
                record = %call.record.id,
                "call ended"
            );
        }
        #[cfg(test)]
        self.ended.push((id, why));
    }

    /// The call's tags as `topic=housing,elderly-priority=yes`; collected numbers redacted.
    fn describe_tags(&self, nav: &Navigation) -> String {
        let tags: Vec<String> = nav
            .tags()
            .iter()
            .map(
                |(name, value)| match value.chars().all(|c| c.is_ascii_digit()) {
                    true => format!("{name}={}", self.show_number(value)),
                    false => format!("{name}={value}"),
                },
            )
            .collect();
        tags.join(",")
    }

    /// A number as logs show it.
    fn show_number(&self, number: &str) -> String {
        match self.config.redact_numbers {
            true => redact(number),
            false => number.to_string(),
        }
    }

    fn forget(&mut self, now: Instant, id: CallId) {
        self.drop_trunk(now, id);
        self.drop_seats(id);
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.by_invite.remove(&call.invite_txn);
        if let Some(reinvite) = call.reinvite {
            self.by_invite.remove(&reinvite.txn);
        }
        if let Some(dialog) = &call.dialog {
            self.by_dialog.remove(&dialog.id);
        }
        if let Some(bye) = call.bye {
            self.by_bye.remove(&bye);
        }
        if let Some(line) = &call.consult_line {
            self.by_invite.remove(&line.txn);
            if let Some(dialog) = &line.dialog {
                self.by_dialog.remove(&dialog.id);
            }
        }
        self.wakes.clear(&Wake::Answer(id));
        self.wakes.clear(&Wake::Flow(id));
        self.wakes.clear(&Wake::Trunk(id));
    }
}

/// The walk through the dialplan as one line: `welcome>main-menu[2]>housing`; `[-]` is a
/// timeout and `[!12]` an entry the node did not accept. Collected digits are not shown.
pub fn describe_path(nav: &Navigation) -> String {
    let dialplan = &nav.plan().dialplan;
    let mut out = String::new();
    for step in nav.path() {
        match &step.event {
            PathEvent::Enter(node) => {
                if !out.is_empty() {
                    out.push('>');
                }
                out.push_str(dialplan.node_name(*node));
            }
            PathEvent::Key(key) => out.push_str(&format!("[{key}]")),
            PathEvent::NoInput => out.push_str("[-]"),
            PathEvent::Invalid(_) => out.push_str("[!]"),
            PathEvent::Fallback => out.push_str("[fallback]"),
            PathEvent::Stuck => out.push_str("[stuck]"),
            PathEvent::Tag(..) => {}
        }
    }
    out
}

/// Reads the answer an ACK carries to the offer we sent in our 2xx.
fn answer_in_ack(
    session: Option<&mut SdpSession>,
    ack: &Request,
) -> Result<MediaParams, NegotiationError> {
    let sdp = SessionDescription::parse(&ack.body).map_err(|_| NegotiationError::NoAudio)?;
    match session {
        Some(session) => session.accept_answer(&sdp),
        None => Err(NegotiationError::NoOfferPending),
    }
}

/// A phone number with its middle digits masked for logs: `13800000000` → `138****0000`.
pub fn redact(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() < 5 {
        return "*".repeat(chars.len());
    }
    let (keep_head, keep_tail) = if chars.len() >= 8 { (3, 4) } else { (1, 1) };
    chars
        .iter()
        .enumerate()
        .map(
            |(i, c)| match i < keep_head || i >= chars.len() - keep_tail {
                true => *c,
                false => '*',
            },
        )
        .collect()
}

/// The 200 to a far leg's re-INVITE (a seat phone's, a trunk's), answered from that leg's
/// session, with what was negotiated; the status to refuse with when there is no usable offer.
fn answer_far_reinvite(
    session: Option<&mut SdpSession>,
    request: &Request,
    contact: &Uri,
) -> Result<(Response, MediaParams), u16> {
    let offer = SessionDescription::parse(&request.body).map_err(|_| 488u16)?;
    let answer = session.ok_or(488u16)?.answer(&offer).map_err(|_| 488u16)?;
    Ok((sdp_ok(request, contact, &answer.sdp), answer.media))
}

/// A 200 to an in-dialog `request` with our Contact and `sdp` (an answer, or our offer).
fn sdp_ok(request: &Request, contact: &Uri, sdp: &SessionDescription) -> Response {
    let mut response = Response::to(request, 200);
    response
        .headers
        .push(HeaderName::Contact, format!("<{contact}>"));
    response
        .headers
        .push(HeaderName::ContentType, "application/sdp");
    response.body = sdp.to_bytes();
    response
}

/// What the media plane needs from a negotiation.
fn stream_params(params: &MediaParams) -> StreamParams {
    StreamParams {
        remote: params.remote_rtp,
        codec: match params.codec {
            sdp::Codec::Pcma => MediaCodec::Pcma,
            sdp::Codec::Pcmu => MediaCodec::Pcmu,
        },
        payload_type: params.payload_type,
        telephone_event: params.telephone_event,
        send: params.should_send(),
        receive: params.local_direction.receives() && params.remote_direction.sends(),
    }
}

/// Length of the statistics' intervals.
const STATS_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The call distribution's rules for each queue of a dialplan version.
fn queue_rules(plan: &Plan) -> Vec<QueueRules> {
    let queues = &plan.dialplan.queues;
    queues
        .iter()
        .map(|q| QueueRules {
            name: q.name.clone(),
            skill: q.skill.clone(),
            min_level: q.min_level,
            experts_only: q.experts,
            strategy: match q.strategy {
                PlanStrategy::LongestIdle => Strategy::LongestIdle,
                PlanStrategy::RoundRobin => Strategy::RoundRobin,
                PlanStrategy::RingAll => Strategy::RingAll,
            },
            ring_timeout: q.ring_timeout,
            wrap_up: q.wrap_up,
            overflow_after: q.overflow_after,
            overflow_to: q
                .overflow_to
                .iter()
                .filter_map(|id| queues.get(id.0 as usize))
                .map(|to| to.name.clone())
                .collect(),
            overflow_experts: q.overflow_experts,
            max_wait: Some(q.max_wait),
            announce_every: q.announce_every,
        })
        .collect()
}
