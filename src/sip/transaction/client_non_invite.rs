//! The non-INVITE client transaction (RFC 3261 §17.1.2).

use std::time::{Duration, Instant};

use super::TransactionOutput;
use super::{status_class, Core, Timer, TimerConfig, Transaction, TransactionError};
use crate::sip::fields::{FieldError, Fields};
use crate::sip::message::{Message, Method, Request, Response};

/// The states of a non-INVITE client transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent; Timer E retransmits (unreliable), Timer F runs.
    Trying,
    /// A provisional response arrived; Timer E now retransmits every T2.
    Proceeding,
    /// A final response arrived; Timer K absorbs its retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE client transaction (BYE, CANCEL, OPTIONS, INFO, REFER, ...).
#[derive(Debug)]
pub struct ClientNonInvite {
    core: Core,
    state: ClientNonInviteState,
    request: Request,
    interval_e: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction at `now`: the request is queued for transmission at once. The
    /// transport is read from the top Via, which must carry a branch. INVITE and ACK are refused.
    pub fn new(
        now: Instant,
        request: Request,
        config: TimerConfig,
    ) -> Result<ClientNonInvite, TransactionError> {
        if matches!(request.method, Method::Invite | Method::Ack) {
            return Err(TransactionError::WrongMethod(request.method));
        }
        let via = request.top_via()?;
        if via.branch().is_none() {
            return Err(FieldError::Missing("Via branch").into());
        }
        let mut core = Core::new(config, via.transport);
        core.transmit(Message::Request(request.clone()));
        if !core.reliable() {
            core.arm(Timer::E, now, config.timer_e());
        }
        core.arm(Timer::F, now, config.timer_f());
        Ok(ClientNonInvite {
            core,
            state: ClientNonInviteState::Trying,
            request,
            interval_e: config.timer_e(),
        })
    }

    /// The current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Feeds a response matched to this transaction ([`super::ClientKey`]). Statuses outside
    /// 100..=699 and responses after the final one are dropped.
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        let Some(class) = status_class(response.status) else {
            return;
        };
        use ClientNonInviteState::*;
        match (self.state, class) {
            (Trying | Proceeding, 1) => {
                self.state = Proceeding;
                self.core.emit(TransactionOutput::Response(response));
            }
            (Trying | Proceeding, _) => {
                self.state = Completed;
                self.core.timers.stop_all();
                self.core.emit(TransactionOutput::Response(response));
                let wait = self.core.config.timer_k(self.core.transport);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.core.arm(Timer::K, now, wait);
                }
            }
            // Completed: retransmitted responses are absorbed.
            _ => {}
        }
    }

    /// Enters Terminated.
    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.core.terminate();
    }

    /// Acts on an expired timer.
    fn on_timer(&mut self, now: Instant, timer: Timer) {
        use ClientNonInviteState::*;
        match (timer, self.state) {
            (Timer::E, Trying | Proceeding) => {
                self.core.transmit(Message::Request(self.request.clone()));
                // §17.1.2.2: doubling up to T2 in Trying; fixed at T2 once Proceeding.
                self.interval_e = match self.state {
                    Proceeding => self.core.config.t2,
                    _ => self.core.config.double_capped(self.interval_e),
                };
                self.core.arm(Timer::E, now, self.interval_e);
            }
            (Timer::F, Trying | Proceeding) => {
                self.state = Terminated;
                self.core.fail(TransactionOutput::Timeout);
            }
            (Timer::K, Completed) => self.terminate(),
            _ => {}
        }
    }
}

impl Transaction for ClientNonInvite {
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.timers.pop_expired(now) {
            self.on_timer(now, timer);
        }
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        self.state = ClientNonInviteState::Terminated;
        self.core.fail(TransactionOutput::TransportError);
    }

    fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.core.poll_output()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::fields::Transport;
    use crate::sip::transaction::test_support::{expect, request, response, Driver};

    fn start(transport: Transport) -> Driver<ClientNonInvite> {
        let base = Instant::now();
        let bye = request(Method::Bye, transport);
        let txn = ClientNonInvite::new(base, bye, TimerConfig::default()).unwrap();
        Driver::new(base, txn)
    }

    fn reply(d: &mut Driver<ClientNonInvite>, status: u16) {
        let r = response(d.txn.request(), status, Some("uas1"));
        d.feed(|t, now| t.handle_response(now, r));
    }

    #[test]
    fn udp_timer_e_doubles_capped_at_t2_until_timer_f() {
        let mut d = start(Transport::Udp);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send BYE"),
                (0.5, "send BYE"),
                (1.5, "send BYE"),
                (3.5, "send BYE"),
                (7.5, "send BYE"),
                (11.5, "send BYE"),
                (15.5, "send BYE"),
                (19.5, "send BYE"),
                (23.5, "send BYE"),
                (27.5, "send BYE"),
                (31.5, "send BYE"),
                (32.0, "timeout"),
                (32.0, "terminated"),
            ])
        );
    }

    #[test]
    fn timer_e_is_t2_once_proceeding() {
        let mut d = start(Transport::Udp);
        d.advance_to(1.0);
        reply(&mut d, 100);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send BYE"),
                (0.5, "send BYE"),
                (1.0, "up 100"),
                // Timer E armed in Trying fires at 1.5, then every T2.
                (1.5, "send BYE"),
                (5.5, "send BYE"),
                (9.5, "send BYE"),
                (13.5, "send BYE"),
                (17.5, "send BYE"),
                (21.5, "send BYE"),
                (25.5, "send BYE"),
                (29.5, "send BYE"),
                (32.0, "timeout"),
                (32.0, "terminated"),
            ])
        );
    }

    #[test]
    fn tcp_sends_once_and_times_out_at_64_t1() {
        let mut d = start(Transport::Tcp);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[(0.0, "send BYE"), (32.0, "timeout"), (32.0, "terminated")])
        );
    }

    #[test]
    fn udp_final_absorbs_retransmissions_for_timer_k() {
        let mut d = start(Transport::Udp);
        d.advance_to(1.0);
        reply(&mut d, 200);
        d.advance_to(2.0);
        reply(&mut d, 200);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[
                (0.0, "send BYE"),
                (0.5, "send BYE"),
                (1.0, "up 200"),
                (6.0, "terminated"),
            ])
        );
    }

    #[test]
    fn reliable_timer_k_is_zero() {
        let mut d = start(Transport::Tls);
        d.advance_to(1.0);
        reply(&mut d, 481);
        assert_eq!(
            d.schedule(),
            expect(&[(0.0, "send BYE"), (1.0, "up 481"), (1.0, "terminated")])
        );
        assert_eq!(d.txn.poll_timeout(), None);
    }

    #[test]
    fn refuses_invite_and_ack() {
        let now = Instant::now();
        for method in [Method::Invite, Method::Ack] {
            let req = request(method.clone(), Transport::Udp);
            assert_eq!(
                ClientNonInvite::new(now, req, TimerConfig::default()).err(),
                Some(TransactionError::WrongMethod(method))
            );
        }
    }
}
