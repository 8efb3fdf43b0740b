//! Call recording for quality inspection: stereo WAV files (caller left, far party right,
//! 8 kHz 16-bit) captured on the media workers and written by one recorder thread per plane.
//!
//! **What is recorded.** The left channel is the audio *received* on the recorded (caller) leg,
//! the right channel the audio received on the legs of its call the caller hears, whichever
//! legs hold those ids at the moment: its partner ([`LegId::partner`]); while the caller is in a
//! conference (see [`super::mixer`]), the sum of the other members (partner and third leg,
//! [`LegId::third`]), which is the mix the caller hears; while it is bridged to its third leg
//! (a three-way transfer the seat has left), that leg. So a partner that closes and is opened
//! again (a new seat, a sub-centre) or a transfer through a conference keeps being recorded
//! into the same file, with silence while there is none. Recording needs no bridge: it starts
//! with `Record` and runs until `StopRecording` or until the caller leg closes. Prompts the
//! engine plays are **not** in the file: only what the parties say is recorded (quality
//! inspection judges the people; the prompts are known, and mixing them in would need a mixer on
//! the send path of every leg).
//! Telephone events (RFC 4733) are not audio and are not recorded either.
//!
//! **Alignment.** Each receiving leg of a recording decodes its audio into a small
//! [`CaptureFifo`] (60 ms). On every 20 ms cycle of the worker's clock (at the caller leg's
//! phase) exactly one 160-sample frame per channel is taken: a whole frame from the FIFO, or
//! silence when less arrived (nothing said, on hold, no partner yet, packets of 30 ms still on
//! their way). So the WAV grows by 20 ms per 20 ms of wall-clock time, both channels together,
//! whatever either side sends; whole cycles the worker missed (a stalled thread) are written as
//! silence. A channel lags the wall clock by at most the FIFO (60 ms); overflow drops the oldest.
//!
//! **Threading and buffers.** Workers never block and never touch a file. The frames of one
//! cycle travel in a fixed-size [`StereoFrame`] buffer (640 bytes) over one bounded channel to
//! the plane's single recorder thread, which appends them through hound and hands the buffer
//! back over the worker's own return channel; each worker keeps a free list, so in steady state
//! nothing is allocated per frame. One thread serves the whole plane because the disk is the
//! shared resource (a recording is 32 kB/s, a thousand are 32 MB/s of buffered appends) and one
//! owner of every open file makes shutdown and failure handling simple. A worker may have at
//! most [`FRAME_POOL_PER_WORKER`] buffers; when none is free or the channel is full, the frame is
//! dropped and that recording ends, reported as failed ([`FELL_BEHIND`]). A file that cannot be
//! created or written (disk full, permission, a parent that is a file) ends its recording with
//! the error; the call and every other recording go on. Shutdown of the plane finishes every
//! open recording.
//!
//! Every [`CHECKPOINT_FRAMES`] the WAV header is brought up to date, so a crash leaves a readable
//! file up to the last checkpoint. Files are not fsynced.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use hound::{SampleFormat, WavSpec, WavWriter};
use tokio::sync::mpsc::UnboundedSender;

use super::codec::Codec;
use super::control::{LegId, MediaEvent};
use super::leg::FRAME_SAMPLES;

/// Capacity of a leg's capture FIFO: 60 ms, room for a 30 or 40 ms packet on top of a frame
/// of slack.
pub const CAPTURE_SAMPLES: usize = 3 * FRAME_SAMPLES;

/// Frame buffers a worker may have in flight to the recorder (about 5 MB at most, allocated
/// only as the recorder lags): 1.6 s of backlog for 100 recordings on the worker.
pub const FRAME_POOL_PER_WORKER: usize = 8192;

/// Room in the recorder channel beyond the frames, for start and stop messages.
const CONTROL_SLACK: usize = 1024;

/// The header is rewritten every this many frames (5 s).
pub const CHECKPOINT_FRAMES: u64 = 250;

/// Bytes of one stereo 16-bit frame in the file.
const FRAME_BYTES: u64 = 4 * FRAME_SAMPLES as u64;

/// The most frames a WAV can hold (its sizes are 32-bit; a margin for the header).
const MAX_FRAMES: u64 = (u32::MAX as u64 - 4096) / FRAME_BYTES;

