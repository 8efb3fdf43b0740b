//! Agent desktops and supervisors: their requests (log in, ready, not ready, wrap-up, answer,
//! hang up; seats, queues, statistics) and the events their streams show.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

use super::Switch;
use crate::acd::{AcdEvent, SeatId, SeatState};
use crate::call::caller::CallId;
use crate::desk::{Credential, DeskCommand, DeskError, DeskEvent, DeskReply};
use crate::sip::message::{HeaderName, Method, Request};

impl Switch {
    /// Answers a desk request.
    pub fn handle_desk(
        &mut self,
        now: Instant,
        credential: &Credential,
        seat: Option<&str>,
        command: DeskCommand,
    ) -> DeskReply {
        if self.draining {
            return Err(DeskError::new(503, "the engine is stopping"));
        }
        let own = match credential {
            Credential::Admin => None,
            Credential::SeatToken(token) => match self.seat_book.by_token(token) {
                Some(decl) => Some(decl.id.clone()),
                None => return Err(DeskError::new(401, "unknown token")),
            },
        };
        let reply = match command {
            DeskCommand::WhoAmI => Ok(match &own {
                Some(id) => json!({ "seat": id }),
                None => json!({ "admin": true }),
            }),
            DeskCommand::Seats => Ok(self.seats_view(now)),
            DeskCommand::Queues => Ok(self.queues_view(now)),
            DeskCommand::Stats { interval_s } => Ok(self.stats_view(now, interval_s)),
            command => {
                let Some(name) = seat else {
                    return Err(DeskError::new(404, "no seat named"));
                };
                if own.as_deref().is_some_and(|own| own != name) {
                    return Err(DeskError::new(403, "a seat may act only on itself"));
                }
                let Some(id) = self.acd.seat_id(name) else {
                    return Err(DeskError::new(404, format!("no seat {name}")));
                };
                if self.seat_book.by_id(name).is_none() {
                    return Err(DeskError::new(404, format!("no seat {name}")));
                }
                self.seat_command(now, id, command)
            }
        };
        self.run_acd(now);
        reply
    }

    fn seat_command(&mut self, now: Instant, seat: SeatId, command: DeskCommand) -> DeskReply {
        let conflict = |e: crate::acd::AcdError| DeskError::new(409, e.to_string());
        match command {
            DeskCommand::LogIn { ready } => self.acd.log_in(now, seat, ready).map_err(conflict)?,
            DeskCommand::LogOut => self.acd.log_out(now, seat).map_err(conflict)?,
            DeskCommand::Ready => {
                if self.acd.seat_state(seat) == Some(&SeatState::WrapUp) {
                    return Err(DeskError::new(409, "in wrap-up: end it with end-wrap-up"));
                }
                self.acd.set_ready(now, seat).map_err(conflict)?
            }
            DeskCommand::NotReady { reason } => self
                .acd
                .set_not_ready(now, seat, &reason)
                .map_err(conflict)?,
            DeskCommand::EndWrapUp => {
                if self.acd.seat_state(seat) != Some(&SeatState::WrapUp) {
                    return Err(DeskError::new(409, "not in wrap-up"));
                }
                self.acd.set_ready(now, seat).map_err(conflict)?
            }
            DeskCommand::Answer => self.remote_answer(now, seat)?,
            DeskCommand::HangUp => match self.call_of_seat(seat) {
                Some(call) => self.seat_hang_up(now, call),
                None => {
                    let Some(call) = self.call_brought_into(seat) else {
                        return Err(DeskError::new(409, "not on a call"));
                    };
                    self.brought_in_seat_hangs_up(now, call);
                }
            },
            DeskCommand::Transfer { kind, to } => return self.transfer(now, seat, kind, &to),
            DeskCommand::CompleteTransfer => return self.complete_consult(now, seat),
            DeskCommand::CancelTransfer => return self.cancel_consult(now, seat),
            DeskCommand::Queues | DeskCommand::Seats | DeskCommand::Stats { .. } => {}
            DeskCommand::WhoAmI => {}
        }
        let call = self
            .call_of_seat(seat)
            .or_else(|| self.call_brought_into(seat));
        Ok(self.seat_view(now, seat, call))
    }

