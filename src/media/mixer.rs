//! Conferences of two or three legs of one call (three-way transfers): each party hears the
//! others, never itself.
//!
//! **Flow.** A leg in a conference decodes what its far end sends (any ptime, either G.711 law)
//! into its [`Party`]'s received FIFO, the same bounded 60 ms FIFO a recording captures into
//! ([`CaptureFifo`], [`CAPTURE_SAMPLES`](super::recorder::CAPTURE_SAMPLES)). Once per 20 ms
//! cycle of the worker's clock, at the conference's phase, [`Conference::cycle`] takes one
//! frame per party (a whole frame, or silence when less arrived: a party that stops sending, is
//! on hold or is late contributes silence and never stalls the others), computes for every
//! party the sum of the *other* parties' frames saturated to `i16` ([`mix_others`]) and leaves
//! it in that party's one-frame mix slot. Each member leg sends it right after the cycle,
//! encoded in its own codec, so PCMA and PCMU legs mix freely. A prompt playing on a leg wins over the mix, as
//! over relayed audio.
//!
//! **Latency.** A sample waits in the received FIFO until a cycle takes it: cycles take 20 ms
//! each and the FIFO holds at most 60 ms (older audio is dropped), so under 60 ms; the mix goes
//! out in the same sub-tick. While the parties send 20 ms packets steadily the added latency is
//! under 20 ms, one frame more after a late packet left a frame of slack. Cycles the worker missed are not caught up: the next cycle mixes once and the FIFO
//! bound keeps the backlog in check.
//!
//! **Not mixed.** Telephone events (RFC 4733) are not audio: each leg still reports its digits,
//! the others hear nothing of them. Prompts played on one leg are not heard by the others.
//!
//! Nothing is allocated per packet or per cycle: a leg's [`Party`] is allocated when it joins.

use super::codec::Codec;
use super::control::LegId;
use super::leg::{Leg, FRAME_SAMPLES};
use super::recorder::CaptureFifo;

/// The most legs a conference mixes: a call's caller, partner and third leg.
pub const MAX_PARTIES: usize = 3;

/// One 20 ms frame of linear samples.
pub type Frame = [i16; FRAME_SAMPLES];

/// Writes into `outputs[i]` the sum of every `inputs[j]` with `j != i`, saturated to `i16`: each
/// party hears the others, never its own voice. Pairs beyond the shorter slice are ignored.
pub fn mix_others(inputs: &[Frame], outputs: &mut [Frame]) {
    let n = inputs.len().min(outputs.len());
    let (inputs, outputs) = (&inputs[..n], &mut outputs[..n]);
    // Sum once, then take each party's own voice out: linear in the parties, and both loops
    // vectorize.
    let mut total = [0i32; FRAME_SAMPLES];
    for frame in inputs {
        for (t, &x) in total.iter_mut().zip(frame) {
            *t += i32::from(x);
        }
    }
    for (out, own) in outputs.iter_mut().zip(inputs) {
        for ((o, &t), &x) in out.iter_mut().zip(&total).zip(own) {
            *o = saturate(t - i32::from(x));
        }
    }
}

/// Adds `x` into `acc`, saturating each sample to `i16`.
pub fn add_saturating(acc: &mut Frame, x: &Frame) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = a.saturating_add(b);
    }
}

/// One conference frame from G.711 to G.711: decodes each party's frame with its codec, mixes
/// ([`mix_others`]) and encodes each party's mix with its codec. At most [`MAX_PARTIES`] parties
/// (the shortest of the three slices) are mixed. This is the work the media plane does per
/// conference and cycle, split there between receive, the cycle and send.
pub fn mix_coded(
    codecs: &[Codec],
    inputs: &[[u8; FRAME_SAMPLES]],
    outputs: &mut [[u8; FRAME_SAMPLES]],
) {
    let n = codecs
        .len()
        .min(inputs.len())
        .min(outputs.len())
        .min(MAX_PARTIES);
    let mut heard = [[0i16; FRAME_SAMPLES]; MAX_PARTIES];
    for ((pcm, codes), codec) in heard.iter_mut().zip(inputs).zip(codecs).take(n) {
        codec.decode(codes, pcm);
    }
    let mut mixes = [[0i16; FRAME_SAMPLES]; MAX_PARTIES];
    mix_others(&heard[..n], &mut mixes[..n]);
    for ((out, pcm), codec) in outputs.iter_mut().zip(&mixes).zip(codecs).take(n) {
        codec.encode(pcm, out);
    }
}

