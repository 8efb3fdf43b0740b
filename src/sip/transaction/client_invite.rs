//! The INVITE client transaction (RFC 3261 §17.1.1, with the RFC 6026 Accepted state).

use std::time::{Duration, Instant};

use super::TransactionOutput;
use super::{status_class, Core, Timer, TimerConfig, Transaction, TransactionError};
use crate::sip::fields::{FieldError, Fields};
use crate::sip::message::{HeaderName, Headers, Message, Method, Request, Response};

/// The states of an INVITE client transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing received; Timer A retransmits (unreliable), Timer B runs.
    Calling,
    /// A provisional response arrived; waiting for the final one.
    Proceeding,
    /// A 300-699 final arrived and was ACKed; Timer D absorbs its retransmissions.
    Completed,
    /// A 2xx arrived (RFC 6026); Timer M passes further 2xx up for the TU to ACK.
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE client transaction: sends the INVITE, ACKs non-2xx finals, passes responses up.
#[derive(Debug)]
pub struct ClientInvite {
    core: Core,
    state: ClientInviteState,
    request: Request,
    seq: u32,
    interval_a: Duration,
    ack: Option<Request>,
}

impl ClientInvite {
    /// Starts the transaction at `now`: the INVITE is queued for transmission at once. The
    /// transport is read from the top Via, which must carry a branch.
    pub fn new(
        now: Instant,
        request: Request,
        config: TimerConfig,
    ) -> Result<ClientInvite, TransactionError> {
        if request.method != Method::Invite {
            return Err(TransactionError::WrongMethod(request.method));
        }
        let via = request.top_via()?;
        if via.branch().is_none() {
            return Err(FieldError::Missing("Via branch").into());
        }
        let seq = request.cseq()?.seq;
        let mut core = Core::new(config, via.transport);
        core.transmit(Message::Request(request.clone()));
        if !core.reliable() {
            core.arm(Timer::A, now, config.timer_a());
        }
        core.arm(Timer::B, now, config.timer_b());
        Ok(ClientInvite {
            core,
            state: ClientInviteState::Calling,
            request,
            seq,
            interval_a: config.timer_a(),
            ack: None,
        })
    }