    /// Answers a ringing seat's phone from the desktop: a `NOTIFY` with `Event: talk` (the
    /// remote-answer event desk phones implement) to each of its ringing phones.
    fn remote_answer(&mut self, now: Instant, seat: SeatId) -> Result<(), DeskError> {
        let mut targets = Vec::new();
        for call in self.calls.values() {
            let Some(side) = call.seats.as_ref() else {
                continue;
            };
            for offer in side.offers.iter().filter(|o| o.seat == seat) {
                for branch in &offer.branches {
                    targets.push((branch.invite.clone(), branch.peer));
                }
            }
        }
        if targets.is_empty() {
            return Err(DeskError::new(409, "not ringing"));
        }
        for (invite, peer) in targets {
            let mut notify = Request {
                method: Method::Notify,
                uri: invite.uri.clone(),
                headers: Default::default(),
                body: Vec::new(),
            };
            let tag = self.endpoint.new_token();
            let h = &mut notify.headers;
            for name in [HeaderName::To, HeaderName::CallId] {
                if let Some(value) = invite.headers.get(&name) {
                    h.push(name, value.to_string());
                }
            }
            let from = format!("<{}>;tag={tag}", self.config.contact);
            h.push(HeaderName::From, from);
            h.push(HeaderName::MaxForwards, "70");
            h.push(HeaderName::CSeq, "2 NOTIFY");
            h.push(HeaderName::Other("Event".into()), "talk");
            h.push(
                HeaderName::Other("Subscription-State".into()),
                "terminated;reason=noresource",
            );
            h.push(HeaderName::Contact, format!("<{}>", self.config.contact));
            self.endpoint.send_request(now, notify, peer);
        }
        Ok(())
    }

    /// The caller's call a seat is talking on.
    pub(super) fn call_of_seat(&self, seat: SeatId) -> Option<CallId> {
        let mut calls = self.calls.iter();
        calls.find_map(|(id, call)| (call.seat_on_call() == Some(seat)).then_some(*id))
    }

    /// The call each seat is on (talking on it, or brought into it), from one pass over the
    /// calls, so that listing every seat does not scan the calls once per seat.
    fn calls_by_seat(&self) -> HashMap<SeatId, CallId> {
        let mut by_seat = HashMap::new();
        for (id, call) in &self.calls {
            if let Some(seat) = call.seat_brought_in() {
                by_seat.entry(seat).or_insert(*id);
            }
            // A seat's own call comes before one it was brought into.
            if let Some(seat) = call.seat_on_call() {
                by_seat.insert(seat, *id);
            }
        }
        by_seat
    }

    /// One seat as the desk shows it.
    fn seat_view(&self, now: Instant, seat: SeatId, call: Option<CallId>) -> Value {
        let name = self.acd.seat_name(seat);
        let decl = self.seat_book.by_id(name);
        let (state, since) = match self.acd.seat_state_since(seat) {
            Some((state, since)) => (state.clone(), Some(since)),
            None => (SeatState::LoggedOut, None),
        };
        let reason = match &state {
            SeatState::NotReady(reason) => Some(reason.clone()),
            _ => None,
        };
        let call = call.and_then(|id| self.calls.get(&id)).map(
            |c| json!({ "record": c.record.id, "caller": c.caller, "hotline": c.record.hotline }),
        );
        let registered = decl
            .map(|d| !self.registrations.contacts(&d.username, now).is_empty())
            .unwrap_or(false);
        json!({
            "id": name,
            "name": decl.map(|d| d.name.clone()),
            "state": state.as_str(),
            "reason": reason,
            "since": since.map(|at| self.utc(at)),
            "for_s": since.map(|at| now.saturating_duration_since(at).as_secs_f64()),
            "registered": registered,
            "expert": decl.map(|d| d.expert),
            "skills": decl.map(|d| d.skills.clone()),
            "call": call,
        })
    }

    fn seats_view(&self, now: Instant) -> Value {
        let calls = self.calls_by_seat();
        let seats: Vec<Value> = self
            .seat_book
            .seats
            .iter()
            .filter_map(|d| self.acd.seat_id(&d.id))
            .map(|seat| self.seat_view(now, seat, calls.get(&seat).copied()))
            .collect();
        Value::Array(seats)
    }