/// The error of a recording whose frame could not be handed to the recorder in time.
pub const FELL_BEHIND: &str = "recorder fell behind";

/// The format of every recording: stereo, 8 kHz, 16-bit linear.
pub const WAV_SPEC: WavSpec = WavSpec {
    channels: 2,
    sample_rate: Codec::CLOCK_RATE,
    bits_per_sample: 16,
    sample_format: SampleFormat::Int,
};

/// Seconds of audio in `frames` 20 ms frames.
pub fn frames_to_seconds(frames: u64) -> f64 {
    frames as f64 * FRAME_SAMPLES as f64 / f64::from(Codec::CLOCK_RATE)
}

/// A leg's captured audio waiting for the next recording cycle: linear samples, oldest first,
/// at most [`CAPTURE_SAMPLES`] (the oldest are dropped beyond).
#[derive(Debug, Clone)]
pub struct CaptureFifo {
    buf: [i16; CAPTURE_SAMPLES],
    len: usize,
    dropped: u64,
    /// Samples to hold before the first frame is taken (0 once started).
    slack: usize,
}

impl Default for CaptureFifo {
    fn default() -> Self {
        CaptureFifo::new()
    }
}

impl CaptureFifo {
    /// An empty FIFO.
    pub fn new() -> CaptureFifo {
        CaptureFifo {
            buf: [0; CAPTURE_SAMPLES],
            len: 0,
            dropped: 0,
            slack: 0,
        }
    }

    /// An empty FIFO that gives out its first frame only once it holds two: the frame of
    /// slack that stays absorbs a late packet, which would otherwise leave 20 ms of silence
    /// in a recording (where a frame of delay costs nothing).
    pub fn with_slack() -> CaptureFifo {
        CaptureFifo {
            slack: 2 * FRAME_SAMPLES,
            ..CaptureFifo::new()
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples dropped on overflow so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends `samples`, dropping the oldest to stay within [`CAPTURE_SAMPLES`].
    pub fn push(&mut self, samples: &[i16]) {
        let samples = match samples.len().checked_sub(CAPTURE_SAMPLES) {
            Some(skip) if skip > 0 => {
                self.dropped += skip as u64;
                &samples[skip..]
            }
            _ => samples,
        };
        let overflow = (self.len + samples.len()).saturating_sub(CAPTURE_SAMPLES);
        if overflow > 0 {
            self.buf.copy_within(overflow..self.len, 0);
            self.len -= overflow;
            self.dropped += overflow as u64;
        }
        self.buf[self.len..self.len + samples.len()].copy_from_slice(samples);
        self.len += samples.len();
    }

    /// Takes the oldest whole frame into `out`; with less than a frame held, `out` is silence,
    /// nothing is taken and false is returned.
    pub fn take_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> bool {
        if self.len < FRAME_SAMPLES.max(self.slack) {
            out.fill(0);
            return false;
        }
        self.slack = 0;
        out.copy_from_slice(&self.buf[..FRAME_SAMPLES]);
        self.buf.copy_within(FRAME_SAMPLES..self.len, 0);
        self.len -= FRAME_SAMPLES;
        true
    }
}

/// One 20 ms cycle of a recording: the caller's frame and the far parties'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StereoFrame {
    /// Received on the recorded leg.
    pub left: [i16; FRAME_SAMPLES],
    /// Received on the legs the caller hears (its partner, or its conference's other members).
    pub right: [i16; FRAME_SAMPLES],
}

impl StereoFrame {
    /// A frame of silence on both channels.
    pub const SILENT: StereoFrame = StereoFrame {
        left: [0; FRAME_SAMPLES],
        right: [0; FRAME_SAMPLES],
    };
}

/// What a worker tells the recorder thread.
#[derive(Debug)]
pub enum RecorderMsg {
    /// A new recording: create the file.
    Start(Box<StartRecording>),
    /// The next cycle of a recording (the buffer goes back to its worker).
    Frame(Box<FrameMsg>),
    /// Finish the recording (finalize the file, report it).
    Stop(u64),
    /// The worker dropped a frame: finish the recording and report it failed ([`FELL_BEHIND`]).
    FellBehind(u64),
}

/// A recording's parameters, as the recorder needs them.
#[derive(Debug)]
pub struct StartRecording {
    /// The recording's number (unique in the plane).
    pub id: u64,
    /// The recorded (caller) leg.
    pub leg: LegId,
    /// The WAV file.
    pub path: PathBuf,
    /// Set by the recorder when it ended the recording on an error (and reported it), so the
    /// worker stops capturing.
    pub failed: Arc<AtomicBool>,
}

/// A frame buffer in flight, with where it belongs.
#[derive(Debug)]
pub struct FrameMsg {
    /// The recording.
    pub id: u64,
    /// The worker whose pool the buffer returns to.
    pub worker: usize,
    /// Whole cycles the worker missed before this one: written as silence first.
    pub gap: u32,
    /// The audio.
    pub frame: StereoFrame,
}

/// Why a message did not reach the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// No free buffer or the channel is full.
    FellBehind,
    /// The recorder thread is gone.
    Stopped,
}

