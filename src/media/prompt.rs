//! Voice prompts: WAV files loaded once, resampled to 8 kHz and pre-encoded to both G.711 laws,
//! then served as ready-made 20 ms RTP payloads.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::codec::Codec;

/// Samples per 20 ms frame at 8 kHz (= bytes per G.711 frame).
pub const FRAME_SAMPLES: usize = 160;

/// Sampling rate of prompts after loading.
pub const PROMPT_RATE: u32 = 8000;

/// Upper bound on the up-front sample allocation taken from a WAV header (60 s at 16 kHz).
const MAX_PREALLOC_SAMPLES: usize = 16_000 * 60;

/// The WAV formats accepted, as shown in error messages.
pub const EXPECTED_FORMAT: &str = "mono, 16-bit integer PCM, 8000 or 16000 Hz";

/// Why a prompt (or a prompt directory) could not be loaded. Every variant names the file.
#[derive(Debug, Error)]
pub enum PromptError {
    /// The prompt directory could not be listed.
    #[error("cannot read prompt directory {}: {source}", .path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file could not be opened or is not a WAV file hound can parse.
    #[error("prompt {}: cannot read WAV file: {source} (expected {EXPECTED_FORMAT})", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: hound::Error,
    },
    /// A valid WAV file in a format prompts do not use.
    #[error("prompt {}: unsupported WAV format: found {found}; expected {EXPECTED_FORMAT}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Description of the format found, e.g. "2 channels, 44100 Hz, 16-bit integer PCM".
        found: String,
    },
    /// The sample data is truncated or corrupt.
    #[error("prompt {}: corrupt sample data: {source}", .path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: hound::Error,
    },
    /// The file holds no samples.
    #[error("prompt {}: contains no audio", .path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file name does not give a usable prompt name (not UTF-8 or empty).
    #[error("prompt {}: file name is not a valid UTF-8 prompt name", .path.display())]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// Two files map to the same prompt name (e.g. `a.wav` and `a.WAV`).
    #[error("prompt {}: duplicate prompt name {name:?}", .path.display())]
    Duplicate {
        /// The second file with that name.
        path: PathBuf,
        /// The prompt name.
        name: String,
    },
}

/// A loaded prompt: 8 kHz linear PCM plus its A-law and µ-law encodings.
///
/// `pcma` and `pcmu` are padded with codec silence to a whole number of 160-byte frames;
/// `pcm` is not padded (its length is `samples`).
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Prompt name (the file stem, e.g. `greeting`).
    pub name: String,
    /// A-law encoding, padded to whole frames with 0xD5.
    pub pcma: Vec<u8>,
    /// µ-law encoding, padded to whole frames with 0xFF.
    pub pcmu: Vec<u8>,
    /// 8 kHz 16-bit linear PCM.
    pub pcm: Vec<i16>,
    /// Number of 8 kHz samples of audio (before padding).
    pub samples: usize,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .field("samples", &self.samples)
            .field("frames", &self.frame_count())
            .finish_non_exhaustive()
    }
}

impl Prompt {
    /// Builds a prompt from 8 kHz linear PCM, encoding it to both laws.
    pub fn from_pcm(name: impl Into<String>, pcm: Vec<i16>) -> Prompt {
        let samples = pcm.len();
        let padded = samples.div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
        let encode = |codec: Codec| {
            let mut out = vec![codec.silence_byte(); padded];
            codec.encode(&pcm, &mut out);
            out
        };
        Prompt {
            name: name.into(),
            pcma: encode(Codec::Pcma),
            pcmu: encode(Codec::Pcmu),
            pcm,
            samples,
        }
    }

