//! In-band DTMF detection (Goertzel) for 8 kHz 16-bit linear PCM, for trunks that send key
//! presses as audio instead of RFC 4733 events.
//!
//! The signal is cut into blocks of [`BLOCK_SAMPLES`] (102 samples, 12.75 ms); the eight DTMF
//! frequencies are measured with streaming Goertzel filters, so frames of any length (normally
//! 160 samples) can be fed and no sample buffer is needed. A block is a *strong hit* for a key
//! when:
//!
//! * the strongest row and column tones both exceed an absolute level;
//! * each is at least `relative_peak_db` above the other tones of its group;
//! * the twist (level difference between the two tones) is within limits;
//! * the two tones carry at least `min_tone_fraction` of the block's total energy (rejects
//!   speech, music and noise, whose energy is spread over many frequencies).
//!
//! A block only partly covered by a tone (its start or end) has a wider spectrum, so it is
//! judged with relaxed peak and energy-fraction limits: a *weak hit*.
//!
//! A press begins when a run of `blocks_to_begin` consecutive hits of the same key (default 3
//! blocks, 38 ms) contains at least `strong_blocks_to_begin` strong hits (default 2): tones of
//! 40 ms or longer are always accepted, tones shorter than 25 ms never. It is reported once,
//! at that moment, and ends after `misses_to_end` blocks without that key (a pause), after
//! which the same key can be reported again.

/// Goertzel block length in samples (12.75 ms at 8 kHz).
pub const BLOCK_SAMPLES: usize = 102;

/// Sampling rate the detector is tuned for.
pub const SAMPLE_RATE: f32 = 8000.0;

/// Low-group (row) frequencies in Hz.
pub const ROW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];

/// High-group (column) frequencies in Hz.
pub const COL_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The (row, column) frequencies in Hz of a DTMF key, e.g. `'5'` → (770, 1336).
pub fn key_frequencies(key: char) -> Option<(f32, f32)> {
    let key = key.to_ascii_uppercase();
    KEYS.iter().enumerate().find_map(|(r, row)| {
        row.iter()
            .position(|&k| k == key)
            .map(|c| (ROW_FREQS[r], COL_FREQS[c]))
    })
}

/// Detection thresholds; [`Default`] gives values suited to G.711 trunks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DtmfToneConfig {
    /// Minimum peak amplitude of each tone in 16-bit units (default 400 ≈ -35 dBm0).
    pub min_tone_amplitude: f32,
    /// Normal twist: how far the high-group tone may be *below* the low-group tone, in dB.
    pub normal_twist_db: f32,
    /// Reverse twist: how far the high-group tone may be *above* the low-group tone, in dB.
    pub reverse_twist_db: f32,
    /// How far the strongest tone of each group must exceed the others of its group, in dB.
    pub relative_peak_db: f32,
    /// Fraction of the block energy that the two tones must carry (0..1).
    pub min_tone_fraction: f32,
    /// Relaxed `relative_peak_db` for weak hits (blocks partly covered by the tone).
    pub weak_relative_peak_db: f32,
    /// Relaxed `min_tone_fraction` for weak hits.
    pub weak_min_tone_fraction: f32,
    /// Consecutive (strong or weak) hit blocks of one key needed before a press is reported.
    pub blocks_to_begin: u8,
    /// How many of those blocks must be strong hits.
    pub strong_blocks_to_begin: u8,
    /// Consecutive non-hit blocks that end a press.
    pub misses_to_end: u8,
}

impl Default for DtmfToneConfig {
    fn default() -> Self {
        DtmfToneConfig {
            min_tone_amplitude: 400.0,
            normal_twist_db: 8.0,
            reverse_twist_db: 4.0,
            relative_peak_db: 8.0,
            min_tone_fraction: 0.75,
            weak_relative_peak_db: 3.0,
            weak_min_tone_fraction: 0.25,
            blocks_to_begin: 3,
            strong_blocks_to_begin: 2,
            misses_to_end: 2,
        }
    }
}

/// Streaming in-band DTMF detector for one direction of one call (no allocation).
#[derive(Debug, Clone)]
pub struct DtmfToneDetector {
    coef: [f32; 8],
    s1: [f32; 8],
    s2: [f32; 8],
    energy: f32,
    n: usize,
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    min_fraction: f32,
    weak_relative_peak: f32,
    weak_min_fraction: f32,
    blocks_to_begin: u8,
    strong_to_begin: u8,
    misses_to_end: u8,
    /// Key of the current run of consecutive hit blocks, its length and its strong hits.
    candidate: Option<char>,
    hits: u8,
    strong_hits: u8,
    /// Key currently held down (already reported) and consecutive blocks without it.
    current: Option<char>,
    misses: u8,
}