/// The channel from the workers to the recorder thread, sized for every worker's pool.
pub fn channel(workers: usize) -> (SyncSender<RecorderMsg>, Receiver<RecorderMsg>) {
    sync_channel(workers.max(1) * FRAME_POOL_PER_WORKER + CONTROL_SLACK)
}

/// A worker's return channel for frame buffers (never full: it holds the whole pool).
pub fn return_channel() -> (SyncSender<Box<FrameMsg>>, Receiver<Box<FrameMsg>>) {
    sync_channel(FRAME_POOL_PER_WORKER)
}

/// A worker's end of the recorder: its channel, its buffer pool and stops not delivered yet.
#[derive(Debug)]
pub struct RecorderLink {
    worker: usize,
    tx: SyncSender<RecorderMsg>,
    returns: Receiver<Box<FrameMsg>>,
    /// Boxed on purpose: buffers travel the channels as pointers, never copied.
    #[allow(clippy::vec_box)]
    free: Vec<Box<FrameMsg>>,
    allocated: usize,
    limit: usize,
    /// Stop messages that found the channel full, in order (retried every sub-tick).
    pending: VecDeque<RecorderMsg>,
    next_id: u64,
}

impl RecorderLink {
    /// The link of worker `worker`, with a pool of at most `limit` buffers.
    pub fn new(
        worker: usize,
        tx: SyncSender<RecorderMsg>,
        returns: Receiver<Box<FrameMsg>>,
        limit: usize,
    ) -> RecorderLink {
        RecorderLink {
            worker,
            tx,
            returns,
            free: Vec::new(),
            allocated: 0,
            limit,
            pending: VecDeque::new(),
            next_id: 0,
        }
    }

