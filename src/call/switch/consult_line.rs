//! An attended transfer made on the seat's phone (RFC 5589): the phone holds the caller, calls
//! a sub-centre on its second line, and then joins the caller to it with REFER/Replaces. The
//! engine keeps that second call inside the caller's call: the phone's line on the call's fourth
//! media leg, the sub-centre on its third, so the join is a bridge on one media worker and the
//! caller keeps one record.

use std::time::Instant;

use tracing::info;

use super::{stream_params, Switch};
use crate::call::caller::CallId;
use crate::call::seat_leg::ConsultLine;
use crate::dialplan::model::SubCentreId;
use crate::media::control::{LegId, MediaCommand};
use crate::sdp::{SdpSession, SessionDescription};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::ServerTxnId;
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Method, Request};
use crate::sip::peer::Peer;

impl Switch {
    /// Whether an INVITE comes from the phone of a seat that is talking to a caller: its second
    /// line (From is the seat's username, sent from where the phone registered).
    pub(super) fn is_a_seats_second_line(&self, invite: &Request, source: Peer) -> bool {
        let Some(user) = invite.from_header().ok().and_then(|f| f.uri.user) else {
            return false;
        };
        let Some(decl) = self.seat_book.by_username(&user) else {
            return false;
        };
        let from_its_phone = self
            .registrations
            .contacts(&decl.username, self.registrations_now())
            .iter()
            .any(|uri| {
                let peer = self.phone_peers.get(&uri.to_string());
                peer.map(|p| p.addr.ip()).or_else(|| uri.host.parse().ok())
                    == Some(source.addr.ip())
            });
        let on_a_call = self
            .acd
            .seat_id(&decl.id)
            .and_then(|seat| self.call_of_seat(seat))
            .is_some();
        from_its_phone && on_a_call
    }

    /// The seat's phone calls a sub-centre while its caller waits: authenticated like its
    /// REGISTER, only to a declared sub-centre, only one at a time.
    pub(super) fn consult_from_phone(
        &mut self,
        now: Instant,
        txn: ServerTxnId,
        invite: Request,
        source: Peer,
    ) {
        let username =
            match self
                .registrations
                .authenticate(now, &invite, source.addr.ip(), &self.seat_book)
            {
                Ok(username) => username,
                Err(refused) => {
                    let mut response = self.endpoint.tagged(&invite, refused.status);
                    for (name, value) in refused.headers {
                        response.headers.push(name, value);
                    }
                    return self.endpoint.respond(now, txn, response);
                }
            };
        let seat = self
            .seat_book
            .by_username(&username)
            .and_then(|d| self.acd.seat_id(&d.id));
        let Some(id) = seat.and_then(|seat| self.call_of_seat(seat)) else {
            return self.reply(now, txn, &invite, 403);
        };
        let Some(call) = self.calls.get(&id) else {
            return self.reply(now, txn, &invite, 403);
        };
        let user = invite.uri.user.clone().unwrap_or_default();
        let centre = call
            .plan
            .dialplan
            .subcentres
            .iter()
            .position(|s| s.name == user || s.number.as_deref() == Some(user.as_str()));
        let Some(at) = centre else {
            info!(call = id.0, target = %user, "a seat phone dialled an undeclared number");
            return self.reply(now, txn, &invite, 403);
        };
        if call.trunk.is_some() || call.consult_line.is_some() {
            return self.reply(now, txn, &invite, 486);
        }
        let offer = SessionDescription::parse(&invite.body).ok();
        if offer.is_none() {
            // The line's answer is made from the phone's offer.
            return self.reply(now, txn, &invite, 488);
        }
        let name = call.plan.dialplan.subcentres[at].name.clone();
        info!(call = id.0, subcentre = %name, "the seat's phone consults a sub-centre");
        let local_tag = self.endpoint.new_token();
        let leg = call.leg.fourth();
        let index = self.note_transfer(now, id, "consult", &format!("subcentre:{name}"), None);
        if let Some(call) = self.calls.get_mut(&id) {
            call.consult_line = Some(ConsultLine {
                invite,
                txn,
                peer: source,
                local_tag,
                offer,
                sdp: None,
                dialog: None,
            });
        }
        self.by_invite.insert(txn, id);
        self.media.push_back(MediaCommand::Open { leg });
        if !self.start_trunk(now, id, SubCentreId(at as u32), Some(index)) {
            self.consult_line_failed(now, id, 480);
        }
    }