    /// The current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Feeds a response matched to this transaction ([`super::ClientKey`]). Statuses outside
    /// 100..=699, and responses the state has no use for, are dropped.
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        let Some(class) = status_class(response.status) else {
            return;
        };
        use ClientInviteState::*;
        match (self.state, class) {
            (Calling | Proceeding, 1) => {
                // §17.1.1.2: no more retransmissions; Timer B only guards the Calling state.
                self.state = Proceeding;
                self.core.timers.stop(Timer::A);
                self.core.timers.stop(Timer::B);
                self.core.emit(TransactionOutput::Response(response));
            }
            (Calling | Proceeding, 2) => {
                // RFC 6026 §8.4: the TU ACKs the 2xx; stay to pass its retransmissions up.
                self.state = Accepted;
                self.core.timers.stop_all();
                self.core.arm(Timer::M, now, self.core.config.timer_m());
                self.core.emit(TransactionOutput::Response(response));
            }
            (Calling | Proceeding, _) => {
                self.state = Completed;
                self.core.timers.stop_all();
                let ack = ack_for(&self.request, self.seq, &response);
                self.core.emit(TransactionOutput::Response(response));
                self.core.transmit(Message::Request(ack.clone()));
                self.ack = Some(ack);
                let wait = self.core.config.timer_d(self.core.transport);
                self.enter_wait(now, Timer::D, wait);
            }
            (Completed, 3..) => {
                // A retransmitted final: ACK it again, do not tell the TU.
                if let Some(ack) = &self.ack {
                    self.core.transmit(Message::Request(ack.clone()));
                }
            }
            (Accepted, 2) => self.core.emit(TransactionOutput::Response(response)),
            // 1xx after a final, or a 2xx after a non-2xx final: a broken peer; dropped.
            _ => {}
        }
    }

    /// Builds the CANCEL for this INVITE (§9.1): same Request-URI, Call-ID, From, To, CSeq
    /// number, top Via (same branch) and Route; method CANCEL.
    ///
    /// `None` unless the transaction is in Proceeding: a CANCEL must not be sent before a
    /// provisional response arrived (the TU has to wait for one), nor after a final. The TU
    /// sends the CANCEL in its own [`super::ClientNonInvite`] and then calls
    /// [`ClientInvite::cancel_sent`]. A 2xx that still arrives is passed up as usual: the TU
    /// must ACK it and then send BYE.
    pub fn cancel(&self) -> Option<Request> {
        if self.state != ClientInviteState::Proceeding {
            return None;
        }
        let to = self.request.headers.get(&HeaderName::To);
        Some(derived_request(&self.request, Method::Cancel, self.seq, to))
    }

    /// Tells the transaction a CANCEL was sent at `now`: if no final response arrives within
    /// 64·T1 it reports `Timeout` and terminates (§9.1). Ignored outside Proceeding.
    pub fn cancel_sent(&mut self, now: Instant) {
        if self.state == ClientInviteState::Proceeding {
            let wait = self.core.config.sixty_four_t1();
            self.core.arm(Timer::Cancel, now, wait);
        }
    }

    /// Arms `timer` for `wait`, or terminates at once when `wait` is zero (reliable transport).
    fn enter_wait(&mut self, now: Instant, timer: Timer, wait: Duration) {
        if wait.is_zero() {
            self.terminate();
        } else {
            self.core.arm(timer, now, wait);
        }
    }

    /// Enters Terminated.
    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.core.terminate();
    }

    /// Acts on an expired timer.
    fn on_timer(&mut self, now: Instant, timer: Timer) {
        use ClientInviteState::*;
        match (timer, self.state) {
            (Timer::A, Calling) => {
                // §17.1.1.2: the interval doubles with no cap at T2.
                self.core.transmit(Message::Request(self.request.clone()));
                self.interval_a = self.interval_a.saturating_mul(2);
                self.core.arm(Timer::A, now, self.interval_a);
            }
            (Timer::B, Calling) | (Timer::Cancel, Proceeding) => {
                self.state = Terminated;
                self.core.fail(TransactionOutput::Timeout);
            }
            (Timer::D, Completed) | (Timer::M, Accepted) => self.terminate(),
            _ => {}
        }
    }
}

/// Builds the ACK for a 300-699 final (§17.1.1.3): Request-URI, Call-ID, From, top Via and
/// Route of the INVITE, To of the response (with its tag), CSeq number with method ACK.
fn ack_for(invite: &Request, seq: u32, response: &Response) -> Request {
    let to = response
        .headers
        .get(&HeaderName::To)
        .or_else(|| invite.headers.get(&HeaderName::To));
    derived_request(invite, Method::Ack, seq, to)
}

