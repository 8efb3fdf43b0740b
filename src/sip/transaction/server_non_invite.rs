//! The non-INVITE server transaction (RFC 3261 §17.2.2).

use std::time::Instant;

use super::TransactionOutput;
use super::{status_class, Core, Timer, TimerConfig, Transaction, TransactionError};
use crate::sip::fields::Transport;
use crate::sip::message::{Message, Method, Request, Response};

/// The states of a non-INVITE server transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent; retransmissions are absorbed silently.
    Trying,
    /// A provisional response was sent; retransmissions get it again.
    Proceeding,
    /// The final response was sent; retransmissions get it again until Timer J.
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE server transaction (BYE, CANCEL, OPTIONS, INFO, ...).
#[derive(Debug)]
pub struct ServerNonInvite {
    core: Core,
    state: ServerNonInviteState,
    /// The request's method, which tells its retransmissions from other requests on the key.
    method: Method,
    last_response: Option<Response>,
}

impl ServerNonInvite {
    /// Starts the transaction for a received request that arrived over `transport`; INVITE and
    /// ACK are refused. Nothing is sent until the TU responds.
    pub fn new(
        _now: Instant,
        request: Request,
        transport: Transport,
        config: TimerConfig,
    ) -> Result<ServerNonInvite, TransactionError> {
        if matches!(request.method, Method::Invite | Method::Ack) {
            return Err(TransactionError::WrongMethod(request.method));
        }
        Ok(ServerNonInvite {
            core: Core::new(config, transport),
            state: ServerNonInviteState::Trying,
            method: request.method,
            last_response: None,
        })
    }

    /// The current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// Sends a response from the TU: 1xx enters Proceeding, 200-699 enters Completed (Timer J).
    /// After the final response every further one is refused with
    /// [`TransactionError::FinalAlreadySent`] and nothing is sent.
    pub fn respond(&mut self, now: Instant, response: Response) -> Result<(), TransactionError> {
        let class = status_class(response.status)
            .ok_or(TransactionError::InvalidStatus(response.status))?;
        use ServerNonInviteState::*;
        match self.state {
            Terminated => return Err(TransactionError::Terminated),
            Completed => {
                return Err(TransactionError::FinalAlreadySent {
                    sent: self.last_response.as_ref().map_or(0, |r| r.status),
                    rejected: response.status,
                });
            }
            Trying | Proceeding => {
                self.core.transmit(Message::Response(response.clone()));
                self.last_response = Some(response);
                if class == 1 {
                    self.state = Proceeding;
                } else {
                    self.state = Completed;
                    let wait = self.core.config.timer_j(self.core.transport);
                    if wait.is_zero() {
                        self.terminate();
                    } else {
                        self.core.arm(Timer::J, now, wait);
                    }
                }
            }
        }
        Ok(())
    }

    /// Feeds a request matched to this transaction ([`super::ServerKey`]): a retransmission is
    /// answered with the last response sent (absorbed silently in Trying); never passed up.
    pub fn handle_request(&mut self, _now: Instant, request: &Request) {
        let retransmission = request.method == self.method;
        if !retransmission {
            return;
        }
        match self.state {
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                if let Some(response) = &self.last_response {
                    self.core.transmit(Message::Response(response.clone()));
                }
            }
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {}
        }
    }

    /// Enters Terminated.
    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.core.terminate();
    }
}

impl Transaction for ServerNonInvite {
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.timers.pop_expired(now) {
            if timer == Timer::J && self.state == ServerNonInviteState::Completed {
                self.terminate();
            }
        }
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        self.state = ServerNonInviteState::Terminated;
        self.core.fail(TransactionOutput::TransportError);
    }

    fn poll_output(&mut self) -> Option<TransactionOutput> {
        self.core.poll_output()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::test_support::{expect, request, response, Driver};

    fn start(transport: Transport) -> Driver<ServerNonInvite> {
        let base = Instant::now();
        let bye = request(Method::Bye, transport);
        let txn = ServerNonInvite::new(base, bye, transport, TimerConfig::default()).unwrap();
        Driver::new(base, txn)
    }

    /// The transaction keeps no copy of its request; the TU builds responses from its own.
    fn answer(d: &mut Driver<ServerNonInvite>, status: u16) -> Result<(), TransactionError> {
        let r = response(&request(Method::Bye, Transport::Udp), status, Some("uas1"));
        d.feed(|t, now| t.respond(now, r))
    }

    fn retransmit(d: &mut Driver<ServerNonInvite>) {
        let req = request(Method::Bye, Transport::Udp);
        d.feed(|t, now| t.handle_request(now, &req));
    }

    #[test]
    fn trying_absorbs_then_final_is_resent_until_timer_j() {
        let mut d = start(Transport::Udp);
        d.advance_to(0.5);
        retransmit(&mut d);
        d.advance_to(1.0);
        answer(&mut d, 200).unwrap();
        d.advance_to(1.5);
        retransmit(&mut d);
        d.advance_to(100.0);
        assert_eq!(
            d.schedule(),
            expect(&[(1.0, "send 200"), (1.5, "send 200"), (33.0, "terminated")])
        );
    }

    #[test]
    fn proceeding_resends_provisional() {
        let mut d = start(Transport::Udp);
        answer(&mut d, 100).unwrap();
        assert_eq!(d.txn.state(), ServerNonInviteState::Proceeding);
        d.advance_to(0.5);
        retransmit(&mut d);
        d.advance_to(2.0);
        answer(&mut d, 202).unwrap();
        assert_eq!(d.txn.state(), ServerNonInviteState::Completed);
        assert_eq!(
            d.schedule(),
            expect(&[(0.0, "send 100"), (0.5, "send 100"), (2.0, "send 202")])
        );
    }

    #[test]
    fn reliable_timer_j_is_zero() {
        let mut d = start(Transport::Tcp);
        answer(&mut d, 200).unwrap();
        assert_eq!(
            d.schedule(),
            expect(&[(0.0, "send 200"), (0.0, "terminated")])
        );
        assert_eq!(answer(&mut d, 200), Err(TransactionError::Terminated));
    }

    #[test]
    fn response_after_final_is_refused() {
        let mut d = start(Transport::Udp);
        answer(&mut d, 200).unwrap();
        assert_eq!(
            answer(&mut d, 481),
            Err(TransactionError::FinalAlreadySent {
                sent: 200,
                rejected: 481
            })
        );
        assert_eq!(
            answer(&mut d, 700),
            Err(TransactionError::InvalidStatus(700))
        );
        assert_eq!(d.log.len(), 1);
    }

    #[test]
    fn refuses_invite_and_ack() {
        for method in [Method::Invite, Method::Ack] {
            let req = request(method.clone(), Transport::Udp);
            let made =
                ServerNonInvite::new(Instant::now(), req, Transport::Udp, TimerConfig::default());
            assert_eq!(made.err(), Some(TransactionError::WrongMethod(method)));
        }
    }
}
