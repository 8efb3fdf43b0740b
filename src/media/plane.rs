//! The media plane's public handle: starts the worker threads, routes commands to them and
//! stops them.
//!
//! A leg lives on worker [`worker_index`] (its call leg's number, modulo the worker count) for
//! its whole life, so a call's three legs (`leg`, `leg.partner()` and `leg.third()`) share a
//! worker and can be bridged or conferenced there. Each worker owns its legs' sockets and a
//! disjoint share of the RTP port range (see [`super::ports`]), so workers share nothing but the
//! event channel, the active-leg counter and the channel to the plane's one recorder thread (see
//! [`super::recorder`]), which writes the call recordings.

use std::io;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Poll, Waker};
use thiserror::Error;
use tokio::sync::mpsc::UnboundedSender;

use super::control::{LegId, MediaCommand, MediaEvent};
use super::ports::PortPool;
use super::recorder::{self, RecorderLink, RecorderSetup, FRAME_POOL_PER_WORKER};
use super::worker::{self, WorkerMsg, WorkerSetup, SUB_TICK, WAKER_TOKEN};

/// Default media timeout: a leg that hears no RTP for this long is reported.
pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// When to run the Goertzel in-band DTMF detector on a leg's incoming audio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InbandDtmf {
    /// Only when no telephone-event payload type was negotiated.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// How the media plane runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaPlaneConfig {
    /// Address RTP sockets bind on (`Opened` reports it; if unspecified, SDP needs the public one).
    pub rtp_ip: IpAddr,
    /// Lowest RTP port (inclusive); legs take even ports, the odd one above is kept for RTCP.
    pub port_min: u16,
    /// Highest port (inclusive) of the range.
    pub port_max: u16,
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// No RTP for this long on a receiving leg reports `MediaEvent::Timeout`; `None` disables it.
    pub media_timeout: Option<Duration>,
    /// In-band DTMF detection policy.
    pub inband_dtmf: InbandDtmf,
    /// SCHED_FIFO priority of the worker threads (1–99); 0 keeps normal scheduling.
    pub realtime_priority: u8,
}

impl MediaPlaneConfig {
    /// A configuration with default workers, media timeout (30 s) and in-band policy (auto).
    pub fn new(rtp_ip: IpAddr, port_min: u16, port_max: u16) -> MediaPlaneConfig {
        MediaPlaneConfig {
            rtp_ip,
            port_min,
            port_max,
            workers: 0,
            media_timeout: Some(DEFAULT_MEDIA_TIMEOUT),
            inband_dtmf: InbandDtmf::Auto,
            realtime_priority: 0,
        }
    }
}

/// The worker (of `workers`) that owns `leg`: a leg, its [`LegId::partner`] and its
/// [`LegId::third`] share one.
pub fn worker_index(leg: LegId, workers: usize) -> usize {
    let n = workers.max(1) as u64;
    (leg.call_leg().0 % n) as usize
}

/// Why a command could not be delivered.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MediaPlaneError {
    /// The worker that owns the leg has stopped (shut down or crashed).
    #[error("media worker {0} has stopped")]
    WorkerStopped(usize),
}

