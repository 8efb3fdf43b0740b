//! One media worker thread: a mio poll loop owning its legs' sockets, paced by one clock.
//!
//! Pacing: the worker's clock ticks every 2 ms on the fixed schedule `start + n × 2 ms` (no
//! drift), and each leg belongs to one of [`PHASES`] phases (its slot number modulo 10): sub-tick
//! `n` sends one packet for every sending leg of phase `n % 10`. So every leg sends once per
//! 20 ms on its own fixed schedule, and the worker's packets leave in ten small bursts per
//! 20 ms instead of one large one (kinder to NIC queues and to the peers' socket buffers, and a
//! shorter send loop means less jitter for the legs at its end). A timerfd in the poll
//! ([`super::ticker`]) wakes the worker for each sub-tick within microseconds.
//!
//! A long batch of readiness events (a burst of arrivals) is interrupted every
//! [`TICK_CHECK_EVERY`] sockets to serve a sub-tick that fell due meanwhile.
//!
//! Late ticks: sub-ticks missed by less than a cycle are served late, back-to-back (each leg
//! still sends its one packet of that cycle). When the thread fell behind by a whole 20 ms
//! cycle or more, the missed cycles are skipped, not caught up: each leg sends one packet whose
//! timestamp is advanced by 160 per elapsed 20 ms (so it tells the real time) with the marker
//! bit set, and its sequence number stays consecutive (nothing was lost, there was a pause).
//! Playback resumes at the next frame: no prompt audio is dropped.
//!
//! Bridges: two legs of one worker may be bridged (see [`super::relay`]). The worker keeps the
//! pairing symmetric: bridging dissolves both legs' earlier bridges, and unbridging or closing
//! either leg clears both sides, so a leg's stored peer slot is always live.
//!
//! Conferences (see [`super::mixer`]): two or three legs of one call may be mixed. A leg is
//! bridged or conferenced, never both: bridging or conferencing a leg takes it out of its bridge
//! and conference first, and closing or unbridging a member takes it out of its conference (a
//! conference left with one member ends). A conference belongs to the phase of its first
//! member's slot; at each of that phase's sub-ticks the worker runs one mixing cycle and every
//! member sends its mix at once (members send at their conference's phase, not their own).
//!
//! Recordings (see [`super::recorder`]): a recording belongs to its caller leg's phase; at each
//! of that phase's sub-ticks the worker takes one frame from the caller's capture FIFO and one
//! from those of the legs the caller hears (its partner, or its conference's other members),
//! plus silence for skipped cycles, and hands it to the recorder thread without blocking.
//! Closing the caller leg or stopping the worker finishes its recordings.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Interest, Poll, Token};
use tokio::sync::mpsc::UnboundedSender;

use super::control::{LegId, MediaCommand, MediaEvent};
use super::leg::{Leg, FRAME_SAMPLES, SEND_BUF_LEN};
use super::mixer::{self, Conference, MAX_PARTIES};
use super::plane::InbandDtmf;
use super::ports::PortPool;
use super::recorder::{frames_to_seconds, LinkError, RecorderLink, StartRecording, StereoFrame};
use super::ticker::Ticker;

/// Phases per 20 ms cycle; a leg sends at the sub-ticks of phase `slot % PHASES`.
pub const PHASES: u64 = 10;

/// The worker's clock period: 20 ms / [`PHASES`].
pub const SUB_TICK: Duration = Duration::from_millis(2);

/// The token of the command waker.
pub const WAKER_TOKEN: Token = Token(usize::MAX);

/// The token of the sub-tick timer.
const TICKER_TOKEN: Token = Token(usize::MAX - 1);

/// Receive buffer size: larger than any RTP packet a G.711 peer sends.
pub const RECV_BUF_LEN: usize = 2048;

/// Datagrams drained from one socket before the loop moves on (the rest wait for the next
/// round, so one flooding peer cannot starve the pacing clock).
const RECV_BUDGET: usize = 32;

/// Readiness events handled between checks of the clock (a socket's turn costs a few µs: a
/// sub-tick is never served more than ~0.1 ms late because of a burst).
const TICK_CHECK_EVERY: usize = 32;

