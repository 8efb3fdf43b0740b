//! The INVITE server transaction (RFC 3261 §17.2.1, with the RFC 6026 Accepted state).
//!
//! In this engine the UAS core's 2xx retransmission (RFC 3261 §13.3.1.4) also lives here, in
//! the Accepted state: the 2xx is resent at T1, 2·T1, 4·T1 ... capped at T2 until the dialog
//! layer reports the ACK ([`ServerInvite::handle_ack_for_2xx`]), and after 64·T1 without one
//! the machine reports [`TransactionOutput::Timeout`] (the TU must then send BYE). The 2xx is
//! retransmitted on reliable transports too: it is end-to-end, and a later hop may be UDP.

use std::time::{Duration, Instant};

use super::TransactionOutput;
use super::{status_class, Core, Timer, TimerConfig, Transaction, TransactionError};
use crate::sip::fields::Transport;
use crate::sip::message::{HeaderName, Message, Method, Request, Response};

/// The states of an INVITE server transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerInviteState {
    /// Waiting for the TU's final response; provisional responses go out.
    Proceeding,
    /// A 300-699 final was sent; Timer G retransmits it (unreliable) until the ACK or Timer H.
    Completed,
    /// The ACK of the non-2xx final arrived; Timer I absorbs ACK retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026); INVITE retransmissions are absorbed until Timer L.
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct ServerInvite {
    core: Core,
    state: ServerInviteState,
    /// Resent for INVITE retransmissions while in Proceeding; dropped with the final response.
    last_provisional: Option<Response>,
    /// Resent by Timer G or the 2xx retransmission; dropped once the ACK arrived, so a
    /// finished call keeps only its key for the 32 s of Timer L or H, not its messages.
    last_final: Option<Response>,
    /// Status of the final response sent, for [`TransactionError::FinalAlreadySent`].
    final_status: u16,
    /// Current interval of Timer G (Completed) or of the 2xx retransmission (Accepted).
    interval: Duration,
    /// Accepted: whether the ACK for the 2xx arrived.
    acked_2xx: bool,
}

impl ServerInvite {
    /// Starts the transaction for a received INVITE that arrived over `transport`.
    ///
    /// A `100 Trying` is queued at once (§17.2.1): the TU will not answer within 200 ms because
    /// it has to allocate media first, and the 100 stops the caller's Timer A retransmissions.
    pub fn new(
        _now: Instant,
        request: Request,
        transport: Transport,
        config: TimerConfig,
    ) -> Result<ServerInvite, TransactionError> {
        if request.method != Method::Invite {
            return Err(TransactionError::WrongMethod(request.method));
        }
        let mut trying = Response::to(&request, 100);
        // §8.2.6.1: a Timestamp in the request is copied into the 100 (Trying).
        trying.headers.copy_from(
            &request.headers,
            &HeaderName::Other("Timestamp".to_string()),
        );
        let mut core = Core::new(config, transport);
        core.transmit(Message::Response(trying.clone()));
        Ok(ServerInvite {
            core,
            state: ServerInviteState::Proceeding,
            last_provisional: Some(trying),
            last_final: None,
            final_status: 0,
            interval: config.t1,
            acked_2xx: false,
        })
    }

    /// The current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// Sends a response from the TU.
    ///
    /// In Proceeding: 1xx is sent and remembered for INVITE retransmissions; 2xx is sent and
    /// enters Accepted; 300-699 is sent and enters Completed. In Accepted a further 2xx is
    /// passed to the transport (RFC 6026 §8.7) and becomes the one retransmitted. Any other
    /// response after a final — e.g. a 487 the TU produces for a CANCEL that lost the race with
    /// its own 200 — is refused with [`TransactionError::FinalAlreadySent`] and nothing is sent.
    pub fn respond(&mut self, now: Instant, response: Response) -> Result<(), TransactionError> {
        let class = status_class(response.status)
            .ok_or(TransactionError::InvalidStatus(response.status))?;
        use ServerInviteState::*;
        match (self.state, class) {
            (Terminated, _) => return Err(TransactionError::Terminated),
            (Proceeding, 1) => {
                self.core.transmit(Message::Response(response.clone()));
                self.last_provisional = Some(response);
            }
            (Proceeding, 2) => {
                self.state = Accepted;
                self.send_final(response);
                let config = self.core.config;
                self.core.arm(Timer::L, now, config.timer_l());
                self.interval = config.t1;
                self.core.arm(Timer::Retransmit2xx, now, self.interval);
                self.core.arm(Timer::Ack2xx, now, config.sixty_four_t1());
            }
            (Proceeding, _) => {
                self.state = Completed;
                self.send_final(response);
                let config = self.core.config;
                if !self.core.reliable() {
                    self.interval = config.timer_g();
                    self.core.arm(Timer::G, now, self.interval);
                }
                self.core.arm(Timer::H, now, config.timer_h());
            }
            (Accepted, 2) => self.send_final(response),
            (Completed | Confirmed | Accepted, _) => {
                return Err(TransactionError::FinalAlreadySent {
                    sent: self.final_status,
                    rejected: response.status,
                });
            }
        }
        Ok(())
    }

