//! G.711 cost per 20 ms frame (160 samples): encode to A-law/µ-law and decode back.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::media::g711;

const FRAME: usize = 160;

/// A speech-like test frame: two tones plus a little deterministic noise, covering all segments.
fn frame() -> [i16; FRAME] {
    let mut out = [0i16; FRAME];
    let mut s: u32 = 0x1234_5678;
    for (n, o) in out.iter_mut().enumerate() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let t = n as f64 / 8000.0;
        let v = 12000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
            + 6000.0 * (2.0 * std::f64::consts::PI * 1330.0 * t).sin()
            + f64::from(s % 2001)
            - 1000.0;
        *o = v as i16;
    }
    out
}

fn bench(c: &mut Criterion) {
    let pcm = frame();
    let mut codes = [0u8; FRAME];
    let mut back = [0i16; FRAME];
    let mut g = c.benchmark_group("g711_20ms_frame");
    g.throughput(Throughput::Elements(FRAME as u64));

    g.bench_function("encode_alaw", |b| {
        b.iter(|| g711::encode_alaw(black_box(&pcm), black_box(&mut codes)))
    });
    g.bench_function("encode_ulaw", |b| {
        b.iter(|| g711::encode_ulaw(black_box(&pcm), black_box(&mut codes)))
    });

    g711::encode_alaw(&pcm, &mut codes);
    g.bench_function("decode_alaw", |b| {
        b.iter(|| g711::decode_alaw(black_box(&codes), black_box(&mut back)))
    });
    g711::encode_ulaw(&pcm, &mut codes);
    g.bench_function("decode_ulaw", |b| {
        b.iter(|| g711::decode_ulaw(black_box(&codes), black_box(&mut back)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