/// Sub-ticks between media-timeout checks (100 ms).
const TIMEOUT_CHECK_SUB_TICKS: u64 = 50;

/// Readiness events taken from one poll.
const EVENTS_CAPACITY: usize = 1024;

/// What the plane sends a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// A command for one of the worker's legs.
    Command(MediaCommand),
    /// Stop the thread (legs and sockets are dropped).
    Shutdown,
}

/// Everything a worker needs, built by the plane before the thread starts.
pub struct WorkerSetup {
    /// The worker's number, for logs and the RNG seed.
    pub index: usize,
    /// When this worker's pacing clock starts: the plane staggers the workers across one
    /// sub-tick so their send bursts do not all fall on the same moment.
    pub clock_start: Instant,
    /// The poll the command waker is registered with.
    pub poll: Poll,
    /// Commands from the plane.
    pub commands: Receiver<WorkerMsg>,
    /// Events to the controller.
    pub events: UnboundedSender<MediaEvent>,
    /// The worker's share of the port range.
    pub ports: PortPool,
    /// The address RTP sockets bind on.
    pub rtp_ip: IpAddr,
    /// The media timeout, if any.
    pub media_timeout: Option<Duration>,
    /// In-band DTMF detection policy.
    pub inband: InbandDtmf,
    /// SCHED_FIFO priority for the thread; 0 = normal scheduling.
    pub realtime_priority: u8,
    /// The plane-wide count of open legs.
    pub active: Arc<AtomicUsize>,
    /// The worker's end of the plane's recorder thread.
    pub recorder: RecorderLink,
}

/// A recording in progress, as its worker keeps it.
#[derive(Debug)]
struct Recording {
    /// The recorder's number for it.
    id: u64,
    /// The recorded (caller) leg; the right channel is who it hears (see [`heard_by_caller`]).
    leg: LegId,
    /// The caller leg's slot (stable: closing the leg ends the recording).
    slot: usize,
    /// The file, for a report the worker has to make itself.
    path: PathBuf,
    /// Set by the recorder when it failed the recording (and reported it).
    failed: Arc<AtomicBool>,
    /// Frames handed to the recorder, gaps included.
    frames: u64,
}

/// Why a recording ends at a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecordingEnd {
    /// The recorder failed it and reported it.
    Reported,
    /// A frame could not be handed over: the recorder reports it failed.
    FellBehind,
    /// The recorder thread is gone: the worker reports it.
    RecorderGone,
}

/// The worker's state (lives on its thread).
struct Worker {
    setup: WorkerSetup,
    /// Legs by slot; a slot's index is its mio token.
    legs: Vec<Option<Leg>>,
    /// Free slots.
    free_slots: Vec<usize>,
    /// Slot of each leg.
    slots: HashMap<LegId, usize>,
    /// Slots whose socket still had datagrams when its budget ran out.
    backlog: Vec<usize>,
    /// The backlog being worked through (swapped with `backlog`, so no allocation).
    backlog_now: Vec<usize>,
    send_buf: [u8; SEND_BUF_LEN],
    recv_buf: Box<[u8; RECV_BUF_LEN]>,
    rng: u64,
    /// Wakes the worker on time for its next sub-tick (`None`: the poll's timeout does, to
    /// the next whole millisecond).
    ticker: Option<Ticker>,
    /// Time of sub-tick 0.
    start: Instant,
    /// The first sub-tick not served yet.
    next_sub_tick: u64,
    /// The sub-tick at or after which the media timeouts are checked next.
    next_timeout_check: u64,
    /// Recordings by phase (their caller leg's slot modulo [`PHASES`]).
    recordings: [Vec<Recording>; PHASES as usize],
    /// Conferences by phase (their first member's slot modulo [`PHASES`]).
    conferences: [Vec<Conference>; PHASES as usize],
    /// A leg was opened since the thread's allocator cache was last emptied.
    legs_since_release: bool,
}