    /// A number for a new recording, unique in the plane (the worker is in the low 16 bits).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        (self.next_id << 16) | (self.worker as u64 & 0xFFFF)
    }

    /// Buffers allocated so far (the pool's high-water mark).
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Hands a new recording to the recorder without blocking.
    pub fn start(&mut self, start: StartRecording) -> Result<(), LinkError> {
        match self.tx.try_send(RecorderMsg::Start(Box::new(start))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(LinkError::FellBehind),
            Err(TrySendError::Disconnected(_)) => Err(LinkError::Stopped),
        }
    }

    /// A free frame buffer (its audio is stale), or `None` when the pool is exhausted.
    pub fn buffer(&mut self) -> Option<Box<FrameMsg>> {
        if self.free.is_empty() {
            while let Ok(b) = self.returns.try_recv() {
                self.free.push(b);
            }
        }
        if let Some(b) = self.free.pop() {
            return Some(b);
        }
        if self.allocated >= self.limit {
            return None;
        }
        self.allocated += 1;
        Some(Box::new(FrameMsg {
            id: 0,
            worker: self.worker,
            gap: 0,
            frame: StereoFrame::SILENT,
        }))
    }

    /// Sends a filled buffer without blocking; on failure it goes back to the pool.
    pub fn send_frame(&mut self, mut msg: Box<FrameMsg>) -> Result<(), LinkError> {
        msg.worker = self.worker;
        match self.tx.try_send(RecorderMsg::Frame(msg)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m)) => {
                self.recycle(m);
                Err(LinkError::FellBehind)
            }
            Err(TrySendError::Disconnected(m)) => {
                self.recycle(m);
                Err(LinkError::Stopped)
            }
        }
    }

    fn recycle(&mut self, msg: RecorderMsg) {
        if let RecorderMsg::Frame(b) = msg {
            self.free.push(b);
        }
    }

    /// Ends a recording (normally, or as fallen behind): sent now, or as soon as the channel
    /// has room (its frames are all ahead of it).
    pub fn stop(&mut self, id: u64, fell_behind: bool) {
        self.pending.push_back(if fell_behind {
            RecorderMsg::FellBehind(id)
        } else {
            RecorderMsg::Stop(id)
        });
        self.flush();
    }

    /// Retries the stops not delivered yet, in order, without blocking.
    pub fn flush(&mut self) {
        while let Some(msg) = self.pending.pop_front() {
            match self.tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(msg)) => {
                    self.pending.push_front(msg);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    tracing::error!(worker = self.worker, "recorder thread is gone");
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// At shutdown: delivers every pending stop, waiting for room (the recorder keeps reading
    /// until every worker has let go of the channel).
    pub fn flush_blocking(&mut self) {
        for msg in self.pending.drain(..) {
            if self.tx.send(msg).is_err() {
                return;
            }
        }
    }
}

/// Everything the recorder thread needs.
pub struct RecorderSetup {
    /// Messages from every worker.
    pub messages: Receiver<RecorderMsg>,
    /// Each worker's return channel, by worker index.
    pub returns: Vec<SyncSender<Box<FrameMsg>>>,
    /// Events to the controller (`RecordingDone`).
    pub events: UnboundedSender<MediaEvent>,
}

type Writer = WavWriter<BufWriter<File>>;

/// A recording with an open file.
struct OpenRecording {
    leg: LegId,
    path: PathBuf,
    writer: Writer,
    frames: u64,
    failed: Arc<AtomicBool>,
}

/// Runs the recorder until every worker has dropped its sender, then finishes what is left open.
pub fn run(setup: RecorderSetup) {
    let mut recorder = Recorder {
        open: HashMap::new(),
        events: setup.events,
    };
    while let Ok(msg) = setup.messages.recv() {
        match msg {
            RecorderMsg::Start(start) => recorder.start(*start),
            RecorderMsg::Frame(frame) => {
                recorder.frame(&frame);
                if let Some(tx) = setup.returns.get(frame.worker) {
                    // Never full (it holds the whole pool); a stopped worker drops it.
                    let _ = tx.try_send(frame);
                }
            }
            RecorderMsg::Stop(id) => recorder.stop(id, None),
            RecorderMsg::FellBehind(id) => recorder.stop(id, Some(FELL_BEHIND.to_string())),
        }
    }
    let left: Vec<u64> = recorder.open.keys().copied().collect();
    for id in left {
        recorder.stop(
            id,
            Some("media worker stopped without finishing".to_string()),
        );
    }
}

/// The recorder thread's state.
struct Recorder {
    open: HashMap<u64, OpenRecording>,
    events: UnboundedSender<MediaEvent>,
}

impl Recorder {
    fn start(&mut self, start: StartRecording) {
        let StartRecording {
            id,
            leg,
            path,
            failed,
        } = start;
        match create(&path) {
            Ok(writer) => {
                self.open.insert(
                    id,
                    OpenRecording {
                        leg,
                        path,
                        writer,
                        frames: 0,
                        failed,
                    },
                );
            }
            Err(error) => {
                failed.store(true, Ordering::Relaxed);
                tracing::warn!(leg = leg.0, path = %path.display(), %error, "recording failed");
                self.done(leg, path, 0, Some(error));
            }
        }
    }

    fn frame(&mut self, msg: &FrameMsg) {
        let Some(rec) = self.open.get_mut(&msg.id) else {
            return; // Failed and reported already.
        };
        if let Err(error) = append(rec, msg) {
            if let Some(rec) = self.open.remove(&msg.id) {
                rec.failed.store(true, Ordering::Relaxed);
                tracing::warn!(leg = rec.leg.0, path = %rec.path.display(), %error, "recording failed");
                // Dropping the writer makes a last, unchecked attempt at the header.
                drop(rec.writer);
                self.done(rec.leg, rec.path, rec.frames, Some(error));
            }
        }
    }

    fn stop(&mut self, id: u64, error: Option<String>) {
        let Some(rec) = self.open.remove(&id) else {
            return; // Failed and reported already.
        };
        let finished = rec
            .writer
            .finalize()
            .map_err(|e| format!("finishing {}: {e}", rec.path.display()));
        let error = error.or(finished.err());
        if let Some(error) = &error {
            rec.failed.store(true, Ordering::Relaxed);
            tracing::warn!(leg = rec.leg.0, path = %rec.path.display(), %error, "recording failed");
        }
        self.done(rec.leg, rec.path, rec.frames, error);
    }

    fn done(&self, leg: LegId, path: PathBuf, frames: u64, error: Option<String>) {
        let _ = self.events.send(MediaEvent::RecordingDone {
            leg,
            path,
            seconds: frames_to_seconds(frames),
            error,
        });
    }
}

/// Creates the WAV file (and its missing parent directories).
fn create(path: &Path) -> Result<Writer, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    WavWriter::create(path, WAV_SPEC).map_err(|e| format!("creating {}: {e}", path.display()))
}

