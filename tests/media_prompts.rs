//! The shipped prompts load, are plausible speech, and bad prompt files are reported by name.

use std::path::Path;
use std::time::Duration;

use hotline::media::codec::Codec;
use hotline::media::prompt::{PromptError, PromptStore, FRAME_SAMPLES};

const EXPECTED: &[&str] = &[
    "greeting",
    "you-pressed",
    "digit-0",
    "digit-1",
    "digit-2",
    "digit-3",
    "digit-4",
    "digit-5",
    "digit-6",
    "digit-7",
    "digit-8",
    "digit-9",
    "digit-star",
    "digit-pound",
    "thanks-goodbye",
    "no-input",
];

fn prompts_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[test]
fn shipped_prompts_load_and_are_speech() {
    let store = match PromptStore::load_dir(prompts_dir()) {
        Ok(s) => s,
        Err(errs) => panic!(
            "prompt errors:\n{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert_eq!(store.missing(EXPECTED), Vec::<&str>::new());
    for name in EXPECTED {
        let p = store.get(name).unwrap();
        assert_eq!(&p.name, name);
        let d = p.duration();
        assert!(
            d >= Duration::from_millis(300) && d <= Duration::from_secs(15),
            "{name}: duration {d:?}"
        );
        assert_eq!(p.pcm.len(), p.samples);
        // Speech, not silence: RMS above -40 dBFS (speech here is around -20 dBFS).
        let level = rms(&p.pcm);
        assert!(level > 330.0, "{name}: RMS {level:.0} is near silence");

        // Frames cover the whole prompt and decode back to (roughly) the linear PCM.
        assert_eq!(p.frame_count(), p.samples.div_ceil(FRAME_SAMPLES));
        for codec in [Codec::Pcma, Codec::Pcmu] {
            assert!(p.frame(codec, p.frame_count()).is_none());
            let mut decoded = Vec::with_capacity(p.frame_count() * FRAME_SAMPLES);
            let mut buf = [0i16; FRAME_SAMPLES];
            for i in 0..p.frame_count() {
                let f = p.frame(codec, i).unwrap();
                assert_eq!(f.len(), FRAME_SAMPLES);
                codec.decode(f, &mut buf);
                decoded.extend_from_slice(&buf);
            }
            let err: Vec<i16> = p
                .pcm
                .iter()
                .zip(&decoded)
                .map(|(&a, &b)| a.saturating_sub(b))
                .collect();
            let snr = 20.0 * (level / rms(&err).max(1.0)).log10();
            assert!(snr > 25.0, "{name} {codec:?}: SNR {snr:.1} dB");
            // Padding is codec silence.
            let pad = p.frame_count() * FRAME_SAMPLES - p.samples;
            let last = p.frame(codec, p.frame_count() - 1).unwrap();
            assert!(last[FRAME_SAMPLES - pad..]
                .iter()
                .all(|&b| b == codec.silence_byte()));
        }
    }
}

#[test]
fn bad_wav_is_reported_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, channels: u16, rate: u32| {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.path().join(name), spec).unwrap();
        for i in 0..4000u32 * u32::from(channels) {
            w.write_sample(((i * 37) % 2000) as i16 - 1000).unwrap();
        }
        w.finalize().unwrap();
    };
    write("fine.wav", 1, 8000);
    write("stereo-prompt.wav", 2, 8000);
    write("cd-rate.wav", 1, 44100);

    let errs = PromptStore::load_dir(dir.path()).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let stereo = msgs
        .iter()
        .find(|m| m.contains("stereo-prompt.wav"))
        .unwrap_or_else(|| panic!("no error names stereo-prompt.wav: {msgs:?}"));
    assert!(
        stereo.contains("stereo") && stereo.contains("expected mono"),
        "{stereo}"
    );
    let cd = msgs
        .iter()
        .find(|m| m.contains("cd-rate.wav"))
        .unwrap_or_else(|| panic!("no error names cd-rate.wav: {msgs:?}"));
    assert!(
        cd.contains("44100 Hz") && cd.contains("8000 or 16000 Hz"),
        "{cd}"
    );
    assert!(errs.iter().all(|e| matches!(e, PromptError::Format { .. })));
}