/// Runs a worker until `Shutdown` arrives or the plane is gone.
pub fn run(setup: WorkerSetup) {
    if setup.realtime_priority > 0 {
        if let Err(e) = super::realtime::raise(setup.realtime_priority) {
            tracing::warn!(
                worker = setup.index,
                priority = setup.realtime_priority,
                error = %e,
                "media.realtime_priority: the media thread keeps normal scheduling \
                 (the engine needs CAP_SYS_NICE or an RLIMIT_RTPRIO that allows it)"
            );
        }
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let clock_start = setup.clock_start;
    let ticker = match Ticker::new(setup.poll.registry(), TICKER_TOKEN) {
        Ok(ticker) => Some(ticker),
        Err(e) => {
            tracing::warn!(worker = setup.index, error = %e, "no sub-tick timer: pacing to the millisecond");
            None
        }
    };
    let mut worker = Worker {
        rng: (seed ^ (setup.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
        setup,
        legs: Vec::new(),
        free_slots: Vec::new(),
        slots: HashMap::new(),
        backlog: Vec::new(),
        backlog_now: Vec::new(),
        send_buf: [0; SEND_BUF_LEN],
        recv_buf: Box::new([0; RECV_BUF_LEN]),
        ticker,
        start: clock_start,
        next_sub_tick: 1,
        next_timeout_check: TIMEOUT_CHECK_SUB_TICKS,
        recordings: std::array::from_fn(|_| Vec::new()),
        conferences: std::array::from_fn(|_| Vec::new()),
        legs_since_release: false,
    };
    worker.run();
    worker.finish_recordings();
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            self.tick(Instant::now());
            let timeout = if self.backlog.is_empty() {
                let at = self.sub_tick_time(self.next_sub_tick);
                let now = Instant::now();
                if let Some(Err(e)) = self.ticker.as_mut().map(|t| t.arm(at, now)) {
                    tracing::warn!(worker = self.setup.index, error = %e, "sub-tick timer failed: pacing to the millisecond");
                    self.ticker = None;
                }
                // Also the poll's timeout, in case the timer is gone: it never ends a wait early.
                at.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.setup.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(worker = self.setup.index, error = %e, "media poll failed");
                }
                continue;
            }
            let mut now = Instant::now();
            std::mem::swap(&mut self.backlog, &mut self.backlog_now);
            for i in 0..self.backlog_now.len() {
                let slot = self.backlog_now[i];
                self.receive(slot, now);
                if (i + 1) % TICK_CHECK_EVERY == 0 {
                    now = self.tick_if_due();
                }
            }
            self.backlog_now.clear();
            for (i, event) in events.iter().enumerate() {
                match event.token() {
                    WAKER_TOKEN => {
                        if !self.drain_commands(now) {
                            return;
                        }
                    }
                    TICKER_TOKEN => {
                        if let Some(ticker) = &mut self.ticker {
                            ticker.fired();
                        }
                    }
                    Token(slot) => self.receive(slot, now),
                }
                if (i + 1) % TICK_CHECK_EVERY == 0 {
                    now = self.tick_if_due();
                }
            }
        }
    }

    /// Serves a sub-tick that fell due while a long batch of readiness events was being
    /// handled, so a burst of arrivals does not delay the legs' sending; returns the time.
    fn tick_if_due(&mut self) -> Instant {
        let now = Instant::now();
        if now >= self.sub_tick_time(self.next_sub_tick) {
            self.tick(now);
        }
        now
    }

    /// When sub-tick `n` is due.
    fn sub_tick_time(&self, n: u64) -> Instant {
        self.start + Duration::from_micros(n.saturating_mul(SUB_TICK.as_micros() as u64))
    }

    /// Serves every sub-tick due by `now` (see the module doc for late ones) and, every 100 ms,
    /// the media timeouts.
    fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start).as_micros();
        let due = u64::try_from(elapsed / SUB_TICK.as_micros()).unwrap_or(u64::MAX);
        if due < self.next_sub_tick {
            return;
        }
        if due - self.next_sub_tick >= PHASES {
            tracing::debug!(
                worker = self.setup.index,
                late_ms = (due - self.next_sub_tick) * 2,
                "media worker fell behind"
            );
        }
        // At most one sub-tick per phase; a phase due k more times than served skips k cycles.
        let first = self.next_sub_tick.max((due + 1).saturating_sub(PHASES));
        for n in first..=due {
            let skipped = u32::try_from((n - self.next_sub_tick) / PHASES).unwrap_or(u32::MAX);
            self.mix_phase((n % PHASES) as usize, skipped);
            self.send_phase((n % PHASES) as usize, skipped);
            self.record_phase((n % PHASES) as usize, skipped);
        }
        self.next_sub_tick = due + 1;
        if due >= self.next_timeout_check {
            self.next_timeout_check = due + TIMEOUT_CHECK_SUB_TICKS;
            crate::memory::shrink_sparse(&mut self.slots);
            self.shrink_legs();
            if self.slots.is_empty() && self.legs_since_release {
                // Idle after calls: the chunks this thread freed go back to the heap, which
                // the SIP thread's housekeeping trims.
                crate::memory::release_thread_cache();
                self.legs_since_release = false;
            }
            if let Some(timeout) = self.setup.media_timeout {
                let tx = &self.setup.events;
                let mut emit = |e: MediaEvent| {
                    let _ = tx.send(e);
                };
                for leg in self.legs.iter_mut().flatten() {
                    leg.check_timeout(now, timeout, &mut emit);
                }
            }
        }
    }

    /// One mixing cycle for every conference of `phase` (missed cycles are not caught up),
    /// each member sending its mix at once: a conference's legs send at its phase, not their
    /// own, so the mix does not wait for another tick.
    fn mix_phase(&mut self, phase: usize, skipped: u32) {
        let Some(bucket) = self.conferences.get(phase) else {
            return;
        };
        let tx = &self.setup.events;
        let mut emit = |e: MediaEvent| {
            let _ = tx.send(e);
        };
        for conference in bucket {
            conference.cycle(&mut self.legs);
            for &(id, slot) in &conference.parties {
                let member = self.legs.get_mut(slot).and_then(Option::as_mut);
                if let Some(leg) = member.filter(|l| l.id == id) {
                    leg.send_tick(skipped, &mut self.send_buf, &mut emit);
                }
            }
        }
    }

    /// One packet for every sending leg of `phase` (conferenced legs sent theirs with the mix).
    fn send_phase(&mut self, phase: usize, skipped: u32) {
        let tx = &self.setup.events;
        let mut emit = |e: MediaEvent| {
            let _ = tx.send(e);
        };
        let step = PHASES as usize;
        for leg in self.legs.iter_mut().skip(phase).step_by(step).flatten() {
            if !leg.in_conference() {
                leg.send_tick(skipped, &mut self.send_buf, &mut emit);
            }
        }
    }

    /// One recording cycle for every recording of `phase`: a frame of each side's captured
    /// audio to the recorder, after `skipped` missed cycles (written as silence). Never blocks;
    /// a recording whose frame cannot be handed over ends, reported failed.
    fn record_phase(&mut self, phase: usize, skipped: u32) {
        let link = &mut self.setup.recorder;
        link.flush();
        let Some(bucket) = self.recordings.get_mut(phase) else {
            return;
        };
        let mut i = 0;
        while i < bucket.len() {
            let rec = &mut bucket[i];
            let end = if rec.failed.load(Ordering::Relaxed) {
                Some(RecordingEnd::Reported)
            } else if let Some(mut msg) = link.buffer() {
                msg.id = rec.id;
                msg.gap = skipped;
                take_frame(&mut self.legs, &self.slots, rec, &mut msg.frame);
                match link.send_frame(msg) {
                    Ok(()) => {
                        rec.frames += u64::from(skipped) + 1;
                        None
                    }
                    Err(LinkError::FellBehind) => Some(RecordingEnd::FellBehind),
                    Err(LinkError::Stopped) => Some(RecordingEnd::RecorderGone),
                }
            } else {
                Some(RecordingEnd::FellBehind)
            };
            let Some(end) = end else {
                i += 1;
                continue;
            };
            let rec = bucket.swap_remove(i);
            capture(&mut self.legs, &self.slots, &rec, false);
            tracing::warn!(
                worker = self.setup.index,
                leg = rec.leg.0,
                ?end,
                "recording ended"
            );
            match end {
                RecordingEnd::Reported => {}
                RecordingEnd::FellBehind => link.stop(rec.id, true),
                RecordingEnd::RecorderGone => {
                    let _ = self.setup.events.send(MediaEvent::RecordingDone {
                        leg: rec.leg,
                        path: rec.path,
                        seconds: frames_to_seconds(rec.frames),
                        error: Some("recorder thread stopped".to_string()),
                    });
                }
            }
        }
    }

    /// Starts recording the call of `leg` into `path`, finishing its running recording first;
    /// reports `RecordingDone` with the error at once when it cannot start.
    fn record(&mut self, leg: LegId, path: PathBuf) {
        let fail = |this: &Self, path: PathBuf, error: &str| {
            tracing::warn!(
                worker = this.setup.index,
                leg = leg.0,
                error,
                "recording not started"
            );
            this.emit(MediaEvent::RecordingDone {
                leg,
                path,
                seconds: 0.0,
                error: Some(error.to_string()),
            });
        };
        if leg != leg.call_leg() {
            return fail(
                self,
                path,
                "only a caller leg is recorded (with its partner)",
            );
        }
        let Some(&slot) = self.slots.get(&leg) else {
            return fail(self, path, "the leg is not open");
        };
        self.stop_recording(leg);
        let id = self.setup.recorder.next_id();
        let failed = Arc::new(AtomicBool::new(false));
        let start = StartRecording {
            id,
            leg,
            path: path.clone(),
            failed: Arc::clone(&failed),
        };
        match self.setup.recorder.start(start) {
            Ok(()) => {}
            Err(LinkError::FellBehind) => return fail(self, path, super::recorder::FELL_BEHIND),
            Err(LinkError::Stopped) => return fail(self, path, "recorder thread stopped"),
        }
        let rec = Recording {
            id,
            leg,
            slot,
            path,
            failed,
            frames: 0,
        };
        capture(&mut self.legs, &self.slots, &rec, true);
        if let Some(bucket) = self.recordings.get_mut(slot % PHASES as usize) {
            bucket.push(rec);
        }
    }

    /// Finishes the recording of `leg`, if any (the recorder reports it).
    fn stop_recording(&mut self, leg: LegId) {
        for bucket in &mut self.recordings {
            if let Some(i) = bucket.iter().position(|r| r.leg == leg) {
                let rec = bucket.swap_remove(i);
                capture(&mut self.legs, &self.slots, &rec, false);
                if !rec.failed.load(Ordering::Relaxed) {
                    self.setup.recorder.stop(rec.id, false);
                }
                return;
            }
        }
    }

    /// At shutdown: finishes every recording, waiting for room in the recorder's channel.
    fn finish_recordings(&mut self) {
        for bucket in &mut self.recordings {
            for rec in bucket.drain(..) {
                if !rec.failed.load(Ordering::Relaxed) {
                    self.setup.recorder.stop(rec.id, false);
                }
            }
        }
        self.setup.recorder.flush_blocking();
    }

    /// Drains one leg's socket, relaying its audio to its bridged peer; queues it for another
    /// round if datagrams are left.
    fn receive(&mut self, slot: usize, now: Instant) {
        let Some((leg, peer)) = leg_and_peer(&mut self.legs, slot) else {
            return;
        };
        let tx = &self.setup.events;
        let mut emit = |e: MediaEvent| {
            let _ = tx.send(e);
        };
        let (recv_buf, send_buf) = (&mut self.recv_buf[..], &mut self.send_buf);
        if !leg.receive(recv_buf, send_buf, RECV_BUDGET, now, peer, &mut emit) {
            self.backlog.push(slot);
        }
    }

    /// Applies every queued command; returns false when the worker must stop.
    fn drain_commands(&mut self, now: Instant) -> bool {
        loop {
            match self.setup.commands.try_recv() {
                Ok(WorkerMsg::Command(cmd)) => self.command(cmd, now),
                Ok(WorkerMsg::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn emit(&self, event: MediaEvent) {
        let _ = self.setup.events.send(event);
    }

    fn leg_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        let slot = *self.slots.get(&id)?;
        self.legs.get_mut(slot)?.as_mut()
    }

    fn command(&mut self, cmd: MediaCommand, now: Instant) {
        match cmd {
            MediaCommand::Open { leg } => self.open(leg, now),
            MediaCommand::Close { leg } => self.close(leg),
            MediaCommand::Stream { leg, params } => {
                let inband = self.setup.inband;
                if let Some(l) = self.leg_mut(leg) {
                    l.apply_stream(params, inband, now);
                }
            }
            MediaCommand::Play {
                leg,
                play,
                prompts,
                barge_in,
            } => {
                if let Some(l) = self.leg_mut(leg) {
                    l.play(play, prompts, barge_in);
                }
            }
            MediaCommand::StopPlay { leg } => {
                if let Some(l) = self.leg_mut(leg) {
                    l.stop_play();
                }
            }
            MediaCommand::Bridge { leg, peer } => self.bridge(leg, peer),
            MediaCommand::Unbridge { leg } => self.detach(leg),
            MediaCommand::Conference { legs } => self.conference(&legs),
            MediaCommand::EndConference { leg } => self.end_conference(leg),
            MediaCommand::Record { leg, path } => self.record(leg, path),
            MediaCommand::StopRecording { leg } => self.stop_recording(leg),
        }
    }

    /// Bridges two of the worker's legs, dissolving their earlier bridges and conferences;
    /// unknown legs (or a leg bridged to itself) are logged and ignored. Bridging an existing
    /// pair again keeps it.
    fn bridge(&mut self, a: LegId, b: LegId) {
        let index = self.setup.index;
        let (Some(&slot_a), Some(&slot_b)) = (self.slots.get(&a), self.slots.get(&b)) else {
            tracing::warn!(
                worker = index,
                leg = a.0,
                peer = b.0,
                "bridge of a leg this worker does not have: ignored"
            );
            return;
        };
        if slot_a == slot_b {
            tracing::warn!(
                worker = index,
                leg = a.0,
                "bridge of a leg to itself: ignored"
            );
            return;
        }
        let current = self
            .legs
            .get(slot_a)
            .and_then(Option::as_ref)
            .and_then(Leg::bridged_to);
        if current == Some((b, slot_b)) {
            return;
        }
        self.detach(a);
        self.detach(b);
        if let Ok([Some(la), Some(lb)]) = self.legs.get_disjoint_mut([slot_a, slot_b]) {
            la.bridge(b, slot_b);
            lb.bridge(a, slot_a);
        }
    }

    /// Takes `id` out of its bridge (both sides) and its conference.
    fn detach(&mut self, id: LegId) {
        self.unbridge(id);
        self.leave_conference(id);
    }

    /// Mixes `legs` in a new conference (see [`MediaCommand::Conference`]); the same set as a
    /// running conference keeps it.
    fn conference(&mut self, legs: &[LegId]) {
        let index = self.setup.index;
        let first = legs.first().copied().unwrap_or(LegId(0));
        let ignore = |why: &str| {
            tracing::warn!(
                worker = index,
                leg = first.0,
                ?legs,
                why,
                "conference ignored"
            );
        };
        if !(2..=MAX_PARTIES).contains(&legs.len()) {
            return ignore("two or three legs are mixed");
        }
        if legs.iter().any(|l| l.call_leg() != first.call_leg()) {
            return ignore("the legs are not of one call");
        }
        if legs.iter().enumerate().any(|(i, l)| legs[..i].contains(l)) {
            return ignore("a leg is given twice");
        }
        let mut parties = Vec::with_capacity(legs.len());
        for &leg in legs {
            match self.slots.get(&leg) {
                Some(&slot) => parties.push((leg, slot)),
                None => return ignore("a leg is not open"),
            }
        }
        if let Some((phase, i)) = self.find_conference(first) {
            let running = &self.conferences[phase][i];
            if running.parties.len() == legs.len() && legs.iter().all(|&l| running.has(l)) {
                return;
            }
        }
        for &leg in legs {
            self.detach(leg);
        }
        for &(_, slot) in &parties {
            if let Some(leg) = self.legs.get_mut(slot).and_then(Option::as_mut) {
                leg.join_conference();
            }
        }
        let phase = parties[0].1 % PHASES as usize;
        if let Some(bucket) = self.conferences.get_mut(phase) {
            bucket.push(Conference { parties });
        }
    }

    /// The phase and index of the conference `leg` is in.
    fn find_conference(&self, leg: LegId) -> Option<(usize, usize)> {
        self.conferences
            .iter()
            .enumerate()
            .find_map(|(phase, bucket)| bucket.iter().position(|c| c.has(leg)).map(|i| (phase, i)))
    }

    /// Takes `leg` out of its conference, if any; a conference left with one member ends.
    fn leave_conference(&mut self, leg: LegId) {
        match self.leg_mut(leg) {
            Some(l) if l.in_conference() => l.leave_conference(),
            _ => return,
        }
        let Some((phase, i)) = self.find_conference(leg) else {
            return;
        };
        let bucket = &mut self.conferences[phase];
        bucket[i].parties.retain(|&(id, _)| id != leg);
        if bucket[i].parties.len() < 2 {
            let alone = bucket.swap_remove(i);
            self.release(&alone);
        }
    }

    /// Dissolves the conference `leg` is in, every member.
    fn end_conference(&mut self, leg: LegId) {
        if let Some((phase, i)) = self.find_conference(leg) {
            let conference = self.conferences[phase].swap_remove(i);
            self.release(&conference);
        }
    }

    /// Takes the members of a conference the worker no longer keeps out of it.
    fn release(&mut self, conference: &Conference) {
        for &(id, slot) in &conference.parties {
            if let Some(l) = self.legs.get_mut(slot).and_then(Option::as_mut) {
                if l.id == id {
                    l.leave_conference();
                }
            }
        }
    }

    /// Dissolves the bridge of `id`, both sides (nothing when it is not bridged).
    fn unbridge(&mut self, id: LegId) {
        let Some(peer) = self.leg_mut(id).and_then(Leg::unbridge) else {
            return;
        };
        if let Some(p) = self.leg_mut(peer) {
            p.unbridge();
        }
    }

    /// Binds a port for a new leg and reports `Opened` or `OpenFailed`.
    fn open(&mut self, id: LegId, now: Instant) {
        if let Some(local) = self.leg_mut(id).map(|l| l.local) {
            // Already open: answer again, idempotently.
            self.emit(MediaEvent::Opened { leg: id, local });
            return;
        }
        match self.bind_leg(id, now) {
            Ok(local) => {
                self.setup.active.fetch_add(1, Ordering::Relaxed);
                self.emit(MediaEvent::Opened { leg: id, local });
            }
            Err(e) => {
                tracing::warn!(worker = self.setup.index, leg = id.0, error = %e, "RTP open failed");
                self.emit(MediaEvent::OpenFailed { leg: id });
            }
        }
    }

    fn bind_leg(&mut self, id: LegId, now: Instant) -> io::Result<SocketAddr> {
        let (mut socket, port) = self.setup.ports.bind(self.setup.rtp_ip)?;
        let slot = self.free_slots.pop().unwrap_or(self.legs.len());
        let registered =
            self.setup
                .poll
                .registry()
                .register(&mut socket, Token(slot), Interest::READABLE);
        let local = registered.and_then(|()| socket.local_addr());
        let local = match local {
            Ok(local) => local,
            Err(e) => {
                let _ = self.setup.poll.registry().deregister(&mut socket);
                self.setup.ports.release(port);
                if slot < self.legs.len() {
                    self.free_slots.push(slot);
                }
                return Err(e);
            }
        };
        let random = self.next_random() ^ id.0.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let leg = Leg::new(id, socket, port, local, random, now);
        if slot == self.legs.len() {
            self.legs.push(Some(leg));
        } else {
            self.legs[slot] = Some(leg);
        }
        self.slots.insert(id, slot);
        self.legs_since_release = true;
        Ok(local)
    }

    /// Unbridges the leg (its peer goes silent) and takes it out of its conference, finishes
    /// its recording, deregisters and drops its socket and returns its port to the pool.
    fn close(&mut self, id: LegId) {
        self.detach(id);
        self.stop_recording(id);
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        let Some(mut leg) = self.legs.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.setup.poll.registry().deregister(&mut leg.socket);
        let port = leg.port;
        drop(leg);
        self.setup.ports.release(port);
        self.free_slots.push(slot);
        self.setup.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Gives back the leg table's tail that a load peak left empty (a slot is a leg's poll token
    /// and sets its phase, so only free slots at the end can go).
    fn shrink_legs(&mut self) {
        let used = self
            .legs
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |last| last + 1);
        if used < self.legs.len() {
            self.legs.truncate(used);
            self.free_slots.retain(|&slot| slot < used);
        }
        crate::memory::shrink_sparse_vec(&mut self.legs);
        crate::memory::shrink_sparse_vec(&mut self.free_slots);
    }

    /// xorshift64: cheap, and good enough for SSRCs and sequence starts.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// The leg open under `id`.
fn leg_by_id<'a>(
    legs: &'a mut [Option<Leg>],
    slots: &HashMap<LegId, usize>,
    id: LegId,
) -> Option<&'a mut Leg> {
    legs.get_mut(*slots.get(&id)?)?.as_mut()
}

/// The caller leg of `rec`, if it is still open.
fn caller_of<'a>(legs: &'a mut [Option<Leg>], rec: &Recording) -> Option<&'a mut Leg> {
    legs.get_mut(rec.slot)?.as_mut().filter(|l| l.id == rec.leg)
}