    /// The line's port is bound: the phone hears that the sub-centre rings.
    pub(super) fn consult_line_opened(&mut self, now: Instant, id: CallId, port: u16) {
        let local = self.local_media(port, id.0 | LegId::PARTNER | LegId::THIRD);
        let Some(line) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.consult_line.as_mut())
        else {
            return self.media.push_back(MediaCommand::Close {
                leg: LegId(id.0).fourth(),
            });
        };
        line.sdp = Some(SdpSession::new(local));
        let mut ringing = self.endpoint.tagged(&line.invite, 180);
        let to = line.invite.headers.get(&HeaderName::To).unwrap_or("");
        ringing
            .headers
            .set(HeaderName::To, format!("{to};tag={}", line.local_tag));
        let txn = line.txn;
        self.endpoint.respond(now, txn, ringing);
    }

    /// The sub-centre answered the phone's consult: the phone's line is answered and bridged
    /// to it. False when the call has no consult line.
    pub(super) fn consult_line_answered(
        &mut self,
        now: Instant,
        id: CallId,
        trunk_leg: LegId,
    ) -> bool {
        let contact = self.config.contact.clone();
        let Some(line) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.consult_line.as_mut())
        else {
            return false;
        };
        let answer = match (line.sdp.as_mut(), line.offer.as_ref()) {
            (Some(session), Some(offer)) => session.answer(offer).ok(),
            _ => None,
        };
        let Some(answer) = answer else {
            self.consult_line_failed(now, id, 488);
            return true;
        };
        let Ok(dialog) = Dialog::as_uas(&line.invite, &line.local_tag, contact.clone()) else {
            self.consult_line_failed(now, id, 400);
            return true;
        };
        let mut ok = self.endpoint.tagged(&line.invite, 200);
        let to = line.invite.headers.get(&HeaderName::To).unwrap_or("");
        ok.headers
            .set(HeaderName::To, format!("{to};tag={}", line.local_tag));
        ok.headers.push(HeaderName::Contact, format!("<{contact}>"));
        ok.headers.push(HeaderName::ContentType, "application/sdp");
        ok.body = answer.sdp.to_bytes();
        let txn = line.txn;
        self.by_dialog.insert(dialog.id.clone(), id);
        line.dialog = Some(dialog);
        self.endpoint.respond(now, txn, ok);
        let leg = LegId(id.0).fourth();
        self.media.push_back(MediaCommand::Stream {
            leg,
            params: stream_params(&answer.media),
        });
        self.media.push_back(MediaCommand::Bridge {
            leg,
            peer: trunk_leg,
        });
        true
    }

    /// The sub-centre did not take the phone's consult: the phone's INVITE gets `status`. The
    /// caller stays on hold with the seat. False when the call has no consult line.
    pub(super) fn consult_line_failed(&mut self, now: Instant, id: CallId, status: u16) -> bool {
        let Some(line) = self.calls.get_mut(&id).and_then(|c| c.consult_line.take()) else {
            return false;
        };
        if line.dialog.is_none() {
            let mut response = self.endpoint.tagged(&line.invite, status);
            let to = line.invite.headers.get(&HeaderName::To).unwrap_or("");
            response
                .headers
                .set(HeaderName::To, format!("{to};tag={}", line.local_tag));
            self.endpoint.respond(now, line.txn, response);
        }
        self.forget_consult_line(id, &line);
        true
    }

    /// The phone cancelled its consult INVITE. False when `invite` is not one.
    pub(super) fn consult_line_cancelled(
        &mut self,
        now: Instant,
        id: CallId,
        invite: ServerTxnId,
    ) -> bool {
        let ours = self
            .calls
            .get(&id)
            .and_then(|c| c.consult_line.as_ref())
            .is_some_and(|l| l.txn == invite && l.dialog.is_none());
        if !ours {
            return false;
        }
        self.end_trunk(now, id);
        self.consult_line_failed(now, id, 487);
        true
    }

    /// A request in the phone's consult dialog: its BYE ends the consult (the sub-centre is
    /// hung up; the caller is still on hold with the seat).
    pub(super) fn consult_line_request(
        &mut self,
        now: Instant,
        id: CallId,
        txn: ServerTxnId,
        request: Request,
    ) {
        match request.method {
            Method::Bye => {
                self.reply(now, txn, &request, 200);
                info!(call = id.0, "the seat's phone ended its consult");
                if let Some(line) = self.calls.get_mut(&id).and_then(|c| c.consult_line.take()) {
                    self.forget_consult_line(id, &line);
                }
                self.end_trunk(now, id);
            }
            Method::Options => self.reply(now, txn, &request, 200),
            _ => self.reply_unsupported(now, txn, &request),
        }
    }

    /// The caller's call is ending: the phone's consult line goes too.
    pub(super) fn end_consult_line(&mut self, now: Instant, id: CallId) {
        let Some(mut line) = self.calls.get_mut(&id).and_then(|c| c.consult_line.take()) else {
            return;
        };
        match line.dialog.as_mut() {
            Some(dialog) => {
                let bye = dialog.request(Method::Bye);
                self.endpoint.send_request(now, bye, line.peer);
            }
            None => {
                let mut response = self.endpoint.tagged(&line.invite, 487);
                let to = line.invite.headers.get(&HeaderName::To).unwrap_or("");
                response
                    .headers
                    .set(HeaderName::To, format!("{to};tag={}", line.local_tag));
                self.endpoint.respond(now, line.txn, response);
            }
        }
        self.forget_consult_line(id, &line);
    }

    fn forget_consult_line(&mut self, id: CallId, line: &ConsultLine) {
        self.by_invite.remove(&line.txn);
        if let Some(dialog) = &line.dialog {
            self.by_dialog.remove(&dialog.id);
        }
        self.media.push_back(MediaCommand::Close {
            leg: LegId(id.0).fourth(),
        });
    }

    /// REFER with Replaces from the seat's phone naming its consult line: the caller is joined
    /// to the sub-centre, both of the phone's lines are hung up, the seat goes to wrap-up.
    /// False when `replaces` does not name the call's consult line.
    pub(super) fn join_consult(&mut self, now: Instant, id: CallId, replaces: &str) -> bool {
        // `Call-ID;to-tag=..;from-tag=..` (RFC 3891), escaped inside the Refer-To URI: the
        // phone's view of its line, so to-tag is ours and from-tag the phone's.
        let replaces = percent_decoded(replaces);
        let mut parts = replaces.split(';');
        let call_id = parts.next().unwrap_or_default().trim().to_string();
        let mut to_tag = None;
        let mut from_tag = None;
        for part in parts {
            match part.trim().split_once('=') {
                Some((name, value)) if name.eq_ignore_ascii_case("to-tag") => to_tag = Some(value),
                Some((name, value)) if name.eq_ignore_ascii_case("from-tag") => {
                    from_tag = Some(value)
                }
                _ => {}
            }
        }
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let matches = call.consult_line.as_ref().is_some_and(|line| {
            let phone_tag = line
                .invite
                .from_header()
                .ok()
                .and_then(|f| f.tag().map(str::to_string));
            line.dialog.is_some()
                && line.invite.call_id().ok() == Some(call_id.as_str())
                && to_tag == Some(line.local_tag.as_str())
                && from_tag.is_some()
                && from_tag.map(str::to_string) == phone_tag
        });
        if !matches || !self.trunk_bridged(id) {
            return false;
        }
        self.notify_refer(now, id, "SIP/2.0 200 OK", "terminated;reason=noresource");
        if let Some(mut line) = self.calls.get_mut(&id).and_then(|c| c.consult_line.take()) {
            if let Some(dialog) = line.dialog.as_mut() {
                let bye = dialog.request(Method::Bye);
                self.endpoint.send_request(now, bye, line.peer);
            }
            self.forget_consult_line(id, &line);
        }
        info!(
            call = id.0,
            "attended transfer from the phone: caller joined to the sub-centre"
        );
        // Leaving joins the caller to the sub-centre and stops the hold music.
        self.end_seat_link(now, id, true);
        true
    }

    /// The switch's idea of now for registration lookups made outside an input (the latest
    /// input's time is close enough for "is it registered").
    fn registrations_now(&self) -> Instant {
        self.registrations.latest()
    }
}

/// `%40` and friends in a Replaces value decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
