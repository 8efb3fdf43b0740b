//! Transaction timer values (RFC 3261 Table 4, RFC 6026 §8.4) and the table of armed timers.

use std::time::{Duration, Instant};

use crate::sip::fields::Transport;

/// The base values every transaction timer derives from (RFC 3261 §17.1.1.1, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1, the round-trip time estimate (default 500 ms).
    pub t1: Duration,
    /// T2, the longest retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// T4, the longest time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The floor RFC 3261 §17.1.1.2 sets for Timer D on unreliable transports.
const TIMER_D_FLOOR: Duration = Duration::from_secs(32);

impl TimerConfig {
    /// 64·T1: Timers B, F, H, L, M and J (unreliable).
    pub fn sixty_four_t1(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer A's first interval (INVITE request retransmit, unreliable only): T1, doubling, no cap.
    pub fn timer_a(&self) -> Duration {
        self.t1
    }

    /// Timer B: INVITE client transaction timeout, 64·T1.
    pub fn timer_b(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer D: wait for response retransmits; at least 32 s unreliable (64·T1 if larger), 0 reliable.
    pub fn timer_d(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.sixty_four_t1().max(TIMER_D_FLOOR)
        }
    }

    /// Timer E's first interval (non-INVITE request retransmit, unreliable only): T1.
    pub fn timer_e(&self) -> Duration {
        self.t1
    }

    /// Timer F: non-INVITE client transaction timeout, 64·T1.
    pub fn timer_f(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer G's first interval (INVITE final response retransmit, unreliable only): T1.
    pub fn timer_g(&self) -> Duration {
        self.t1
    }

    /// Timer H: wait for the ACK of a non-2xx final response, 64·T1.
    pub fn timer_h(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer I: wait for ACK retransmits; T4 unreliable, 0 reliable.
    pub fn timer_i(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: wait for non-INVITE request retransmits; 64·T1 unreliable, 0 reliable.
    pub fn timer_j(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.sixty_four_t1()
        }
    }

    /// Timer K: wait for non-INVITE response retransmits; T4 unreliable, 0 reliable.
    pub fn timer_k(&self, transport: Transport) -> Duration {
        if transport.is_reliable() {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer L (RFC 6026): server INVITE Accepted state, absorbs INVITE retransmits, 64·T1.
    pub fn timer_l(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// Timer M (RFC 6026): client INVITE Accepted state, passes 2xx retransmits up, 64·T1.
    pub fn timer_m(&self) -> Duration {
        self.sixty_four_t1()
    }

    /// The next interval of a retransmission capped at T2 (Timers E, G, 2xx retransmission).
    pub fn double_capped(&self, interval: Duration) -> Duration {
        interval.saturating_mul(2).min(self.t2)
    }
}

/// The name of a transaction timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client, Calling).
    B,
    /// Wait for final response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable).
    G,
    /// Wait for the ACK of a non-2xx final (server INVITE, Completed).
    H,
    /// Wait for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait for non-INVITE request retransmits (server, Completed).
    J,
    /// Wait for non-INVITE response retransmits (client, Completed).
    K,
    /// RFC 6026: server INVITE Accepted lifetime.
    L,
    /// RFC 6026: client INVITE Accepted lifetime.
    M,
    /// RFC 3261 §13.3.1.4: the UAS core's 2xx retransmit (T1 doubling to T2), in server Accepted.
    Retransmit2xx,
    /// RFC 3261 §13.3.1.4: give up waiting for the ACK of a 2xx after 64·T1.
    Ack2xx,
    /// RFC 3261 §9.1: no final response 64·T1 after a CANCEL was sent (client INVITE).
    Cancel,
}

impl Timer {
    /// Number of timer names (size of the table).
    const COUNT: usize = 15;

    /// Every timer, in table order.
    const ALL: [Timer; Timer::COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Retransmit2xx,
        Timer::Ack2xx,
        Timer::Cancel,
    ];

    /// The slot of this timer in a table.
    fn index(self) -> usize {
        self as usize
    }
}

/// The deadlines of a transaction's armed timers, one slot per timer name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// Arms (or re-arms) `timer` to fire at `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Disarms every timer.
    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; Timer::COUNT];
    }

    /// The earliest deadline of any armed timer.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the timer with the earliest deadline at or before `now`
    /// (ties go to the timer listed first).
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let mut due: Option<(Instant, Timer)> = None;
        for timer in Timer::ALL {
            if let Some(at) = self.get(timer) {
                if at <= now && due.is_none_or(|(best, _)| at < best) {
                    due = Some((at, timer));
                }
            }
        }
        let (_, timer) = due?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived_values_follow_table_4() {
        let c = TimerConfig::default();
        let s = Duration::from_secs;
        assert_eq!(c.t1, Duration::from_millis(500));
        assert_eq!((c.t2, c.t4), (s(4), s(5)));
        for d in [
            c.timer_b(),
            c.timer_f(),
            c.timer_h(),
            c.timer_l(),
            c.timer_m(),
        ] {
            assert_eq!(d, s(32));
        }
        assert_eq!(c.timer_d(Transport::Udp), s(32));
        assert_eq!(c.timer_d(Transport::Tcp), Duration::ZERO);
        assert_eq!(c.timer_i(Transport::Udp), s(5));
        assert_eq!(c.timer_i(Transport::Tls), Duration::ZERO);
        assert_eq!(c.timer_j(Transport::Udp), s(32));
        assert_eq!(c.timer_j(Transport::Ws), Duration::ZERO);
        assert_eq!(c.timer_k(Transport::Udp), s(5));
        assert_eq!(c.timer_k(Transport::Tcp), Duration::ZERO);
        assert_eq!(c.double_capped(s(2)), s(4));
        assert_eq!(c.double_capped(s(4)), s(4));
    }

    #[test]
    fn timer_d_never_below_32_s_and_grows_with_t1() {
        let short = TimerConfig {
            t1: Duration::from_millis(100),
            ..TimerConfig::default()
        };
        assert_eq!(short.timer_d(Transport::Udp), Duration::from_secs(32));
        let long = TimerConfig {
            t1: Duration::from_secs(1),
            ..TimerConfig::default()
        };
        assert_eq!(long.timer_d(Transport::Udp), Duration::from_secs(64));
    }

    #[test]
    fn table_pops_earliest_expired_first() {
        let base = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::B, base + Duration::from_secs(32));
        table.set(Timer::A, base + Duration::from_millis(500));
        assert_eq!(
            table.next_deadline(),
            Some(base + Duration::from_millis(500))
        );
        assert_eq!(table.pop_expired(base), None);
        let late = base + Duration::from_secs(40);
        assert_eq!(table.pop_expired(late), Some(Timer::A));
        assert_eq!(table.pop_expired(late), Some(Timer::B));
        assert_eq!(table.pop_expired(late), None);
        assert_eq!(table.next_deadline(), None);
    }
}
