//! A precise wake-up for a media worker's pacing clock.
//!
//! epoll's timeout counts whole milliseconds (mio rounds a shorter wait up), so a worker that
//! waited for its next 2 ms sub-tick with the poll's timeout woke up to 1 ms late, and its legs'
//! packets drifted by as much. A timerfd in the same poll wakes it within microseconds.

use std::io;
use std::time::Instant;

use mio::{Interest, Registry, Token};

/// A one-shot timer the worker's poll reports as readable when it fires.
#[derive(Debug)]
pub struct Ticker {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    /// The instant it is armed for, so re-arming for the same sub-tick costs nothing.
    armed_for: Option<Instant>,
}

#[cfg(target_os = "linux")]
impl Ticker {
    /// A disarmed timer, registered in `registry` under `token`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Ticker> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: timerfd_create takes no pointers; a valid descriptor is owned from here on.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        registry.register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(Ticker {
            fd,
            armed_for: None,
        })
    }

    /// Makes the timer fire at `at` (at once when `at` is not after `now`).
    pub fn arm(&mut self, at: Instant, now: Instant) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if self.armed_for == Some(at) {
            return Ok(());
        }
        // A zero value would disarm the timer: a due time fires after 1 ns.
        let wait = at.saturating_duration_since(now).max(NANOSECOND);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec for the duration of the call; the old value is
        // not wanted.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            self.armed_for = None;
            return Err(io::Error::last_os_error());
        }
        self.armed_for = Some(at);
        Ok(())
    }

    /// Takes note that the timer fired (clears its count, so the next expiry is a new event).
    pub fn fired(&mut self) {
        use std::os::fd::AsRawFd;
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `count`; a not-yet-expired timer gives EAGAIN,
        // which changes nothing.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        self.armed_for = None;
    }
}

#[cfg(target_os = "linux")]
const NANOSECOND: std::time::Duration = std::time::Duration::from_nanos(1);

#[cfg(not(target_os = "linux"))]
impl Ticker {
    /// No timerfd here: the worker keeps the poll's own timeout.
    pub fn new(_registry: &Registry, _token: Token) -> io::Result<Ticker> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Never called (there is no ticker).
    pub fn arm(&mut self, _at: Instant, _now: Instant) -> io::Result<()> {
        Ok(())
    }

    /// Never called (there is no ticker).
    pub fn fired(&mut self) {
        self.armed_for = None;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    const TICK: Token = Token(7);

    #[test]
    fn fires_once_at_the_time_armed_and_again_when_rearmed() {
        let mut poll = Poll::new().unwrap();
        let mut ticker = Ticker::new(poll.registry(), TICK).unwrap();
        let mut events = Events::with_capacity(4);
        for round in 0..3 {
            let now = Instant::now();
            let at = now + Duration::from_micros(1500);
            ticker.arm(at, now).unwrap();
            // The poll's own timeout is far away: only the timer can end this wait.
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            let woke = Instant::now();
            let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
            assert_eq!(tokens, [TICK], "round {round}");
            assert!(woke >= at, "round {round}: woke before the time armed");
            ticker.fired();
        }
    }

    #[test]
    fn a_time_already_past_fires_at_once() {
        let mut poll = Poll::new().unwrap();
        let mut ticker = Ticker::new(poll.registry(), TICK).unwrap();
        let mut events = Events::with_capacity(4);
        let now = Instant::now();
        ticker.arm(now - Duration::from_millis(3), now).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.iter().map(|e| e.token()).collect::<Vec<_>>(), [TICK]);
    }
}