fn saturate(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// A leg's side of a conference: what its far end said, waiting for the next cycle, and the
/// others' mix waiting to be sent on the leg.
#[derive(Debug, Clone)]
pub struct Party {
    received: CaptureFifo,
    mix: Frame,
    /// Whether `mix` was set since the leg last sent it.
    mix_ready: bool,
}

impl Default for Party {
    fn default() -> Self {
        Party::new()
    }
}

impl Party {
    /// A party that has said nothing and has nothing to hear yet.
    pub fn new() -> Party {
        Party {
            received: CaptureFifo::new(),
            mix: [0; FRAME_SAMPLES],
            mix_ready: false,
        }
    }

    /// Queues audio received on the leg (decoded), dropping the oldest beyond
    /// [`CAPTURE_SAMPLES`](super::recorder::CAPTURE_SAMPLES).
    pub fn push_received(&mut self, pcm: &[i16]) {
        self.received.push(pcm);
    }

    /// The cycle's frame of what the party said: a whole frame, or silence (false) when less
    /// than one is queued.
    pub fn take_received(&mut self, out: &mut Frame) -> bool {
        self.received.take_frame(out)
    }

    /// Leaves the cycle's mix of the others for the leg to send (replacing one not sent: the
    /// worker missed the leg's tick, and the newer audio wins).
    pub fn set_mix(&mut self, mix: &Frame) {
        self.mix = *mix;
        self.mix_ready = true;
    }

    /// Encodes the waiting mix with `codec` into `out` (at most a frame) and takes it; false,
    /// with `out` untouched, when no mix waits.
    pub fn pop_mix_encoded(&mut self, codec: Codec, out: &mut [u8]) -> bool {
        if !self.mix_ready {
            return false;
        }
        self.mix_ready = false;
        let n = codec.encode(&self.mix, out);
        out[n..].fill(codec.silence_byte());
        true
    }
}

/// A conference as its worker keeps it: the member legs and their slots.
///
/// The worker keeps it consistent: a member that closes, is bridged or joins another
/// conference leaves it first, so a stored slot always holds its member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    /// Members (2..=[`MAX_PARTIES`]) and their slots in the worker.
    pub parties: Vec<(LegId, usize)>,
}

impl Conference {
    /// Whether `leg` is a member.
    pub fn has(&self, leg: LegId) -> bool {
        self.parties.iter().any(|&(id, _)| id == leg)
    }

    /// One 20 ms cycle: takes each member's received frame, and leaves each the mix of the
    /// others (see the module doc).
    pub fn cycle(&self, legs: &mut [Option<Leg>]) {
        let n = self.parties.len().min(MAX_PARTIES);
        let mut heard = [[0i16; FRAME_SAMPLES]; MAX_PARTIES];
        for (frame, &(id, slot)) in heard.iter_mut().zip(&self.parties) {
            match party_at(legs, id, slot) {
                Some(party) => {
                    party.take_received(frame);
                }
                None => frame.fill(0),
            }
        }
        let mut mixes = [[0i16; FRAME_SAMPLES]; MAX_PARTIES];
        mix_others(&heard[..n], &mut mixes[..n]);
        for (mix, &(id, slot)) in mixes.iter().zip(&self.parties) {
            if let Some(party) = party_at(legs, id, slot) {
                party.set_mix(mix);
            }
        }
    }
}