/// Which of the call's other legs (partner, third) the recorded caller hears, for the right
/// channel: its conference's other members when conferenced, else the third leg when bridged
/// to it, else its partner (bridged or not: a recording needs no bridge).
fn heard_by_caller(
    legs: &mut [Option<Leg>],
    slots: &HashMap<LegId, usize>,
    rec: &Recording,
) -> [(LegId, bool); 2] {
    let (partner, third) = (rec.leg.partner(), rec.leg.third());
    let (conferenced, bridged) = match caller_of(legs, rec) {
        Some(caller) => (
            caller.in_conference(),
            caller.bridged_to().map(|(peer, _)| peer),
        ),
        None => (false, None),
    };
    if conferenced {
        // A call has three legs, so the caller's conference is the only one its legs can be in.
        let mut member = |id| leg_by_id(legs, slots, id).is_some_and(|l| l.in_conference());
        [(partner, member(partner)), (third, member(third))]
    } else if bridged == Some(third) {
        [(partner, false), (third, true)]
    } else {
        [(partner, true), (third, false)]
    }
}

/// Starts capturing on the recorded caller and the legs it hears, or stops capturing on all
/// three legs of its call.
fn capture(legs: &mut [Option<Leg>], slots: &HashMap<LegId, usize>, rec: &Recording, on: bool) {
    if let Some(caller) = caller_of(legs, rec) {
        caller.set_capture(on);
    }
    let heard = match on {
        true => heard_by_caller(legs, slots, rec),
        false => [(rec.leg.partner(), false), (rec.leg.third(), false)],
    };
    for (id, hears) in heard {
        if let Some(leg) = leg_by_id(legs, slots, id) {
            leg.set_capture(hears);
        }
    }
}