    fn queues_view(&self, now: Instant) -> Value {
        let queues: Vec<Value> = self
            .plan
            .dialplan
            .queues
            .iter()
            .map(|q| {
                let waiting: Vec<Value> = self
                    .acd
                    .waiting(&q.name)
                    .into_iter()
                    .map(|w| {
                        let call = self.calls.get(&w.call);
                        json!({
                            "record": call.map(|c| c.record.id.clone()),
                            "caller": call.map(|c| self.show_number(&c.caller)),
                            "priority": w.priority,
                            "position": w.position,
                            "waiting_s": now.saturating_duration_since(w.since).as_secs_f64(),
                            "estimated_wait_s": self.acd.estimated_wait(w.call).map(|d| d.as_secs_f64()),
                        })
                    })
                    .collect();
                json!({
                    "name": q.name,
                    "display": q.display,
                    "skill": q.skill,
                    "waiting": waiting,
                })
            })
            .collect();
        Value::Array(queues)
    }

    fn stats_view(&self, now: Instant, interval_s: Option<u64>) -> Value {
        let name = |seat: SeatId| self.acd.seat_name(seat).to_string();
        let live = self.stats.live(now, &name);
        let mut intervals = self.stats.intervals(now, &name);
        if let Some(span) = interval_s {
            // Only the intervals that overlap the last `span` seconds.
            let since = live.since_offset_s + live.period_s - span as f64;
            intervals.retain(|i| i.start_offset_s + i.length_s > since);
        }
        json!({ "live": live, "intervals": intervals })
    }

    /// Turns an ACD event into a desk event (the stream's JSON).
    pub(super) fn desk_event(&mut self, event: &AcdEvent) {
        let at = self.utc(event.at());
        let (seat, body) = match event {
            AcdEvent::SeatChanged { seat, state, .. } => {
                let reason = match state {
                    SeatState::NotReady(reason) => Some(reason.clone()),
                    _ => None,
                };
                let name = self.acd.seat_name(*seat).to_string();
                let body = json!({ "type": "seat", "seat": name, "state": state.as_str(), "reason": reason, "at": at });
                (Some(name), body)
            }
            AcdEvent::Offered {
                call, queue, seat, ..
            } => {
                let name = self.acd.seat_name(*seat).to_string();
                let c = self.calls.get(call);
                let topic = c
                    .and_then(|c| c.nav.as_ref())
                    .and_then(|nav| nav.tags().iter().find(|(k, _)| k == "topic"))
                    .map(|(_, v)| v.clone());
                let body = json!({
                    "type": "offer", "seat": name, "queue": queue, "at": at,
                    "record": c.map(|c| c.record.id.clone()),
                    "caller": c.map(|c| c.caller.clone()),
                    "hotline": c.and_then(|c| c.record.hotline.clone()),
                    "topic": topic,
                    "tags": c.and_then(|c| c.nav.as_ref()).map(|nav| nav.tags().iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
                });
                (Some(name), body)
            }
            AcdEvent::Answered {
                call,
                queue,
                seat,
                waited,
                ..
            } => {
                let name = self.acd.seat_name(*seat).to_string();
                let record = self.calls.get(call).map(|c| c.record.id.clone());
                let body = json!({ "type": "answered", "seat": name, "queue": queue, "record": record, "waited_s": waited.as_secs_f64(), "at": at });
                (Some(name), body)
            }
            AcdEvent::TalkEnded {
                call,
                queue,
                seat,
                talked,
                ..
            } => {
                let name = self.acd.seat_name(*seat).to_string();
                let record = self.calls.get(call).map(|c| c.record.id.clone());
                let body = json!({ "type": "call-ended", "seat": name, "queue": queue, "record": record, "talked_s": talked.as_secs_f64(), "at": at });
                (Some(name), body)
            }
            AcdEvent::Queued { queue, .. }
            | AcdEvent::Abandoned { queue, .. }
            | AcdEvent::LeftQueue { queue, .. } => {
                let kind = match event {
                    AcdEvent::Queued { .. } => "queued",
                    AcdEvent::Abandoned { .. } => "abandoned",
                    _ => "left",
                };
                let waiting = self.acd.waiting(queue).len();
                (
                    None,
                    json!({ "type": "queue", "event": kind, "queue": queue, "waiting": waiting, "at": at }),
                )
            }
            AcdEvent::Overflowed { .. } | AcdEvent::OfferEnded { .. } => return,
        };
        self.desk_events.push_back(DeskEvent { seat, body });
    }
}