    /// Loads a WAV file; the prompt name is the file stem.
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PromptError::BadName {
                path: path.to_path_buf(),
            })?;
        let reader = hound::WavReader::open(path).map_err(|source| PromptError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_wav_reader(name, reader, path)
    }

    /// Loads a prompt from any WAV byte stream; `path` is only used in error messages.
    pub fn from_wav<R: Read>(name: &str, input: R, path: &Path) -> Result<Prompt, PromptError> {
        let reader = hound::WavReader::new(input).map_err(|source| PromptError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_wav_reader(name, reader, path)
    }

    fn from_wav_reader<R: Read>(
        name: &str,
        mut reader: hound::WavReader<R>,
        path: &Path,
    ) -> Result<Prompt, PromptError> {
        let spec = reader.spec();
        let supported = spec.channels == 1
            && spec.bits_per_sample == 16
            && spec.sample_format == hound::SampleFormat::Int
            && (spec.sample_rate == 8000 || spec.sample_rate == 16000);
        if !supported {
            return Err(PromptError::Format {
                path: path.to_path_buf(),
                found: describe_spec(&spec),
            });
        }
        // The header's sample count only sizes the first allocation, capped so a corrupt
        // header cannot request gigabytes; the vector still grows to the real length.
        let mut pcm = Vec::with_capacity((reader.len() as usize).min(MAX_PREALLOC_SAMPLES));
        for s in reader.samples::<i16>() {
            pcm.push(s.map_err(|source| PromptError::Data {
                path: path.to_path_buf(),
                source,
            })?);
        }
        if pcm.is_empty() {
            return Err(PromptError::Empty {
                path: path.to_path_buf(),
            });
        }
        if spec.sample_rate == 16000 {
            pcm = downsample_16k_to_8k(&pcm);
        }
        Ok(Prompt::from_pcm(name, pcm))
    }

    /// The whole encoded prompt (padded to whole frames) for a codec.
    pub fn encoded(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Pcma => &self.pcma,
            Codec::Pcmu => &self.pcmu,
        }
    }

    /// The `index`-th 160-byte (20 ms) payload for `codec`, or `None` past the end.
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(FRAME_SAMPLES)?;
        self.encoded(codec)
            .get(start..start.checked_add(FRAME_SAMPLES)?)
    }

    /// Number of 20 ms frames (the last one may be padded).
    pub fn frame_count(&self) -> usize {
        self.samples.div_ceil(FRAME_SAMPLES)
    }

    /// Playing time of the audio (without padding).
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples as f64 / f64::from(PROMPT_RATE))
    }
}

fn describe_spec(spec: &hound::WavSpec) -> String {
    let channels = match spec.channels {
        1 => "mono".to_string(),
        2 => "stereo".to_string(),
        n => format!("{n} channels"),
    };
    let format = match spec.sample_format {
        hound::SampleFormat::Int => "integer PCM",
        hound::SampleFormat::Float => "floating-point",
    };
    format!(
        "{channels}, {}-bit {format}, {} Hz",
        spec.bits_per_sample, spec.sample_rate
    )
}

/// Taps of the half-band anti-aliasing filter used for 16 → 8 kHz (odd).
const HALFBAND_TAPS: usize = 79;

/// Kaiser-windowed half-band low-pass (cut-off 4 kHz at 16 kHz, β = 8: ~80 dB stop-band,
/// pass-band to ~3.5 kHz, stop-band from ~4.5 kHz), normalised to unity DC gain.
fn halfband_coefficients() -> [f64; HALFBAND_TAPS] {
    fn bessel_i0(x: f64) -> f64 {
        let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
        while term > 1e-12 * sum {
            term *= (x / (2.0 * k)).powi(2);
            sum += term;
            k += 1.0;
        }
        sum
    }
    const BETA: f64 = 8.0;
    let m = (HALFBAND_TAPS / 2) as f64;
    let mut h = [0.0; HALFBAND_TAPS];
    for (n, c) in h.iter_mut().enumerate() {
        let k = n as f64 - m;
        let ideal = if k == 0.0 {
            0.5
        } else {
            (std::f64::consts::FRAC_PI_2 * k).sin() / (std::f64::consts::PI * k)
        };
        let r = k / m;
        *c = ideal * bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(BETA);
    }
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|c| *c /= sum);
    h
}