/// A worker thread as the plane sees it.
struct WorkerHandle {
    commands: mpsc::Sender<WorkerMsg>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

/// The running media plane: a handful of worker threads owning all RTP legs, and the recorder
/// thread writing call recordings.
pub struct MediaPlane {
    workers: Vec<WorkerHandle>,
    active: Arc<AtomicUsize>,
    recorder: Option<JoinHandle<()>>,
}

impl MediaPlane {
    /// Starts the worker threads; events of every leg go to `events`.
    pub fn start(
        config: MediaPlaneConfig,
        events: UnboundedSender<MediaEvent>,
    ) -> io::Result<MediaPlane> {
        if config.port_min > config.port_max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "RTP port range {}-{} is empty",
                    config.port_min, config.port_max
                ),
            ));
        }
        let count = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            n => n,
        };
        let active = Arc::new(AtomicUsize::new(0));
        let mut plane = MediaPlane {
            workers: Vec::with_capacity(count),
            active: Arc::clone(&active),
            recorder: None,
        };
        // Declared after `plane`, so on error it is dropped first and the recorder can end.
        let (recorder_tx, recorder_rx) = recorder::channel(count);
        let (returns, mut return_rxs): (Vec<_>, Vec<_>) =
            (0..count).map(|_| recorder::return_channel()).unzip();
        let setup = RecorderSetup {
            messages: recorder_rx,
            returns,
            events: events.clone(),
        };
        plane.recorder = Some(
            std::thread::Builder::new()
                .name("media-recorder".to_string())
                .spawn(move || recorder::run(setup))?,
        );
        let epoch = std::time::Instant::now();
        for (index, frame_returns) in return_rxs.drain(..).enumerate() {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
            let (tx, rx) = mpsc::channel();
            let setup = WorkerSetup {
                index,
                clock_start: epoch + SUB_TICK * index as u32 / count as u32,
                poll,
                commands: rx,
                events: events.clone(),
                ports: PortPool::for_worker(config.port_min, config.port_max, index, count),
                rtp_ip: config.rtp_ip,
                media_timeout: config.media_timeout,
                inband: config.inband_dtmf,
                realtime_priority: config.realtime_priority,
                active: Arc::clone(&active),
                recorder: RecorderLink::new(
                    index,
                    recorder_tx.clone(),
                    frame_returns,
                    FRAME_POOL_PER_WORKER,
                ),
            };
            // On error `plane` drops here and stops the workers already started.
            let thread = std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || worker::run(setup))?;
            plane.workers.push(WorkerHandle {
                commands: tx,
                waker,
                thread: Some(thread),
            });
        }
        Ok(plane)
    }

    /// Hands a command to the leg's worker without blocking.
    ///
    /// A `Bridge` or `Conference` of legs owned by different workers (or of no leg) is logged
    /// and dropped (`Ok`).
    pub fn command(&self, cmd: MediaCommand) -> Result<(), MediaPlaneError> {
        let index = self.worker_of(cmd.leg());
        match &cmd {
            MediaCommand::Bridge { leg, peer } if self.worker_of(*peer) != index => {
                tracing::warn!(
                    leg = leg.0,
                    peer = peer.0,
                    "bridge of legs on different media workers: ignored"
                );
                return Ok(());
            }
            MediaCommand::Conference { legs }
                if legs.is_empty() || legs.iter().any(|&l| self.worker_of(l) != index) =>
            {
                tracing::warn!(
                    ?legs,
                    "conference of no legs or legs on different media workers: ignored"
                );
                return Ok(());
            }
            _ => {}
        }
        let Some(w) = self.workers.get(index) else {
            return Err(MediaPlaneError::WorkerStopped(index));
        };
        w.commands
            .send(WorkerMsg::Command(cmd))
            .map_err(|_| MediaPlaneError::WorkerStopped(index))?;
        w.waker
            .wake()
            .map_err(|_| MediaPlaneError::WorkerStopped(index))
    }

    /// Number of legs currently open, for metrics.
    pub fn active_legs(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Stops the workers and waits for them; every leg's socket is closed and every recording
    /// finished (and reported) before this returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn worker_of(&self, leg: LegId) -> usize {
        worker_index(leg, self.workers.len())
    }

    fn stop(&mut self) {
        for w in &self.workers {
            let _ = w.commands.send(WorkerMsg::Shutdown);
            let _ = w.waker.wake();
        }
        for (index, w) in self.workers.iter_mut().enumerate() {
            if let Some(thread) = w.thread.take() {
                if thread.join().is_err() {
                    tracing::error!(worker = index, "media worker panicked");
                }
            }
        }
        // The workers are gone and with them the recorder's senders: it finishes and ends.
        if let Some(thread) = self.recorder.take() {
            if thread.join().is_err() {
                tracing::error!("media recorder panicked");
            }
        }
        self.active.store(0, Ordering::Relaxed);
    }
}

impl Drop for MediaPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_its_partner_and_its_third_share_a_worker() {
        let legs = (0..200)
            .chain([u64::MAX >> 1, (1 << 62) + 7, 12_345_678_901])
            .map(LegId);
        for leg in legs {
            for workers in 1..=12 {
                let w = worker_index(leg, workers);
                assert!(w < workers);
                assert_eq!(
                    worker_index(leg.partner(), workers),
                    w,
                    "{leg:?} of {workers}"
                );
                assert_eq!(
                    worker_index(leg.third(), workers),
                    w,
                    "{leg:?} of {workers}"
                );
            }
            assert_eq!(worker_index(leg, 0), 0);
        }
        // Consecutive calls still spread over the workers.
        let used: std::collections::HashSet<usize> = (0..6)
            .map(|n| worker_index(LegId(n).partner(), 3))
            .collect();
        assert_eq!(used.len(), 3);
    }
}