/// The party of leg `id` in `slot`, if that slot still holds it and it is conferenced.
fn party_at(legs: &mut [Option<Leg>], id: LegId, slot: usize) -> Option<&mut Party> {
    legs.get_mut(slot)?
        .as_mut()
        .filter(|l| l.id == id)?
        .party_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::recorder::CAPTURE_SAMPLES;
    use std::f64::consts::PI;

    fn tone(freq: f64, amp: f64) -> Frame {
        std::array::from_fn(|n| (amp * (2.0 * PI * freq * n as f64 / 8000.0).sin()) as i16)
    }

    /// Amplitude of the `freq` component of `x` (Goertzel).
    fn amplitude(x: &[i16], freq: f64) -> f64 {
        let coeff = 2.0 * (2.0 * PI * freq / 8000.0).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let n = x.len() as f64;
        (4.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)).sqrt() / n
    }

    #[test]
    fn each_hears_the_others_not_itself() {
        let inputs = [
            [100i16; FRAME_SAMPLES],
            [20; FRAME_SAMPLES],
            [3; FRAME_SAMPLES],
        ];
        let mut out = [[0i16; FRAME_SAMPLES]; 3];
        mix_others(&inputs, &mut out);
        assert_eq!(out[0], [23; FRAME_SAMPLES]);
        assert_eq!(out[1], [103; FRAME_SAMPLES]);
        assert_eq!(out[2], [120; FRAME_SAMPLES]);
        // Two parties: each hears exactly the other.
        let mut two = [[0i16; FRAME_SAMPLES]; 2];
        mix_others(&inputs[..2], &mut two);
        assert_eq!(two, [inputs[1], inputs[0]]);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let inputs = [
            [30_000i16; FRAME_SAMPLES],
            [20_000; FRAME_SAMPLES],
            [-30_000; FRAME_SAMPLES],
        ];
        let mut out = [[0i16; FRAME_SAMPLES]; 3];
        mix_others(&inputs, &mut out);
        assert_eq!(out[0], [-10_000; FRAME_SAMPLES]);
        assert_eq!(out[1], [0; FRAME_SAMPLES]);
        assert_eq!(
            out[2],
            [i16::MAX; FRAME_SAMPLES],
            "50 000 clipped, not wrapped"
        );
        let loud = [[-30_000i16; FRAME_SAMPLES]; 3];
        mix_others(&loud, &mut out);
        assert!(out.iter().all(|f| *f == [i16::MIN; FRAME_SAMPLES]));
        let mut acc = [30_000i16; FRAME_SAMPLES];
        add_saturating(&mut acc, &[10_000; FRAME_SAMPLES]);
        assert_eq!(acc, [i16::MAX; FRAME_SAMPLES]);
    }

    #[test]
    fn pcma_and_pcmu_parties_hear_the_others_tones_in_their_own_law() {
        let codecs = [Codec::Pcma, Codec::Pcmu, Codec::Pcma];
        let freqs = [500.0, 1000.0, 1500.0];
        let mut inputs = [[0u8; FRAME_SAMPLES]; 3];
        for ((codes, codec), f) in inputs.iter_mut().zip(codecs).zip(freqs) {
            codec.encode(&tone(f, 6000.0), codes);
        }
        let mut out = [[0u8; FRAME_SAMPLES]; 3];
        mix_coded(&codecs, &inputs, &mut out);
        for (i, (codes, codec)) in out.iter().zip(codecs).enumerate() {
            let mut pcm = [0i16; FRAME_SAMPLES];
            codec.decode(codes, &mut pcm);
            for (j, f) in freqs.into_iter().enumerate() {
                let a = amplitude(&pcm, f);
                if i == j {
                    assert!(a < 150.0, "party {i} hears its own {f} Hz at {a:.0}");
                } else {
                    assert!(
                        (a - 6000.0).abs() < 300.0,
                        "party {i} hears {f} Hz at {a:.0}"
                    );
                }
            }
        }
        // Silence in, silence out, in each law's own silence code.
        let silent = codecs.map(|c| [c.silence_byte(); FRAME_SAMPLES]);
        mix_coded(&codecs, &silent, &mut out);
        for (codes, codec) in out.iter().zip(codecs) {
            let mut pcm = [0i16; FRAME_SAMPLES];
            codec.decode(codes, &mut pcm);
            assert!(pcm.iter().all(|s| s.abs() <= 16), "{codec:?}: {pcm:?}");
        }
    }

    #[test]
    fn a_party_gives_silence_when_nothing_came_and_sends_each_mix_once() {
        let mut party = Party::new();
        let mut frame = [7i16; FRAME_SAMPLES];
        assert!(!party.take_received(&mut frame));
        assert_eq!(frame, [0; FRAME_SAMPLES]);
        party.push_received(&[500; 100]);
        assert!(!party.take_received(&mut frame), "not a whole frame yet");
        party.push_received(&[500; 100]);
        assert!(party.take_received(&mut frame));
        assert_eq!(frame, [500; FRAME_SAMPLES]);
        // A burst beyond the bound keeps only the newest 60 ms.
        party.push_received(&[1; 10 * FRAME_SAMPLES]);
        let mut frames = 0;
        while party.take_received(&mut frame) {
            frames += 1;
        }
        assert_eq!(frames * FRAME_SAMPLES, CAPTURE_SAMPLES);

        let mut out = [0u8; FRAME_SAMPLES];
        assert!(!party.pop_mix_encoded(Codec::Pcmu, &mut out));
        party.set_mix(&[-2000; FRAME_SAMPLES]);
        party.set_mix(&[3000; FRAME_SAMPLES]);
        assert!(party.pop_mix_encoded(Codec::Pcmu, &mut out));
        assert_eq!(
            out,
            [Codec::Pcmu.encode_sample(3000); FRAME_SAMPLES],
            "newest wins"
        );
        assert!(!party.pop_mix_encoded(Codec::Pcmu, &mut out), "sent once");
    }
}