/// Appends the gap's silence and the frame; checkpoints the header now and then.
fn append(rec: &mut OpenRecording, msg: &FrameMsg) -> Result<(), String> {
    let frames = u64::from(msg.gap) + 1;
    if rec.frames + frames > MAX_FRAMES {
        return Err("the WAV size limit (4 GiB) is reached".to_string());
    }
    let path = &rec.path;
    let failed = |e: hound::Error| format!("writing {}: {e}", path.display());
    for _ in 0..msg.gap {
        write_frame(&mut rec.writer, &StereoFrame::SILENT).map_err(failed)?;
    }
    write_frame(&mut rec.writer, &msg.frame).map_err(failed)?;
    let before = rec.frames;
    rec.frames += frames;
    if rec.frames / CHECKPOINT_FRAMES != before / CHECKPOINT_FRAMES {
        rec.writer.flush().map_err(failed)?;
    }
    Ok(())
}

/// Appends one frame, interleaved left/right.
fn write_frame(writer: &mut Writer, frame: &StereoFrame) -> hound::Result<()> {
    let mut out = writer.get_i16_writer(2 * FRAME_SAMPLES as u32);
    for (&l, &r) in frame.left.iter().zip(&frame.right) {
        out.write_sample(l);
        out.write_sample(r);
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(from: i16, n: usize) -> Vec<i16> {
        (0..n).map(|i| from + i as i16).collect()
    }

    fn take(fifo: &mut CaptureFifo) -> Option<Vec<i16>> {
        let mut out = [7i16; FRAME_SAMPLES];
        let whole = fifo.take_frame(&mut out);
        if !whole {
            assert_eq!(out, [0; FRAME_SAMPLES], "silence when no whole frame");
        }
        whole.then(|| out.to_vec())
    }

    #[test]
    fn silence_until_a_whole_frame_is_there() {
        let mut fifo = CaptureFifo::new();
        assert_eq!(take(&mut fifo), None);
        fifo.push(&ramp(1, 100));
        assert_eq!(take(&mut fifo), None);
        assert_eq!(fifo.len(), 100, "a partial frame waits for the rest");
        fifo.push(&ramp(101, 100));
        assert_eq!(take(&mut fifo), Some(ramp(1, 160)));
        assert_eq!(fifo.len(), 40);
        assert_eq!(fifo.dropped(), 0);
    }

    #[test]
    fn with_slack_a_late_packet_leaves_no_gap() {
        let mut fifo = CaptureFifo::with_slack();
        fifo.push(&ramp(1, 160));
        assert_eq!(
            take(&mut fifo),
            None,
            "the first frame waits for a second one"
        );
        fifo.push(&ramp(161, 160));
        assert_eq!(take(&mut fifo), Some(ramp(1, 160)));
        // The next packet comes after the cycle: the frame of slack is taken meanwhile.
        assert_eq!(take(&mut fifo), Some(ramp(161, 160)));
        fifo.push(&ramp(321, 160));
        fifo.push(&ramp(481, 160));
        assert_eq!(take(&mut fifo), Some(ramp(321, 160)));
        // Without the slack, the same late packet leaves a gap.
        let mut plain = CaptureFifo::new();
        plain.push(&ramp(1, 160));
        assert_eq!(take(&mut plain), Some(ramp(1, 160)));
        assert_eq!(take(&mut plain), None);
    }

    /// Simulates a peer sending `ptime`-sample packets of a ramp (from 1) on its own schedule
    /// (1 ms resolution, `offset` ms phase) while cycles take one frame every 20 ms; returns what
    /// the cycles took (silence as zeros), the samples sent and the FIFO.
    fn run_cycles(ptime: usize, offset: u64, ms: u64) -> (Vec<i16>, usize, CaptureFifo) {
        let mut fifo = CaptureFifo::new();
        let mut out = Vec::new();
        let mut sent = 0;
        let packet_ms = (ptime / 8) as u64;
        for t in 0..ms {
            if t >= offset && (t - offset).is_multiple_of(packet_ms) {
                fifo.push(&ramp(1 + sent as i16, ptime));
                sent += ptime;
            }
            if t % 20 == 19 {
                let mut frame = [0i16; FRAME_SAMPLES];
                fifo.take_frame(&mut frame);
                out.extend_from_slice(&frame);
            }
        }
        (out, sent, fifo)
    }

    #[test]
    fn one_frame_per_cycle_whatever_the_ptime() {
        for ptime in [160, 240, 320] {
            for offset in [0, 7, 19] {
                let case = format!("ptime {ptime} offset {offset}");
                let (out, sent, fifo) = run_cycles(ptime, offset, 2000);
                // Exactly one frame per 20 ms: the channel's duration is wall-clock time.
                assert_eq!(out.len(), 100 * FRAME_SAMPLES, "{case}");
                // Every sample sent is taken in order or still waits: nothing lost.
                let audio: Vec<i16> = out.iter().copied().filter(|&s| s != 0).collect();
                assert_eq!(audio, ramp(1, audio.len()), "{case}");
                assert_eq!(audio.len() + fifo.len(), sent, "{case}");
                assert_eq!(fifo.dropped(), 0, "{case}");
                // Silence comes first; within the audio at most one frame of silence, while
                // the FIFO builds a frame of slack (30 ms packets landing just after a cycle).
                let first = out.iter().position(|&s| s != 0).unwrap();
                assert!(first <= 2 * FRAME_SAMPLES, "{case}: starts at {first}");
                let holes = out[first..]
                    .chunks(FRAME_SAMPLES)
                    .filter(|f| f.iter().all(|&s| s == 0))
                    .count();
                assert!(holes <= usize::from(ptime == 240), "{case}: {holes} holes");
                // The lag behind the peer stays within the FIFO.
                assert!(fifo.len() <= CAPTURE_SAMPLES, "{case}");
            }
        }
    }

    #[test]
    fn a_burst_after_a_stall_keeps_the_lag_bounded() {
        let mut fifo = CaptureFifo::new();
        // 200 ms of nothing, then ten 20 ms packets at once.
        for _ in 0..10 {
            assert_eq!(take(&mut fifo), None);
        }
        for k in 0..10 {
            fifo.push(&ramp(k * 160, 160));
        }
        assert_eq!(fifo.len(), CAPTURE_SAMPLES);
        assert_eq!(fifo.dropped(), 7 * 160);
        // Only the newest 60 ms are kept: the channel lags by at most that.
        assert_eq!(take(&mut fifo), Some(ramp(7 * 160, 160)));
        // More than the capacity at once keeps the newest samples.
        fifo.push(&ramp(0, 1000));
        assert_eq!(fifo.len(), CAPTURE_SAMPLES);
        assert_eq!(take(&mut fifo), Some(ramp(520, 160)));
    }

    #[test]
    fn buffers_are_reused_not_reallocated() {
        let (tx, _rx) = channel(1);
        let (ret_tx, ret_rx) = return_channel();
        let mut link = RecorderLink::new(0, tx, ret_rx, 4);
        let a = link.buffer().unwrap();
        let b = link.buffer().unwrap();
        let ptr = |b: &FrameMsg| b as *const FrameMsg;
        let first = [ptr(&a), ptr(&b)];
        ret_tx.try_send(a).unwrap();
        ret_tx.try_send(b).unwrap();
        let (c, d) = (link.buffer().unwrap(), link.buffer().unwrap());
        assert!(first.contains(&ptr(&c)) && first.contains(&ptr(&d)));
        assert_eq!(link.allocated(), 2);
    }

    #[test]
    fn an_exhausted_pool_or_a_full_channel_falls_behind() {
        let (tx, rx) = sync_channel(1);
        let (_ret_tx, ret_rx) = return_channel();
        let mut link = RecorderLink::new(3, tx, ret_rx, 2);
        let a = link.buffer().unwrap();
        let b = link.buffer().unwrap();
        assert!(link.buffer().is_none(), "pool limit");
        assert_eq!(link.send_frame(a), Ok(()));
        assert_eq!(link.send_frame(b), Err(LinkError::FellBehind));
        // The refused buffer went back to the pool.
        let b = link.buffer().unwrap();
        // A stop waits for room, then goes in order.
        link.stop(9, true);
        assert!(matches!(rx.try_recv(), Ok(RecorderMsg::Frame(f)) if f.worker == 3));
        link.flush();
        assert!(matches!(rx.try_recv(), Ok(RecorderMsg::FellBehind(9))));
        drop(rx);
        assert_eq!(link.send_frame(b), Err(LinkError::Stopped));
    }

    #[test]
    fn recorder_writes_aligned_stereo_and_reports_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/call.wav");
        let (tx, rx) = channel(1);
        let (ret_tx, ret_rx) = return_channel();
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::spawn(move || {
            run(RecorderSetup {
                messages: rx,
                returns: vec![ret_tx],
                events: events_tx,
            })
        });
        let mut link = RecorderLink::new(0, tx, ret_rx, 16);
        let id = link.next_id();
        let failed = Arc::new(AtomicBool::new(false));
        link.start(StartRecording {
            id,
            leg: LegId(5),
            path: path.clone(),
            failed: Arc::clone(&failed),
        })
        .unwrap();
        for k in 0..3 {
            let mut f = link.buffer().unwrap();
            f.id = id;
            f.gap = if k == 2 { 2 } else { 0 };
            f.frame.left = [1000 + k; FRAME_SAMPLES];
            f.frame.right = [-1000 - k; FRAME_SAMPLES];
            link.send_frame(f).unwrap();
        }
        link.stop(id, false);
        drop(link);
        thread.join().unwrap();
        let done = events.try_recv().unwrap();
        assert_eq!(
            done,
            MediaEvent::RecordingDone {
                leg: LegId(5),
                path: path.clone(),
                seconds: 0.1,
                error: None
            }
        );
        assert!(events.try_recv().is_err(), "reported once");
        assert!(!failed.load(Ordering::Relaxed));
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec(), WAV_SPEC);
        assert_eq!(reader.duration(), 5 * FRAME_SAMPLES as u32);
        let s: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        let frame = |k: usize| &s[2 * FRAME_SAMPLES * k..2 * FRAME_SAMPLES * (k + 1)];
        assert!(frame(0).chunks(2).all(|c| c == [1000, -1000]));
        assert!(frame(1).chunks(2).all(|c| c == [1001, -1001]));
        assert!(frame(2).iter().chain(frame(3)).all(|&x| x == 0), "the gap");
        assert!(frame(4).chunks(2).all(|c| c == [1002, -1002]));
    }

    #[test]
    fn an_uncreatable_file_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let path = file.join("under-a-file.wav");
        let (tx, rx) = channel(1);
        let (ret_tx, ret_rx) = return_channel();
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::spawn(move || {
            run(RecorderSetup {
                messages: rx,
                returns: vec![ret_tx],
                events: events_tx,
            })
        });
        let mut link = RecorderLink::new(0, tx, ret_rx, 16);
        let failed = Arc::new(AtomicBool::new(false));
        let id = link.next_id();
        link.start(StartRecording {
            id,
            leg: LegId(8),
            path: path.clone(),
            failed: Arc::clone(&failed),
        })
        .unwrap();
        // Frames and the stop after the failure are ignored: one report only.
        let mut f = link.buffer().unwrap();
        f.id = id;
        link.send_frame(f).unwrap();
        link.stop(id, false);
        drop(link);
        thread.join().unwrap();
        match events.try_recv().unwrap() {
            MediaEvent::RecordingDone {
                leg,
                path: p,
                seconds,
                error: Some(error),
            } => {
                assert_eq!((leg, p, seconds), (LegId(8), path, 0.0));
                assert!(error.contains("plain"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(events.try_recv().is_err(), "reported once");
        assert!(failed.load(Ordering::Relaxed));
    }
}
