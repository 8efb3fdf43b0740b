//! Audio relayed between two bridged legs: the elastic FIFO of linear samples a leg sends from.
//!
//! The receiving leg decodes what its peer's far end sends (any ptime, either G.711 law) and
//! pushes the samples into the *sending* leg's FIFO; the sending leg at once sends every whole
//! 20 ms frame the FIFO holds, encoded with its own codec (cut-through: a 20 ms packet leaves
//! the engine as soon as it arrived, and the FIFO keeps less than a frame between packets; only
//! other ptimes wait for the rest of a frame). While the peer's audio flows it carries the
//! sending leg's stream and the leg's own pacing clock stays quiet; after [`CARRY_TICKS`]
//! ticks without a relayed frame (the peer went silent, on hold, or its packets are late) the
//! clock takes over again with silence, so the far end always gets a stream.
//!
//! The FIFO holds at most [`RELAY_FIFO_SAMPLES`] (100 ms) and drops the oldest samples on
//! overflow. It is allocated once, when the leg is bridged; pushing and popping never allocate.

use super::codec::Codec;
use super::control::LegId;

/// Capacity of a relay FIFO: 100 ms at 8 kHz.
pub const RELAY_FIFO_SAMPLES: usize = 800;

/// Pacing ticks a relayed frame covers before the leg's clock sends silence: two frames of
/// arrival jitter are tolerated before the far end is given filler.
pub const CARRY_TICKS: u32 = 3;

/// A fixed-capacity ring of linear samples that drops the oldest on overflow.
#[derive(Debug)]
pub struct SampleFifo {
    buf: Box<[i16; RELAY_FIFO_SAMPLES]>,
    /// Index of the oldest sample.
    head: usize,
    /// Samples held.
    len: usize,
    /// Samples dropped on overflow so far.
    dropped: u64,
}

impl Default for SampleFifo {
    fn default() -> Self {
        SampleFifo::new()
    }
}