/// Low-pass filters 16 kHz PCM with a half-band FIR and keeps every other sample
/// (zero-phase: output sample `m` is centred on input sample `2m`).
pub fn downsample_16k_to_8k(input: &[i16]) -> Vec<i16> {
    let h = halfband_coefficients();
    let m = HALFBAND_TAPS / 2;
    let len = input.len();
    (0..len.div_ceil(2))
        .map(|j| {
            let centre = 2 * j;
            let acc: f64 = h
                .iter()
                .enumerate()
                .filter(|(_, c)| **c != 0.0)
                .filter_map(|(k, c)| {
                    (centre + k)
                        .checked_sub(m)
                        .and_then(|i| input.get(i))
                        .map(|&x| c * f64::from(x))
                })
                .sum();
            acc.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        })
        .collect()
}

/// All prompts of a deployment, by name; cheap to share (`Arc` per prompt).
#[derive(Debug, Default, Clone)]
pub struct PromptStore {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl PromptStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every `*.wav` (any case) in `dir`, named by file stem; collects every error.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<PromptStore, Vec<PromptError>> {
        let dir = dir.as_ref();
        let entries = std::fs::read_dir(dir).map_err(|source| {
            vec![PromptError::ReadDir {
                path: dir.to_path_buf(),
                source,
            }]
        })?;
        let mut errors = Vec::new();
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => {
                    let path = e.path();
                    let is_wav = path
                        .extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("wav"));
                    if is_wav && path.is_file() {
                        paths.push(path);
                    }
                }
                Err(source) => errors.push(PromptError::ReadDir {
                    path: dir.to_path_buf(),
                    source,
                }),
            }
        }
        paths.sort();
        let mut store = PromptStore::new();
        for path in paths {
            match Prompt::load(&path) {
                Ok(p) if store.prompts.contains_key(&p.name) => {
                    errors.push(PromptError::Duplicate { path, name: p.name })
                }
                Ok(p) => store.insert(p),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(store)
        } else {
            Err(errors)
        }
    }

    /// Adds (or replaces) a prompt under its name.
    pub fn insert(&mut self, prompt: Prompt) {
        self.prompts.insert(prompt.name.clone(), Arc::new(prompt));
    }

    /// The prompt called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        self.prompts.get(name).cloned()
    }

    /// The names from `required` that are not in the store (for start-up checks).
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required
            .iter()
            .copied()
            .filter(|n| !self.prompts.contains_key(*n))
            .collect()
    }

    /// All prompt names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.prompts.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// True if no prompt is loaded.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711;
    use std::f64::consts::PI;
    use std::io::Cursor;

    fn wav_bytes(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut cur = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        cur.into_inner()
    }

    fn spec(channels: u16, rate: u32, bits: u16, fmt: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: fmt,
        }
    }

    fn sine(freq: f64, rate: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * PI * freq * i as f64 / rate).sin()).round() as i16)
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn frames_and_padding() {
        let pcm: Vec<i16> = (0..350).map(|i| (i * 50) as i16).collect();
        let p = Prompt::from_pcm("x", pcm.clone());
        assert_eq!(p.samples, 350);
        assert_eq!(p.frame_count(), 3);
        assert_eq!(p.pcma.len(), 480);
        assert_eq!(p.pcmu.len(), 480);
        assert_eq!(p.pcm, pcm);
        let last = p.frame(Codec::Pcma, 2).unwrap();
        assert_eq!(last.len(), 160);
        assert_eq!(last[29], g711::alaw_encode(pcm[349]));
        assert!(last[30..].iter().all(|&b| b == 0xD5));
        assert!(p.frame(Codec::Pcmu, 2).unwrap()[30..]
            .iter()
            .all(|&b| b == 0xFF));
        assert_eq!(
            p.frame(Codec::Pcmu, 0).unwrap()[5],
            g711::ulaw_encode(pcm[5])
        );
        assert_eq!(p.frame(Codec::Pcma, 3), None);
        assert_eq!(p.frame(Codec::Pcma, usize::MAX), None);
        assert_eq!(p.duration(), Duration::from_secs_f64(350.0 / 8000.0));

        let exact = Prompt::from_pcm("y", vec![0; 320]);
        assert_eq!(exact.frame_count(), 2);
        assert_eq!(exact.pcma.len(), 320);
    }

    #[test]
    fn loads_8k() {
        let pcm = sine(440.0, 8000.0, 8000.0, 1000);
        let bytes = wav_bytes(spec(1, 8000, 16, hound::SampleFormat::Int), |w| {
            pcm.iter().for_each(|&s| w.write_sample(s).unwrap())
        });
        let p = Prompt::from_wav("a", Cursor::new(bytes), Path::new("a.wav")).unwrap();
        assert_eq!(p.pcm, pcm);
        assert_eq!(p.name, "a");
    }

    #[test]
    fn loads_16k_with_lowpass() {
        // 1 kHz passes at unity gain; 3 kHz within 0.5 dB; 6 kHz (would alias to 2 kHz) and
        // 5 kHz (→ 3 kHz) are removed.
        for (freq, lo, hi) in [
            (1000.0, 0.99, 1.01),
            (3000.0, 0.94, 1.06),
            (5000.0, 0.0, 0.003),
            (6000.0, 0.0, 0.001),
        ] {
            let pcm16 = sine(freq, 16000.0, 10000.0, 16000);
            let bytes = wav_bytes(spec(1, 16000, 16, hound::SampleFormat::Int), |w| {
                pcm16.iter().for_each(|&s| w.write_sample(s).unwrap())
            });
            let p = Prompt::from_wav("b", Cursor::new(bytes), Path::new("b.wav")).unwrap();
            assert_eq!(p.samples, 8000);
            // Skip filter edges.
            let gain = rms(&p.pcm[100..7900]) / rms(&pcm16[200..15800]);
            assert!(gain >= lo && gain <= hi, "{freq} Hz: gain {gain}");
        }
        // Phase: zero delay, samples line up with the even input samples.
        let pcm16 = sine(500.0, 16000.0, 10000.0, 4000);
        let out = downsample_16k_to_8k(&pcm16);
        assert_eq!(out.len(), 2000);
        for j in 100..1900 {
            assert!((i32::from(out[j]) - i32::from(pcm16[2 * j])).abs() < 30);
        }
        assert_eq!(downsample_16k_to_8k(&[1000]).len(), 1);
        assert!(downsample_16k_to_8k(&[]).is_empty());
        // Full-scale square wave must not overflow.
        let sq: Vec<i16> = (0..400)
            .map(|i| if (i / 8) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let _ = downsample_16k_to_8k(&sq);
    }

    #[test]
    fn rejects_other_formats_with_clear_message() {
        let cases = [
            (
                spec(2, 8000, 16, hound::SampleFormat::Int),
                "stereo, 16-bit integer PCM, 8000 Hz",
            ),
            (
                spec(1, 44100, 16, hound::SampleFormat::Int),
                "mono, 16-bit integer PCM, 44100 Hz",
            ),
            (
                spec(1, 8000, 8, hound::SampleFormat::Int),
                "mono, 8-bit integer PCM, 8000 Hz",
            ),
            (
                spec(1, 8000, 32, hound::SampleFormat::Float),
                "mono, 32-bit floating-point, 8000 Hz",
            ),
        ];
        for (sp, found) in cases {
            let bytes = wav_bytes(sp, |w| match sp.sample_format {
                hound::SampleFormat::Float => w.write_sample(0.5f32).unwrap(),
                hound::SampleFormat::Int if sp.bits_per_sample == 8 => w.write_sample(1i8).unwrap(),
                hound::SampleFormat::Int => {
                    for _ in 0..sp.channels {
                        w.write_sample(1i16).unwrap()
                    }
                }
            });
            let err =
                Prompt::from_wav("z", Cursor::new(bytes), Path::new("/p/zz.wav")).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, PromptError::Format { .. }), "{msg}");
            assert!(msg.contains("/p/zz.wav"), "{msg}");
            assert!(msg.contains(found), "{msg}");
            assert!(msg.contains(EXPECTED_FORMAT), "{msg}");
        }
    }

    #[test]
    fn rejects_garbage_truncated_and_empty() {
        let err = Prompt::from_wav(
            "g",
            Cursor::new(b"not a wav file".to_vec()),
            Path::new("g.wav"),
        )
        .unwrap_err();
        assert!(matches!(err, PromptError::Open { .. }));
        assert!(err.to_string().contains("g.wav"));

        let mut bytes = wav_bytes(spec(1, 8000, 16, hound::SampleFormat::Int), |w| {
            (0..100).for_each(|i| w.write_sample(i as i16).unwrap())
        });
        bytes.truncate(bytes.len() - 51);
        // Either hound notices at open or while reading samples; it must be an error, not a panic.
        assert!(Prompt::from_wav("t", Cursor::new(bytes), Path::new("t.wav")).is_err());

        let empty = wav_bytes(spec(1, 8000, 16, hound::SampleFormat::Int), |_| {});
        let err = Prompt::from_wav("e", Cursor::new(empty), Path::new("e.wav")).unwrap_err();
        assert!(matches!(err, PromptError::Empty { .. }));
    }

    #[test]
    fn store_load_dir_collects_all_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = sine(300.0, 8000.0, 5000.0, 800);
        let write = |name: &str, sp: hound::WavSpec, n: usize| {
            let mut w = hound::WavWriter::create(dir.path().join(name), sp).unwrap();
            for i in 0..n * usize::from(sp.channels) {
                w.write_sample(good[i % good.len()]).unwrap();
            }
            w.finalize().unwrap();
        };
        write("ok.wav", spec(1, 8000, 16, hound::SampleFormat::Int), 800);
        write(
            "wide.WAV",
            spec(1, 16000, 16, hound::SampleFormat::Int),
            1600,
        );
        write(
            "stereo.wav",
            spec(2, 8000, 16, hound::SampleFormat::Int),
            100,
        );
        write("cd.wav", spec(1, 44100, 16, hound::SampleFormat::Int), 100);
        std::fs::write(dir.path().join("junk.wav"), b"RIFF....").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();

        let errs = PromptStore::load_dir(dir.path()).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{msgs:#?}");
        for f in ["stereo.wav", "cd.wav", "junk.wav"] {
            assert!(
                msgs.iter().any(|m| m.contains(f)),
                "{f} missing in {msgs:#?}"
            );
        }

        for f in ["stereo.wav", "cd.wav", "junk.wav"] {
            std::fs::remove_file(dir.path().join(f)).unwrap();
        }
        let store = PromptStore::load_dir(dir.path()).unwrap();
        assert_eq!(store.names(), vec!["ok", "wide"]);
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("ok").unwrap().samples, 800);
        assert_eq!(store.get("wide").unwrap().samples, 800);
        assert!(store.get("nope").is_none());
        assert_eq!(store.missing(&["ok", "nope", "wide"]), vec!["nope"]);

        // Same stem twice.
        write("ok.WAV", spec(1, 8000, 16, hound::SampleFormat::Int), 10);
        let errs = PromptStore::load_dir(dir.path()).unwrap_err();
        assert!(matches!(&errs[..], [PromptError::Duplicate { name, .. }] if name == "ok"));

        let errs = PromptStore::load_dir(dir.path().join("absent")).unwrap_err();
        assert!(matches!(&errs[..], [PromptError::ReadDir { .. }]));
    }
}