/// One cycle of a recording: the caller's captured frame on the left, the sum of the captured
/// frames of the legs it hears on the right, silence for what is missing. Capture follows who
/// the caller hears now (a partner opened since, a conference started or ended).
fn take_frame(
    legs: &mut [Option<Leg>],
    slots: &HashMap<LegId, usize>,
    rec: &Recording,
    frame: &mut StereoFrame,
) {
    let heard = heard_by_caller(legs, slots, rec);
    match caller_of(legs, rec) {
        Some(leg) => {
            leg.take_captured(&mut frame.left);
        }
        None => frame.left.fill(0),
    }
    frame.right.fill(0);
    let mut part = [0i16; FRAME_SAMPLES];
    for (id, hears) in heard {
        let Some(leg) = leg_by_id(legs, slots, id) else {
            continue;
        };
        leg.set_capture(hears);
        if hears && leg.take_captured(&mut part) {
            mixer::add_saturating(&mut frame.right, &part);
        }
    }
}

/// The leg in `slot` and, when it is bridged, its peer (another slot of the same worker).
fn leg_and_peer(legs: &mut [Option<Leg>], slot: usize) -> Option<(&mut Leg, Option<&mut Leg>)> {
    match legs.get(slot)?.as_ref()?.bridged_to() {
        Some((_, peer_slot)) if peer_slot != slot && peer_slot < legs.len() => {
            let [leg, peer] = legs.get_disjoint_mut([slot, peer_slot]).ok()?;
            Some((leg.as_mut()?, peer.as_mut()))
        }
        _ => Some((legs.get_mut(slot)?.as_mut()?, None)),
    }
}
