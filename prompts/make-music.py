#!/usr/bin/env python3
"""Writes the queue's waiting music (queue/music.wav): a 20 s pentatonic melody of soft sine
tones, 8 kHz mono 16-bit PCM, made to loop seamlessly. Standard library only and deterministic:
the same Python writes the same bytes. Called by make-prompts.sh; usage: make-music.py OUT.wav

Original tune (no rights to clear), in C major pentatonic (宫商角徵羽: C D E G A), 96 beats a
minute, 32 beats. Notes stay between 260 and 1050 Hz: the telephone band (300-3400 Hz) keeps
them, and the harmonics make the lower bass notes audible on a phone.
"""

import math
import struct
import sys
import wave

RATE = 8000
BEAT_S = 60 / 96
# Peak well below full scale: music is denser than speech and must not sound louder.
PEAK = 0.40

# Note name -> frequency (equal temperament, A4 = 440 Hz).
SEMITONES = {"C": -9, "D": -7, "E": -5, "G": -2, "A": 0}


def freq(note):
    """'E5' -> Hz."""
    return 440.0 * 2 ** ((SEMITONES[note[0]] + 12 * (int(note[1:]) - 4)) / 12)


# (note, beats): four phrases of eight beats; the last one comes home to C for the loop.
MELODY = [
    ("E5", 1), ("G5", 1), ("A5", 1), ("G5", 1), ("E5", 1), ("D5", 1), ("C5", 2),
    ("D5", 1), ("E5", 1), ("G5", 1), ("A5", 1), ("G5", 3), ("E5", 1),
    ("A5", 1), ("C6", 1), ("A5", 1), ("G5", 1), ("E5", 1), ("G5", 1), ("D5", 2),
    ("E5", 1), ("D5", 1), ("C5", 1), ("D5", 1), ("C5", 4),
]
# One bass note per bar of four beats.
BASS = ["C4", "C4", "G4", "C4", "A4", "E4", "G4", "C4"]


def tone(out, start_s, length_s, hz, level, attack_s, decay):
    """Adds a note: sine with soft harmonics, quick attack, exponential decay, and a short
    release so it ends at zero (no clicks, even where the loop restarts)."""
    first = int(round(start_s * RATE))
    count = int(round(length_s * RATE))
    release = int(0.03 * RATE)
    for i in range(count):
        t = i / RATE
        env = min(1.0, t / attack_s) * math.exp(-decay * t)
        if i > count - release:
            env *= (count - i) / release
        phase = 2 * math.pi * hz * t
        wave_ = math.sin(phase) + 0.25 * math.sin(2 * phase) + 0.08 * math.sin(3 * phase)
        out[first + i] += level * env * wave_


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-music.py OUT.wav")
    beats = sum(b for _, b in MELODY)
    samples = [0.0] * int(round(beats * BEAT_S * RATE))
    at = 0
    for note, length in MELODY:
        tone(samples, at * BEAT_S, length * BEAT_S, freq(note), 1.0, 0.012, 1.6)
        at += length
    for bar, note in enumerate(BASS):
        tone(samples, bar * 4 * BEAT_S, 4 * BEAT_S, freq(note), 0.45, 0.08, 0.5)
    scale = PEAK * 32767 / max(abs(s) for s in samples)
    with wave.open(sys.argv[1], "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", int(round(s * scale))) for s in samples))


if __name__ == "__main__":
    main()