/// A request derived from `invite` for ACK or CANCEL: one Via (the INVITE's top one), the
/// INVITE's Route set, Max-Forwards, From, Call-ID; `to` as given; CSeq `seq method`; no body.
fn derived_request(invite: &Request, method: Method, seq: u32, to: Option<&str>) -> Request {
    let mut headers = Headers::new();
    let original = &invite.headers;
    if let Some(via) = original.get(&HeaderName::Via) {
        headers.push(HeaderName::Via, via);
    }
    headers.copy_from(original, &HeaderName::Route);
    let max_forwards = original.get(&HeaderName::MaxForwards).unwrap_or("70");
    headers.push(HeaderName::MaxForwards, max_forwards);
    headers.copy_from(original, &HeaderName::From);
    if let Some(to) = to {
        headers.push(HeaderName::To, to);
    }
    headers.copy_from(original, &HeaderName::CallId);
    headers.push(HeaderName::CSeq, format!("{seq} {method}"));
    Request {
        method,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

impl Transaction for ClientInvite {
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.timers.pop_expired(now) {
            self.on_timer(now, timer);
        }
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        self.state = ClientInviteState::Terminated;
        self.core.fail(TransactionOutput::TransportError);
    }

    fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.core.poll_output()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::fields::Transport;
    use crate::sip::transaction::test_support::{expect, invite, response, Driver};

    fn start(transport: Transport) -> Driver<ClientInvite> {
        let base = Instant::now();
        let txn = ClientInvite::new(base, invite(transport), TimerConfig::default()).unwrap();
        Driver::new(base, txn)
    }

    fn reply(d: &mut Driver<ClientInvite>, status: u16) {
        let r = response(d.txn.request(), status, Some("uas1"));
        d.feed(|t, now| t.handle_response(now, r));
    }

    fn sent_request(d: &Driver<ClientInvite>) -> Request {
        match d.last_sent() {
            Some(Message::Request(r)) => r.clone(),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn udp_timer_a_doubles_without_cap_until_timer_b() {
        let mut d = start(Transport::Udp);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send INVITE"),
                (0.5, "send INVITE"),
                (1.5, "send INVITE"),
                (3.5, "send INVITE"),
                (7.5, "send INVITE"),
                (15.5, "send INVITE"),
                (31.5, "send INVITE"),
                (32.0, "timeout"),
                (32.0, "terminated"),
            ])
        );
        assert_eq!(d.txn.state(), ClientInviteState::Terminated);
        assert_eq!(d.txn.poll_timeout(), None);
    }

    #[test]
    fn tcp_sends_once_and_times_out_at_64_t1() {
        let mut d = start(Transport::Tcp);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send INVITE"),
                (32.0, "timeout"),
                (32.0, "terminated")
            ])
        );
    }

    #[test]
    fn provisional_stops_retransmission_and_timer_b() {
        let mut d = start(Transport::Udp);
        d.advance_to(1.0);
        reply(&mut d, 100);
        reply(&mut d, 180);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send INVITE"),
                (0.5, "send INVITE"),
                (1.0, "up 100"),
                (1.0, "up 180"),
            ])
        );
        assert_eq!(d.txn.state(), ClientInviteState::Proceeding);
        assert_eq!(d.txn.poll_timeout(), None);
    }

    #[test]
    fn non_2xx_final_is_acked_by_the_transaction() {
        let mut d = start(Transport::Udp);
        d.advance_to(0.2);
        reply(&mut d, 486);
        let ack = sent_request(&d);
        let inv = d.txn.request().clone();
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        assert_eq!(
            ack.headers.get_all(&HeaderName::Via).collect::<Vec<_>>(),
            vec!["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1"]
        );
        let routes = |r: &Request| -> Vec<String> {
            r.headers
                .get_all(&HeaderName::Route)
                .map(str::to_string)
                .collect()
        };
        assert_eq!(routes(&ack), routes(&inv));
        assert_eq!(ack.from_header(), inv.from_header());
        assert_eq!(ack.to_header().unwrap().tag(), Some("uas1"));
        assert_eq!(ack.call_id(), inv.call_id());
        assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("1 ACK"));
        assert!(ack.body.is_empty());
        // Retransmitted finals are ACKed again, not passed up; Timer D (32 s) ends it.
        d.advance_to(2.0);
        reply(&mut d, 486);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send INVITE"),
                (0.2, "up 486"),
                (0.2, "send ACK"),
                (2.0, "send ACK"),
                (32.2, "terminated"),
            ])
        );
    }

    #[test]
    fn reliable_timer_d_is_zero() {
        let mut d = start(Transport::Tcp);
        d.advance_to(3.0);
        reply(&mut d, 404);
        assert_eq!(
            d.schedule_from(3.0),
            expect(&[(3.0, "up 404"), (3.0, "send ACK"), (3.0, "terminated")])
        );
        assert!(d.txn.is_terminated());
    }

    #[test]
    fn accepted_passes_2xx_retransmissions_up_until_timer_m() {
        let mut d = start(Transport::Udp);
        d.advance_to(1.0);
        reply(&mut d, 180);
        d.advance_to(4.0);
        reply(&mut d, 200);
        assert_eq!(d.txn.state(), ClientInviteState::Accepted);
        d.advance_to(8.0);
        reply(&mut d, 200);
        reply(&mut d, 486); // nonsense after a 2xx: dropped
        d.advance_to(100.0);
        assert_eq!(
            d.schedule_from(1.0),
            expect(&[
                (1.0, "up 180"),
                (4.0, "up 200"),
                (8.0, "up 200"),
                (36.0, "terminated"),
            ])
        );
    }

    #[test]
    fn cancel_is_built_only_in_proceeding() {
        let mut d = start(Transport::Udp);
        assert_eq!(d.txn.cancel(), None, "no CANCEL before a provisional");
        reply(&mut d, 180);
        let cancel = d.txn.cancel().unwrap();
        let inv = d.txn.request().clone();
        assert_eq!(cancel.method, Method::Cancel);
        assert_eq!(cancel.uri, inv.uri);
        assert_eq!(cancel.top_via(), inv.top_via());
        assert_eq!(cancel.headers.get_all(&HeaderName::Via).count(), 1);
        assert_eq!(cancel.headers.get_all(&HeaderName::Route).count(), 2);
        assert_eq!(
            cancel.headers.get(&HeaderName::To),
            inv.headers.get(&HeaderName::To)
        );
        assert_eq!(cancel.from_header(), inv.from_header());
        assert_eq!(cancel.call_id(), inv.call_id());
        assert_eq!(cancel.headers.get(&HeaderName::CSeq), Some("1 CANCEL"));
        reply(&mut d, 200);
        assert_eq!(d.txn.cancel(), None, "no CANCEL after a final");
    }

    #[test]
    fn two_hundred_after_cancel_is_still_passed_up() {
        let mut d = start(Transport::Udp);
        reply(&mut d, 180);
        d.advance_to(5.0);
        assert!(d.txn.cancel().is_some());
        d.feed(|t, now| t.cancel_sent(now));
        d.advance_to(5.1);
        reply(&mut d, 200);
        assert_eq!(d.txn.state(), ClientInviteState::Accepted);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule_from(5.0),
            expect(&[(5.1, "up 200"), (37.1, "terminated")])
        );
    }

    #[test]
    fn four_eight_seven_after_cancel_is_acked() {
        let mut d = start(Transport::Udp);
        reply(&mut d, 180);
        d.feed(|t, now| t.cancel_sent(now));
        d.advance_to(0.3);
        reply(&mut d, 487);
        assert_eq!(
            d.schedule_from(0.3),
            expect(&[(0.3, "up 487"), (0.3, "send ACK")])
        );
        assert_eq!(
            sent_request(&d).headers.get(&HeaderName::CSeq),
            Some("1 ACK")
        );
    }

    #[test]
    fn no_final_64_t1_after_cancel_times_out() {
        let mut d = start(Transport::Udp);
        d.advance_to(2.0);
        reply(&mut d, 180);
        d.feed(|t, now| t.cancel_sent(now));
        d.advance_to(100.0);
        assert_eq!(
            d.schedule_from(2.0),
            expect(&[(2.0, "up 180"), (34.0, "timeout"), (34.0, "terminated")])
        );
    }

    #[test]
    fn refuses_other_methods_and_missing_branch() {
        let now = Instant::now();
        let mut bye = invite(Transport::Udp);
        bye.method = Method::Bye;
        assert_eq!(
            ClientInvite::new(now, bye, TimerConfig::default()).err(),
            Some(TransactionError::WrongMethod(Method::Bye))
        );
        let mut no_branch = invite(Transport::Udp);
        no_branch
            .headers
            .set(HeaderName::Via, "SIP/2.0/UDP 192.0.2.10");
        assert_eq!(
            ClientInvite::new(now, no_branch, TimerConfig::default()).err(),
            Some(TransactionError::Field(FieldError::Missing("Via branch")))
        );
    }

    #[test]
    fn transport_error_informs_tu_and_terminates() {
        let mut d = start(Transport::Udp);
        d.advance_to(0.7);
        d.feed(|t, now| t.handle_transport_error(now));
        d.advance_to(100.0);
        assert_eq!(
            d.schedule_from(0.6),
            expect(&[(0.7, "transport error"), (0.7, "terminated")])
        );
    }
}