impl Default for DtmfToneDetector {
    fn default() -> Self {
        Self::new()
    }
}

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

impl DtmfToneDetector {
    /// A detector with the default thresholds.
    pub fn new() -> Self {
        Self::with_config(DtmfToneConfig::default())
    }

    /// A detector with custom thresholds.
    pub fn with_config(cfg: DtmfToneConfig) -> Self {
        let mut coef = [0f32; 8];
        for (c, f) in coef
            .iter_mut()
            .zip(ROW_FREQS.iter().chain(COL_FREQS.iter()))
        {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE).cos();
        }
        // A full-block sine of amplitude A gives a Goertzel power of (A·N/2)².
        let half_n = BLOCK_SAMPLES as f32 / 2.0;
        DtmfToneDetector {
            coef,
            s1: [0.0; 8],
            s2: [0.0; 8],
            energy: 0.0,
            n: 0,
            min_power: (cfg.min_tone_amplitude * half_n).powi(2),
            normal_twist: db_to_power_ratio(cfg.normal_twist_db),
            reverse_twist: db_to_power_ratio(cfg.reverse_twist_db),
            relative_peak: db_to_power_ratio(cfg.relative_peak_db),
            min_fraction: cfg.min_tone_fraction,
            weak_relative_peak: db_to_power_ratio(cfg.weak_relative_peak_db),
            weak_min_fraction: cfg.weak_min_tone_fraction,
            blocks_to_begin: cfg.blocks_to_begin.max(1),
            strong_to_begin: cfg.strong_blocks_to_begin.min(cfg.blocks_to_begin),
            misses_to_end: cfg.misses_to_end.max(1),
            candidate: None,
            hits: 0,
            strong_hits: 0,
            current: None,
            misses: 0,
        }
    }

    /// Clears all state (filters and press tracking), keeping the configuration.
    pub fn reset(&mut self) {
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.n = 0;
        self.candidate = None;
        self.hits = 0;
        self.strong_hits = 0;
        self.current = None;
        self.misses = 0;
    }

    /// The key currently held down (reported and not yet released), if any.
    pub fn current(&self) -> Option<char> {
        self.current
    }

    /// Feeds samples; returns the first key press that began in them.
    ///
    /// With 20 ms frames (or any frame up to 306 samples) at most one press can begin per call;
    /// use [`DtmfToneDetector::process_with`] for longer buffers.
    pub fn process(&mut self, samples: &[i16]) -> Option<char> {
        let mut first = None;
        self.process_with(samples, |k| {
            first.get_or_insert(k);
        });
        first
    }

    /// Feeds samples, calling `on_press` once for every key press that begins in them.
    pub fn process_with(&mut self, samples: &[i16], mut on_press: impl FnMut(char)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK_SAMPLES - self.n).min(rest.len());
            let (chunk, tail) = rest.split_at(take);
            rest = tail;
            self.feed(chunk);
            if self.n == BLOCK_SAMPLES {
                let hit = self.evaluate_block();
                if let Some(k) = self.track(hit) {
                    on_press(k);
                }
            }
        }
    }

    #[inline]
    fn feed(&mut self, chunk: &[i16]) {
        let (mut s1, mut s2, coef) = (self.s1, self.s2, self.coef);
        let mut energy = self.energy;
        for &x in chunk {
            let x = f32::from(x);
            for k in 0..8 {
                let s0 = x + coef[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
            energy += x * x;
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy = energy;
        self.n += chunk.len();
    }

    /// Computes the block result (key, strong?) and resets the filters for the next block.
    fn evaluate_block(&mut self) -> Option<(char, bool)> {
        let mut power = [0f32; 8];
        for (k, p) in power.iter_mut().enumerate() {
            let (a, b) = (self.s1[k], self.s2[k]);
            *p = (a * a + b * b - self.coef[k] * a * b).max(0.0);
        }
        let energy = self.energy;
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.n = 0;

        let (rows, cols) = power.split_at(4);
        let (r, row_p) = strongest(rows);
        let (c, col_p) = strongest(cols);
        if row_p < self.min_power || col_p < self.min_power {
            return None;
        }
        // Twist: high group at most `reverse` above and at most `normal` below the low group.
        if col_p > row_p * self.reverse_twist || row_p > col_p * self.normal_twist {
            return None;
        }
        // Ratio of the best tone to the runner-up of its group (power).
        let margin = |group: &[f32], best: usize, p: f32| {
            let second = group
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .fold(0f32, |m, (_, &q)| m.max(q));
            p / second.max(f32::MIN_POSITIVE)
        };
        let peak = margin(rows, r, row_p).min(margin(cols, c, col_p));
        // A sine of amplitude A holds N·A²/2 of block energy and has power (A·N/2)², so the
        // fraction of the energy in the two tones is 2·(P_row + P_col) / (N · E).
        let fraction = 2.0 * (row_p + col_p) / (BLOCK_SAMPLES as f32 * energy);
        let key = KEYS[r][c];
        if peak >= self.relative_peak && fraction >= self.min_fraction {
            Some((key, true))
        } else if peak >= self.weak_relative_peak && fraction >= self.weak_min_fraction {
            Some((key, false))
        } else {
            None
        }
    }

    /// Press tracking; returns the key when a press begins.
    fn track(&mut self, result: Option<(char, bool)>) -> Option<char> {
        let hit = result.map(|(k, _)| k);
        let strong = u8::from(matches!(result, Some((_, true))));
        if let Some(cur) = self.current {
            if hit == Some(cur) {
                self.misses = 0;
            } else {
                self.misses = self.misses.saturating_add(1);
                if self.misses >= self.misses_to_end {
                    self.current = None;
                    self.misses = 0;
                }
            }
        }
        match hit {
            Some(k) if self.candidate == Some(k) => {
                self.hits = self.hits.saturating_add(1);
                self.strong_hits = self.strong_hits.saturating_add(strong);
            }
            _ => {
                self.candidate = hit;
                self.hits = u8::from(hit.is_some());
                self.strong_hits = strong;
            }
        }
        match self.candidate {
            Some(k)
                if self.current.is_none()
                    && self.hits >= self.blocks_to_begin
                    && self.strong_hits >= self.strong_to_begin =>
            {
                self.current = Some(k);
                self.misses = 0;
                Some(k)
            }
            _ => None,
        }
    }
}

/// Index and power of the largest of four powers.
fn strongest(group: &[f32]) -> (usize, f32) {
    group.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711;
    use std::f64::consts::PI;

    const RATE: f64 = 8000.0;

    fn ms(n: u32) -> usize {
        n as usize * 8
    }

    /// Appends `len` samples of a sum of sines (freq, amplitude) to `out`.
    fn tones(out: &mut Vec<i16>, parts: &[(f64, f64)], len: usize) {
        let start = out.len();
        for n in 0..len {
            let t = (start + n) as f64 / RATE;
            let v: f64 = parts
                .iter()
                .map(|&(f, a)| a * (2.0 * PI * f * t + f / 100.0).sin())
                .sum();
            out.push(v.round().clamp(-32768.0, 32767.0) as i16);
        }
    }

    fn silence(out: &mut Vec<i16>, len: usize) {
        out.resize(out.len() + len, 0);
    }

    fn dtmf(out: &mut Vec<i16>, key: char, row_amp: f64, col_amp: f64, len: usize) {
        let (r, c) = key_frequencies(key).unwrap();
        tones(
            out,
            &[(f64::from(r), row_amp), (f64::from(c), col_amp)],
            len,
        );
    }

    fn keys_signal(keys: &str, on: u32, off: u32, amp: f64) -> Vec<i16> {
        let mut s = Vec::new();
        silence(&mut s, ms(off));
        for k in keys.chars() {
            dtmf(&mut s, k, amp, amp, ms(on));
            silence(&mut s, ms(off));
        }
        s
    }

    fn detect_chunked(samples: &[i16], chunk: usize) -> String {
        let mut d = DtmfToneDetector::new();
        let mut out = String::new();
        for frame in samples.chunks(chunk) {
            if let Some(k) = d.process(frame) {
                out.push(k);
            }
        }
        out
    }

    fn detect(samples: &[i16]) -> String {
        detect_chunked(samples, 160)
    }

    struct XorShift(u32);
    impl XorShift {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
        /// Uniform in [-amp, amp].
        fn sample(&mut self, amp: f64) -> f64 {
            (f64::from(self.next()) / f64::from(u32::MAX) * 2.0 - 1.0) * amp
        }
    }

    #[test]
    fn key_frequency_table() {
        assert_eq!(key_frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(key_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(key_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(key_frequencies('x'), None);
    }

    #[test]
    fn each_of_16_keys_once() {
        for k in "0123456789*#ABCD".chars() {
            let s = keys_signal(&k.to_string(), 80, 80, 8000.0);
            assert_eq!(detect(&s), k.to_string(), "key {k}");
        }
    }

    #[test]
    fn sequence_80_on_80_off() {
        let s = keys_signal("1234567890*#", 80, 80, 8000.0);
        assert_eq!(detect(&s), "1234567890*#");
        // Frame size must not matter.
        for chunk in [1, 37, 102, 160, 240, 306] {
            assert_eq!(detect_chunked(&s, chunk), "1234567890*#", "chunk {chunk}");
        }
        let mut d = DtmfToneDetector::new();
        let mut all = String::new();
        d.process_with(&s, |k| all.push(k));
        assert_eq!(all, "1234567890*#");
    }

    #[test]
    fn repeated_same_key() {
        let s = keys_signal("5555", 80, 80, 8000.0);
        assert_eq!(detect(&s), "5555");
    }

    #[test]
    fn long_press_reported_once() {
        let s = keys_signal("9", 2000, 100, 8000.0);
        assert_eq!(detect(&s), "9");
    }

    #[test]
    fn through_g711() {
        let s = keys_signal("1234567890*#ABCD", 80, 80, 8000.0);
        let mut codes = vec![0u8; s.len()];
        let mut back = vec![0i16; s.len()];
        g711::encode_alaw(&s, &mut codes);
        g711::decode_alaw(&codes, &mut back);
        assert_eq!(detect(&back), "1234567890*#ABCD");
        g711::encode_ulaw(&s, &mut codes);
        g711::decode_ulaw(&codes, &mut back);
        assert_eq!(detect(&back), "1234567890*#ABCD");
    }

    #[test]
    fn levels() {
        for amp in [700.0, 2000.0, 8000.0, 16000.0] {
            let s = keys_signal("159#", 80, 80, amp);
            assert_eq!(detect(&s), "159#", "amplitude {amp}");
        }
        // Far below the threshold: nothing.
        assert_eq!(detect(&keys_signal("159#", 80, 80, 100.0)), "");
    }

    #[test]
    fn twist_limits() {
        let one = |row: f64, col: f64| {
            let mut s = Vec::new();
            silence(&mut s, 400);
            dtmf(&mut s, '8', row, col, ms(100));
            silence(&mut s, 400);
            detect(&s)
        };
        assert_eq!(one(8000.0, 5000.0), "8"); // high group 4 dB weaker
        assert_eq!(one(6500.0, 8000.0), "8"); // high group ~2 dB stronger
        assert_eq!(one(8000.0, 1500.0), ""); // high group 14.5 dB weaker
        assert_eq!(one(2000.0, 8000.0), ""); // high group 12 dB stronger
    }

    #[test]
    fn minimum_duration() {
        for offset in (0..BLOCK_SAMPLES).step_by(7) {
            let mut s = Vec::new();
            silence(&mut s, 800 + offset);
            dtmf(&mut s, '3', 8000.0, 8000.0, ms(40));
            silence(&mut s, 800);
            assert_eq!(detect(&s), "3", "40 ms at offset {offset}");

            let mut s = Vec::new();
            silence(&mut s, 800 + offset);
            dtmf(&mut s, '3', 8000.0, 8000.0, ms(25));
            silence(&mut s, 800);
            assert_eq!(detect(&s), "", "25 ms at offset {offset}");
        }
    }

    #[test]
    fn short_gap_does_not_split_press() {
        // A 10 ms dropout inside a tone is not a release.
        let mut s = Vec::new();
        dtmf(&mut s, '6', 8000.0, 8000.0, ms(100));
        silence(&mut s, ms(10));
        dtmf(&mut s, '6', 8000.0, 8000.0, ms(100));
        silence(&mut s, ms(100));
        assert_eq!(detect(&s), "6");
    }

    #[test]
    fn key_change_without_pause() {
        let mut s = Vec::new();
        dtmf(&mut s, '1', 8000.0, 8000.0, ms(100));
        dtmf(&mut s, '2', 8000.0, 8000.0, ms(100));
        silence(&mut s, ms(100));
        assert_eq!(detect(&s), "12");
    }

    #[test]
    fn noisy_tones_detected() {
        let mut rng = XorShift(0x1234_5678);
        let clean = keys_signal("1234567890*#", 80, 80, 4000.0);
        let noisy: Vec<i16> = clean
            .iter()
            .map(|&x| (f64::from(x) + rng.sample(2000.0)).round() as i16)
            .collect();
        assert_eq!(detect(&noisy), "1234567890*#");
    }

    #[test]
    fn single_tones_do_not_trigger() {
        for f in ROW_FREQS.iter().chain(COL_FREQS.iter()) {
            let mut s = Vec::new();
            tones(&mut s, &[(f64::from(*f), 12000.0)], ms(500));
            assert_eq!(detect(&s), "", "{f} Hz");
        }
        let mut s = Vec::new();
        tones(&mut s, &[(1000.0, 16000.0)], ms(1000));
        assert_eq!(detect(&s), "");
    }

    #[test]
    fn non_dtmf_mixes_do_not_trigger() {
        let mixes: &[&[(f64, f64)]] = &[
            &[(440.0, 6000.0), (554.4, 6000.0), (659.3, 6000.0)], // A major chord
            &[(697.0, 8000.0), (1000.0, 8000.0)],                 // row + non-DTMF tone
            &[(941.0, 8000.0), (1100.0, 8000.0)],                 // row + between columns
            &[(650.0, 8000.0), (1209.0, 8000.0)],                 // non-DTMF + column
            &[(697.0, 8000.0), (852.0, 8000.0)],                  // two rows
            &[(1209.0, 8000.0), (1477.0, 8000.0)],                // two columns
            &[(697.0, 8000.0), (1209.0, 8000.0), (1477.0, 8000.0)], // row + two columns
            &[(350.0, 8000.0), (440.0, 8000.0)],                  // dial tone
            &[(480.0, 8000.0), (620.0, 8000.0)],                  // busy tone
            &[(450.0, 12000.0)],                                  // Chinese dial tone
        ];
        for (i, m) in mixes.iter().enumerate() {
            let mut s = Vec::new();
            tones(&mut s, m, ms(600));
            assert_eq!(detect(&s), "", "mix {i}");
        }
    }

    #[test]
    fn white_noise_does_not_trigger() {
        let mut rng = XorShift(0xDEAD_BEEF);
        for amp in [500.0, 4000.0, 16000.0, 32000.0] {
            let s: Vec<i16> = (0..ms(5000))
                .map(|_| rng.sample(amp).round() as i16)
                .collect();
            assert_eq!(detect(&s), "", "noise amplitude {amp}");
        }
    }

    #[test]
    fn speech_like_harmonics_do_not_trigger() {
        // A voiced, vowel-like signal: 25 harmonics of a gliding 90-260 Hz pitch with a formant
        // envelope, plus a little noise. Sweeping the pitch makes harmonics cross DTMF bins.
        let mut rng = XorShift(42);
        let mut s = Vec::with_capacity(ms(6000));
        let mut phase = [0f64; 25];
        for n in 0..ms(6000) {
            let t = n as f64 / RATE;
            let f0 = 175.0 + 85.0 * (2.0 * PI * 0.3 * t).sin();
            let mut v = 0.0;
            for (h, ph) in phase.iter_mut().enumerate() {
                let f = f0 * (h + 1) as f64;
                *ph += 2.0 * PI * f / RATE;
                // Formants near 700 Hz and 1200 Hz.
                let env = 1.0 / (1.0 + ((f - 700.0) / 250.0).powi(2))
                    + 0.7 / (1.0 + ((f - 1200.0) / 300.0).powi(2));
                v += 3000.0 * env * ph.sin();
            }
            s.push((v + rng.sample(200.0)).clamp(-32768.0, 32767.0) as i16);
        }
        assert_eq!(detect(&s), "");
    }

    #[test]
    fn reset_and_current() {
        let mut d = DtmfToneDetector::new();
        let mut s = Vec::new();
        dtmf(&mut s, '7', 8000.0, 8000.0, ms(100));
        let mut got = None;
        for f in s.chunks(160) {
            got = got.or(d.process(f));
        }
        assert_eq!(got, Some('7'));
        assert_eq!(d.current(), Some('7'));
        d.reset();
        assert_eq!(d.current(), None);
    }
}