impl SampleFifo {
    /// An empty FIFO (allocates its buffer).
    pub fn new() -> SampleFifo {
        SampleFifo {
            buf: Box::new([0; RELAY_FIFO_SAMPLES]),
            head: 0,
            len: 0,
            dropped: 0,
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

    /// Samples dropped on overflow since the FIFO was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets every sample held.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Appends `samples`, dropping the oldest held (or, beyond the capacity, the oldest given)
    /// to make room.
    pub fn push(&mut self, samples: &[i16]) {
        let cap = RELAY_FIFO_SAMPLES;
        let samples = if samples.len() > cap {
            let skip = samples.len() - cap;
            self.dropped += skip as u64;
            &samples[skip..]
        } else {
            samples
        };
        let overflow = (self.len + samples.len()).saturating_sub(cap);
        if overflow > 0 {
            self.head = (self.head + overflow) % cap;
            self.len -= overflow;
            self.dropped += overflow as u64;
        }
        let tail = (self.head + self.len) % cap;
        let first = samples.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&samples[..first]);
        self.buf[..samples.len() - first].copy_from_slice(&samples[first..]);
        self.len += samples.len();
    }

    /// Takes the `out.len()` oldest samples encoded with `codec` into `out`; returns false (and
    /// takes nothing) when fewer are held.
    pub fn pop_encoded(&mut self, codec: Codec, out: &mut [u8]) -> bool {
        let n = out.len();
        if n > self.len {
            return false;
        }
        let cap = RELAY_FIFO_SAMPLES;
        let first = n.min(cap - self.head);
        codec.encode(&self.buf[self.head..self.head + first], &mut out[..first]);
        codec.encode(&self.buf[..n - first], &mut out[first..]);
        self.head = (self.head + n) % cap;
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
        true
    }
}

/// A leg's side of a bridge: who its peer is and the audio waiting to be sent on this leg.
#[derive(Debug)]
pub struct Relay {
    /// The peer leg.
    pub peer: LegId,
    /// The peer's slot in the worker (valid while the bridge lasts: closing either leg
    /// dissolves it).
    pub peer_slot: usize,
    /// Audio received on the peer, to be sent on this leg.
    pub fifo: SampleFifo,
    /// Pacing ticks since a relayed frame was sent (see [`CARRY_TICKS`]).
    pub quiet_ticks: u32,
}

impl Relay {
    /// A bridge to `peer` at `peer_slot`, with an empty FIFO.
    pub fn new(peer: LegId, peer_slot: usize) -> Relay {
        Relay {
            peer,
            peer_slot,
            fifo: SampleFifo::new(),
            // Not carried until the peer's first frame.
            quiet_ticks: CARRY_TICKS + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(from: i16, n: usize) -> Vec<i16> {
        (0..n).map(|i| from + i as i16).collect()
    }

    fn pop_linear(fifo: &mut SampleFifo, n: usize) -> Option<Vec<i16>> {
        let mut codes = vec![0u8; n];
        fifo.pop_encoded(Codec::Pcma, &mut codes).then(|| {
            codes
                .iter()
                .map(|&c| Codec::Pcma.decode_sample(c))
                .collect()
        })
    }

    fn pcma_round_trip(x: &[i16]) -> Vec<i16> {
        x.iter()
            .map(|&s| Codec::Pcma.decode_sample(Codec::Pcma.encode_sample(s)))
            .collect()
    }

    #[test]
    fn a_frame_only_when_a_whole_one_is_there() {
        let mut fifo = SampleFifo::new();
        assert!(fifo.is_empty());
        let mut out = [0u8; 160];
        assert!(!fifo.pop_encoded(Codec::Pcmu, &mut out));
        fifo.push(&[1000; 100]);
        assert!(!fifo.pop_encoded(Codec::Pcmu, &mut out));
        assert_eq!(fifo.len(), 100);
        fifo.push(&[1000; 60]);
        assert!(fifo.pop_encoded(Codec::Pcmu, &mut out));
        assert!(out.iter().all(|&c| c == Codec::Pcmu.encode_sample(1000)));
        assert!(fifo.is_empty());
    }

    #[test]
    fn ptime_30_in_20_ms_frames_out_in_order_across_the_wrap() {
        let mut fifo = SampleFifo::new();
        let input: Vec<i16> = (0..2400).map(|i| (i * 13 % 8000) as i16 - 4000).collect();
        let mut output = Vec::new();
        // 240 in, then 160 out whenever possible: the ring wraps many times.
        for chunk in input.chunks(240) {
            fifo.push(chunk);
            while let Some(frame) = pop_linear(&mut fifo, 160) {
                output.extend(frame);
            }
        }
        assert_eq!(output.len(), 2400);
        assert_eq!(output, pcma_round_trip(&input));
        assert_eq!(fifo.dropped(), 0);
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let mut fifo = SampleFifo::new();
        fifo.push(&ramp(0, 700));
        fifo.push(&ramp(700, 300));
        assert_eq!(fifo.len(), RELAY_FIFO_SAMPLES);
        assert_eq!(fifo.dropped(), 200);
        let first = pop_linear(&mut fifo, 160).unwrap();
        assert_eq!(first, pcma_round_trip(&ramp(200, 160)));
        // More than the capacity at once keeps the newest samples only.
        fifo.push(&ramp(1000, 1000));
        assert_eq!(fifo.len(), RELAY_FIFO_SAMPLES);
        assert_eq!(fifo.dropped(), 200 + 200 + 640);
        let mut all = Vec::new();
        while let Some(frame) = pop_linear(&mut fifo, 160) {
            all.extend(frame);
        }
        assert_eq!(all, pcma_round_trip(&ramp(1200, 800)));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut fifo = SampleFifo::new();
        fifo.push(&ramp(0, 500));
        fifo.clear();
        assert!(fifo.is_empty());
        fifo.push(&ramp(3, 160));
        assert_eq!(
            pop_linear(&mut fifo, 160).unwrap(),
            pcma_round_trip(&ramp(3, 160))
        );
    }

    #[test]
    fn transcodes_through_linear() {
        // µ-law in, A-law out: the frame carries the same audio within G.711 precision.
        let pcm: Vec<i16> = (0..160)
            .map(|n| (8000.0 * (n as f64 * 0.3).sin()) as i16)
            .collect();
        let mut ulaw = [0u8; 160];
        Codec::Pcmu.encode(&pcm, &mut ulaw);
        let mut linear = [0i16; 160];
        Codec::Pcmu.decode(&ulaw, &mut linear);
        let mut fifo = SampleFifo::new();
        fifo.push(&linear);
        let mut alaw = [0u8; 160];
        assert!(fifo.pop_encoded(Codec::Pcma, &mut alaw));
        for (i, (&a, &x)) in alaw.iter().zip(&pcm).enumerate() {
            let y = Codec::Pcma.decode_sample(a);
            assert!(
                (i32::from(y) - i32::from(x)).abs() <= 300,
                "sample {i}: {x} -> {y}"
            );
        }
    }
}
