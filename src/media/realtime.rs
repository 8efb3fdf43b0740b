//! Real-time scheduling for the media threads (`media.realtime_priority`).
//!
//! A media worker relays each packet the moment it arrives; on a busy machine what delays it
//! is waiting for a CPU behind other runnable processes. SCHED_FIFO lets the worker run as
//! soon as a packet wakes it. The kernel's real-time throttling (by default 5 % of each second
//! kept for normal tasks) keeps an overloaded worker from starving the SIP thread entirely.

use std::io;

/// Gives the calling thread SCHED_FIFO at `priority` (1–99).
pub fn raise(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `pthread_self` is always valid for the calling thread and `param` outlives the
    // call, which only reads it.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    match rc {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// The calling thread's scheduling policy and priority.
pub fn current() -> io::Result<(i32, i32)> {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: both out-pointers point to live locals for the duration of the call.
    let rc = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    match rc {
        0 => Ok((policy, param.sched_priority)),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_gets_fifo_or_a_clear_error() {
        // Runs on its own thread so the test harness's thread keeps normal scheduling.
        std::thread::spawn(|| match raise(5) {
            Ok(()) => assert_eq!(current().unwrap(), (libc::SCHED_FIFO, 5)),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        })
        .join()
        .unwrap();
    }

    #[test]
    fn an_impossible_priority_is_refused() {
        std::thread::spawn(|| {
            let e = raise(200).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
            assert_eq!(current().unwrap().0, libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