    /// Feeds a request matched to this transaction ([`super::ServerKey`]): a retransmitted
    /// INVITE, or an ACK. Nothing is passed to the TU except an ACK in Accepted (its 2xx ACK
    /// reusing the INVITE's branch), which is handled like [`ServerInvite::handle_ack_for_2xx`]
    /// and passed up once as [`TransactionOutput::Ack`].
    pub fn handle_request(&mut self, now: Instant, request: &Request) {
        use ServerInviteState::*;
        match (&request.method, self.state) {
            (Method::Invite, Proceeding) => {
                if let Some(provisional) = &self.last_provisional {
                    self.core.transmit(Message::Response(provisional.clone()));
                }
            }
            (Method::Invite, Completed) => self.retransmit_final(),
            (Method::Ack, Completed) => {
                self.state = Confirmed;
                self.last_final = None;
                self.core.timers.stop_all();
                let wait = self.core.config.timer_i(self.core.transport);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.core.arm(Timer::I, now, wait);
                }
            }
            (Method::Ack, Accepted) if !self.acked_2xx => {
                self.handle_ack_for_2xx(now);
                self.core.emit(TransactionOutput::Ack(request.clone()));
            }
            // RFC 6026 §7.1: INVITE retransmissions in Accepted are absorbed; so are ACK
            // retransmissions in Confirmed, and anything else.
            _ => {}
        }
    }

    /// Called by the dialog layer when the ACK for this transaction's 2xx arrived (it is a
    /// transaction of its own, with its own branch): stops the 2xx retransmission. Timer L
    /// keeps the transaction to absorb INVITE retransmissions. Ignored outside Accepted.
    pub fn handle_ack_for_2xx(&mut self, _now: Instant) {
        if self.state == ServerInviteState::Accepted {
            self.acked_2xx = true;
            self.last_final = None;
            self.core.timers.stop(Timer::Retransmit2xx);
            self.core.timers.stop(Timer::Ack2xx);
        }
    }

    /// Sends a final response and keeps it for retransmission unless the 2xx was already
    /// ACKed (the provisional is done with).
    fn send_final(&mut self, response: Response) {
        self.core.transmit(Message::Response(response.clone()));
        self.final_status = response.status;
        self.last_final = (!self.acked_2xx).then_some(response);
        self.last_provisional = None;
    }

    /// Resends the last final response.
    fn retransmit_final(&mut self) {
        if let Some(response) = &self.last_final {
            self.core.transmit(Message::Response(response.clone()));
        }
    }

    /// Enters Terminated.
    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.core.terminate();
    }

    /// Acts on an expired timer.
    fn on_timer(&mut self, now: Instant, timer: Timer) {
        use ServerInviteState::*;
        match (timer, self.state) {
            (Timer::G, Completed) | (Timer::Retransmit2xx, Accepted) => {
                self.retransmit_final();
                self.interval = self.core.config.double_capped(self.interval);
                self.core.arm(timer, now, self.interval);
            }
            (Timer::H, Completed) => {
                self.state = Terminated;
                self.core.fail(TransactionOutput::Timeout);
            }
            (Timer::Ack2xx, Accepted) => {
                self.core.timers.stop(Timer::Retransmit2xx);
                self.core.emit(TransactionOutput::Timeout);
            }
            (Timer::L, Accepted) => {
                // Should L win a tie with the 2xx ACK wait, still report the missing ACK.
                if self.core.timers.get(Timer::Ack2xx).is_some() {
                    self.core.emit(TransactionOutput::Timeout);
                }
                self.terminate();
            }
            (Timer::I, Confirmed) => self.terminate(),
            _ => {}
        }
    }
}

