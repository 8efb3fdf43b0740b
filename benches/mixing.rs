//! Conference mixing cost per three-party conference per 20 ms frame: decode three G.711 frames
//! (PCMA, PCMU, PCMA), mix each party's "everyone but me", encode three frames, as the media
//! plane does per conference and cycle; plus the linear mix alone.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::media::codec::Codec;
use hotline::media::mixer::{mix_coded, mix_others, Frame};

const FRAME: usize = 160;

/// A speech-like frame: two tones plus a little deterministic noise, covering all segments.
fn frame(f1: f64, f2: f64, seed: u32) -> Frame {
    let mut out = [0i16; FRAME];
    let mut s = seed | 1;
    for (n, o) in out.iter_mut().enumerate() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let t = n as f64 / 8000.0;
        let v = 9000.0 * (2.0 * std::f64::consts::PI * f1 * t).sin()
            + 5000.0 * (2.0 * std::f64::consts::PI * f2 * t).sin()
            + f64::from(s % 2001)
            - 1000.0;
        *o = v as i16;
    }
    out
}

fn bench(c: &mut Criterion) {
    let codecs = [Codec::Pcma, Codec::Pcmu, Codec::Pcma];
    let pcm = [
        frame(440.0, 1330.0, 0x1234_5678),
        frame(520.0, 1710.0, 0x9E37_79B9),
        frame(610.0, 2210.0, 0x7F4A_7C15),
    ];
    let mut coded = [[0u8; FRAME]; 3];
    for ((codes, codec), x) in coded.iter_mut().zip(codecs).zip(&pcm) {
        codec.encode(x, codes);
    }
    let mut out = [[0u8; FRAME]; 3];
    let mut mixes = [[0i16; FRAME]; 3];

    let mut g = c.benchmark_group("conference_20ms_frame");
    // One element = one three-party conference's 20 ms frame.
    g.throughput(Throughput::Elements(1));
    g.bench_function("three_parties_decode_mix_encode", |b| {
        b.iter(|| mix_coded(black_box(&codecs), black_box(&coded), black_box(&mut out)))
    });
    g.bench_function("three_parties_mix_only", |b| {
        b.iter(|| mix_others(black_box(&pcm), black_box(&mut mixes)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