impl Transaction for ServerInvite {
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.timers.pop_expired(now) {
            self.on_timer(now, timer);
        }
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        self.state = ServerInviteState::Terminated;
        self.core.fail(TransactionOutput::TransportError);
    }

    fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.core.poll_output()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::{expect, invite, response, with_to_tag, Driver};

    fn start(transport: Transport) -> Driver<ServerInvite> {
        let base = Instant::now();
        let inv = invite(transport);
        let txn = ServerInvite::new(base, inv, transport, TimerConfig::default()).unwrap();
        Driver::new(base, txn)
    }

    /// The transaction keeps no copy of its INVITE; the TU builds responses from its own.
    fn answer(d: &mut Driver<ServerInvite>, status: u16) -> Result<(), TransactionError> {
        let r = response(&invite(Transport::Udp), status, Some("uas1"));
        d.feed(|t, now| t.respond(now, r))
    }

    fn receive(d: &mut Driver<ServerInvite>, method: Method) {
        let mut req = with_to_tag(invite(Transport::Udp), "uas1");
        req.method = method;
        d.feed(|t, now| t.handle_request(now, &req));
    }

    #[test]
    fn sends_100_trying_at_once_and_resends_latest_provisional() {
        let mut d = start(Transport::Udp);
        match d.last_sent() {
            Some(Message::Response(r)) => {
                assert_eq!(r.status, 100);
                let stamp = HeaderName::Other("Timestamp".to_string());
                assert_eq!(r.headers.get(&stamp), Some("54"));
            }
            other => panic!("expected 100 Trying, got {other:?}"),
        }
        d.advance_to(0.5);
        receive(&mut d, Method::Invite);
        d.advance_to(1.0);
        answer(&mut d, 180).unwrap();
        d.advance_to(1.5);
        receive(&mut d, Method::Invite);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send 100"),
                (0.5, "send 100"),
                (1.0, "send 180"),
                (1.5, "send 180"),
            ])
        );
        assert_eq!(d.txn.state(), ServerInviteState::Proceeding);
        assert_eq!(d.txn.poll_timeout(), None);
    }

    #[test]
    fn udp_non_2xx_timer_g_capped_at_t2_until_timer_h() {
        let mut d = start(Transport::Udp);
        answer(&mut d, 486).unwrap();
        d.advance_to(100.0);
        assert_eq!(
            d.schedule()[1..],
            expect(&[
                (0.0, "send 486"),
                (0.5, "send 486"),
                (1.5, "send 486"),
                (3.5, "send 486"),
                (7.5, "send 486"),
                (11.5, "send 486"),
                (15.5, "send 486"),
                (19.5, "send 486"),
                (23.5, "send 486"),
                (27.5, "send 486"),
                (31.5, "send 486"),
                (32.0, "timeout"),
                (32.0, "terminated"),
            ])
        );
    }

    #[test]
    fn ack_confirms_stops_timer_g_and_timer_i_absorbs_acks() {
        let mut d = start(Transport::Udp);
        answer(&mut d, 486).unwrap();
        d.advance_to(1.0);
        receive(&mut d, Method::Invite);
        d.advance_to(2.0);
        receive(&mut d, Method::Ack);
        assert_eq!(d.txn.state(), ServerInviteState::Confirmed);
        d.advance_to(3.0);
        receive(&mut d, Method::Ack);
        receive(&mut d, Method::Invite);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send 100"),
                (0.0, "send 486"),
                (0.5, "send 486"),
                (1.0, "send 486"),
                (1.5, "send 486"),
                (7.0, "terminated"),
            ])
        );
    }

    #[test]
    fn tcp_has_no_timer_g_and_timer_i_is_zero() {
        let mut d = start(Transport::Tcp);
        answer(&mut d, 603).unwrap();
        d.advance_to(2.0);
        receive(&mut d, Method::Ack);
        assert_eq!(
            d.schedule(),
            expect(&[(0.0, "send 100"), (0.0, "send 603"), (2.0, "terminated")])
        );
        let mut lost = start(Transport::Tcp);
        answer(&mut lost, 603).unwrap();
        lost.advance_to(100.0);
        assert_eq!(
            lost.schedule_from(1.0),
            expect(&[(32.0, "timeout"), (32.0, "terminated")])
        );
    }

    #[test]
    fn accepted_retransmits_2xx_until_acked_and_absorbs_invites() {
        let mut d = start(Transport::Udp);
        d.advance_to(1.0);
        answer(&mut d, 200).unwrap();
        assert_eq!(d.txn.state(), ServerInviteState::Accepted);
        d.advance_to(2.0);
        receive(&mut d, Method::Invite);
        d.advance_to(10.0);
        d.feed(|t, now| t.handle_ack_for_2xx(now));
        d.advance_to(12.0);
        receive(&mut d, Method::Invite);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule_from(1.0),
            expect(&[
                (1.0, "send 200"),
                (1.5, "send 200"),
                (2.5, "send 200"),
                (4.5, "send 200"),
                (8.5, "send 200"),
                (33.0, "terminated"),
            ])
        );
    }

    #[test]
    fn unacked_2xx_times_out_at_64_t1() {
        let mut d = start(Transport::Udp);
        answer(&mut d, 200).unwrap();
        d.advance_to(100.0);
        let mut rows = vec![(0.0, "send 200")];
        rows.extend(
            [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5].map(|t| (t, "send 200")),
        );
        rows.extend([(32.0, "timeout"), (32.0, "terminated")]);
        assert_eq!(d.schedule()[1..], expect(&rows));
    }

    #[test]
    fn two_hundred_is_retransmitted_on_tcp_too() {
        let mut d = start(Transport::Tcp);
        answer(&mut d, 200).unwrap();
        d.advance_to(2.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send 100"),
                (0.0, "send 200"),
                (0.5, "send 200"),
                (1.5, "send 200"),
            ])
        );
    }

    #[test]
    fn ack_reusing_invite_branch_in_accepted_is_passed_up_once() {
        let mut d = start(Transport::Udp);
        answer(&mut d, 200).unwrap();
        d.advance_to(0.2);
        receive(&mut d, Method::Ack);
        receive(&mut d, Method::Ack);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send 100"),
                (0.0, "send 200"),
                (0.2, "ack up"),
                (32.0, "terminated"),
            ])
        );
    }

    #[test]
    fn second_final_is_refused_and_nothing_sent() {
        // CANCEL race: the TU answered 200, then tries 487 for the CANCEL.
        let mut d = start(Transport::Udp);
        answer(&mut d, 200).unwrap();
        let before = d.log.len();
        assert_eq!(
            answer(&mut d, 487),
            Err(TransactionError::FinalAlreadySent {
                sent: 200,
                rejected: 487
            })
        );
        assert_eq!(d.log.len(), before);
        // A 2xx resent by the TU in Accepted is passed to the transport (RFC 6026 §8.7).
        assert_eq!(answer(&mut d, 200), Ok(()));
        assert_eq!(d.log.len(), before + 1);

        let mut rejected = start(Transport::Udp);
        answer(&mut rejected, 487).unwrap();
        let sent = rejected.log.len();
        assert!(matches!(
            answer(&mut rejected, 200),
            Err(TransactionError::FinalAlreadySent { .. })
        ));
        assert!(answer(&mut rejected, 180).is_err());
        assert_eq!(rejected.log.len(), sent);
        assert_eq!(
            answer(&mut rejected, 99),
            Err(TransactionError::InvalidStatus(99))
        );
    }

    #[test]
    fn after_the_ack_a_second_final_is_still_refused_by_its_status() {
        // Once ACKed the responses are no longer kept; the refusal still names what was sent.
        let mut accepted = start(Transport::Udp);
        answer(&mut accepted, 200).unwrap();
        receive(&mut accepted, Method::Ack);
        let mut confirmed = start(Transport::Udp);
        answer(&mut confirmed, 486).unwrap();
        receive(&mut confirmed, Method::Ack);
        for (d, sent) in [(&mut accepted, 200), (&mut confirmed, 486)] {
            let before = d.log.len();
            assert_eq!(
                answer(d, 603),
                Err(TransactionError::FinalAlreadySent {
                    sent,
                    rejected: 603
                })
            );
            // A retransmitted INVITE is absorbed: nothing is resent.
            receive(d, Method::Invite);
            d.advance_to(10.0);
            assert!(
                d.log[before..]
                    .iter()
                    .all(|(_, output)| !matches!(output, TransactionOutput::Transmit(_))),
                "{:?}",
                d.schedule_from(0.0)
            );
        }
    }

    #[test]
    fn refuses_other_methods() {
        let mut bye = invite(Transport::Udp);
        bye.method = Method::Bye;
        let made = ServerInvite::new(Instant::now(), bye, Transport::Udp, TimerConfig::default());
        assert_eq!(made.err(), Some(TransactionError::WrongMethod(Method::Bye)));
    }
}
