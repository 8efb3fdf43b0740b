#!/usr/bin/env python3
"""Checks the call recordings of a benchmark run (python3 standard library only).

Used by benches/bridged_calls.sh with BRIDGE_RECORD=1. Reads the engine's call records
(<data>/records.sqlite, read-only) and every WAV they name (<data>/recordings/...): stereo,
8 kHz, 16-bit, the caller on the left, what the caller hears on the right (see
src/media/recorder.rs). For each file:

  * its duration against how long the call was bridged (the record's person_answered to
    ended: the recording starts when the seat answers and ends with the call);
  * gaps: runs of at least --gap-samples (160 = 20 ms) consecutive samples equal to 0 in one
    channel, between that channel's first and last sample that is not 0. The benchmark's RTP
    driver sends PCMA and no A-law code decodes to 0 (the smallest values are +-8), so a 0 in
    the file is silence the recorder wrote because no audio had arrived for that 20 ms frame
    (a late or lost packet, a stalled worker).

With --driver-stalls FILE (bridge_driver --stalls), each gap is laid against the moments
the RTP driver itself fell behind (a send pass >= 5 ms late, or cycles it skipped and never
sent): a gap from 80 ms before such a moment to 20 ms after it counts as "at a driver stall"
(the audio came late or never from the source), the others as not explained by the source.
The recording's start is taken as the record's person_answered (ms; the engine starts the
recording at that moment).

Usage: check_recordings.py --data DIR [--gap-samples 160] [--json OUT] [--wait-s 60 --expect N]
                           [--driver-stalls FILE]
With --expect N, first waits (at most --wait-s) until N records are finished and none of their
recordings is still being written (the final record waits for the WAV to be closed).
Exit status: 0 when every recording is ok, complete and without gaps, 1 otherwise, 2 on bad
input.
"""

import argparse
import array
import bisect
import json
import os
import re
import sqlite3
import sys
import time
import wave
from datetime import datetime


def parse_time(text):
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_records(data):
    uri = "file:%s?mode=ro" % os.path.join(data, "records.sqlite")
    con = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        rows = con.execute("SELECT finished, record FROM calls").fetchall()
    finally:
        con.close()
    return [(finished, json.loads(record)) for finished, record in rows]


def wait_finished(data, expect, limit_s):
    """Waits until `expect` records are finished with every recording settled."""
    deadline = time.time() + limit_s
    while True:
        try:
            rows = load_records(data)
        except sqlite3.Error:
            rows = []
        done = sum(1 for f, r in rows if f and all(x.get("status") != "recording"
                                                   for x in r.get("recordings", [])))
        if done >= expect or time.time() >= deadline:
            return done
        time.sleep(1)


ZERO_RUN = re.compile(rb"\x00{2,}")


def channel_gaps(samples, min_run):
    """(first, last_end, gaps) of one channel: the first and one past the last sample that is
    not 0, and the runs of >= min_run zero samples between them as (start, length)."""
    raw = samples.tobytes()
    body = raw.lstrip(b"\x00")
    if not body:
        return None, None, []
    first = (len(raw) - len(body)) // 2
    last_end = (len(raw.rstrip(b"\x00")) + 1) // 2
    gaps = []
    needle = b"\x00" * (2 * min_run)
    pos = 2 * first
    stop = 2 * last_end
    while True:
        at = raw.find(needle, pos, stop)
        if at < 0:
            break
        m = ZERO_RUN.match(raw, at)
        start, end = at, min(m.end(), stop)
        # Whole samples only: a zero byte at an odd offset is the high byte of a sample.
        s, e = (start + 1) & ~1, end & ~1
        if (e - s) // 2 >= min_run:
            gaps.append((s // 2, (e - s) // 2))
        pos = max(end, at + 1)
    return first, last_end, gaps


def check_file(path, min_run):
    with wave.open(path, "rb") as w:
        channels, width, rate, frames = (w.getnchannels(), w.getsampwidth(),
                                         w.getframerate(), w.getnframes())
        data = w.readframes(frames)
    if channels != 2 or width != 2:
        raise ValueError("%s: %d channels of %d bytes, expected 2 of 2" % (path, channels, width))
    pcm = array.array("h")
    pcm.frombytes(data[:len(data) // 4 * 4])
    if sys.byteorder != "little":
        pcm.byteswap()
    out = {"frames": len(pcm) // 2, "rate": rate}
    for name, ch in (("left", pcm[0::2]), ("right", pcm[1::2])):
        first, last_end, gaps = channel_gaps(ch, min_run)
        out[name] = {
            "first_sound_s": None if first is None else round(first / rate, 3),
            "last_sound_s": None if last_end is None else round(last_end / rate, 3),
            "gaps": len(gaps),
            "gap_samples": sum(n for _s, n in gaps),
            "longest_gap_samples": max((n for _s, n in gaps), default=0),
            "gaps_at_s": [round(s / rate, 3) for s, _n in gaps[:10]],
            "gap_list": gaps,
        }
    return out


def pcts(values):
    if not values:
        return None
    v = sorted(values)

    def at(p):
        return round(v[min(len(v) - 1, int(p / 100.0 * (len(v) - 1) + 0.5))], 3)
    return {"min": round(v[0], 3), "p50": at(50), "p99": at(99), "max": round(v[-1], 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the engine's data directory")
    ap.add_argument("--gap-samples", type=int, default=160)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--wait-s", type=float, default=60.0)
    ap.add_argument("--json")
    ap.add_argument("--driver-stalls")
    args = ap.parse_args()
    stall_times = None
    if args.driver_stalls:
        with open(args.driver_stalls) as f:
            doc = json.load(f)
        stall_times = sorted(doc["t0_wall"] + e[0] / 1000.0 for e in doc["events"])
    waited = time.time()
    settled = wait_finished(args.data, args.expect, args.wait_s) if args.expect else None
    waited = time.time() - waited
    rows = load_records(args.data)
    statuses = {}
    files = []
    missing = []
    unfinished = sum(1 for f, _r in rows if not f)
    t0 = time.time()
    for _finished, record in rows:
        times = record.get("times", {})
        answered, ended = parse_time(times.get("person_answered")), parse_time(times.get("ended"))
        for rec in record.get("recordings", []):
            status = rec.get("status", "?")
            key = status.split(":")[0]
            statuses[key] = statuses.get(key, 0) + 1
            path = os.path.join(args.data, rec["path"])
            if not os.path.exists(path):
                missing.append(rec["path"])
                continue
            try:
                info = check_file(path, args.gap_samples)
            except (OSError, EOFError, wave.Error, ValueError) as e:
                missing.append("%s (%s)" % (rec["path"], e))
                continue
            info["path"] = rec["path"]
            info["status"] = status
            info["bytes"] = os.path.getsize(path)
            info["seconds"] = round(info["frames"] / float(info["rate"]), 3)
            info["bridged_s"] = (round(ended - answered, 3)
                                 if answered is not None and ended is not None else None)
            info["start_wall"] = answered
            files.append(info)
    # Gaps at a moment the driver fell behind, and the others.
    at_stall = unexplained = 0
    unexplained_longest = 0
    unexplained_at = []
    for f in files:
        for ch in ("left", "right"):
            for start, n in f[ch].pop("gap_list"):
                if stall_times is None or f["start_wall"] is None:
                    continue
                gs = f["start_wall"] + start / float(f["rate"])
                ge = gs + n / float(f["rate"])
                i = bisect.bisect_left(stall_times, gs - 0.08)
                if i < len(stall_times) and stall_times[i] <= ge + 0.02:
                    at_stall += 1
                else:
                    unexplained += 1
                    unexplained_longest = max(unexplained_longest, n)
                    if len(unexplained_at) < 10:
                        unexplained_at.append("%s %s %.2f s" % (f["path"].rsplit("/", 1)[-1][:8], ch,
                                                                start / float(f["rate"])))
    # How much of the recorded time lies in such windows: the share of gaps that would be put
    # down to the driver by chance.
    coverage = None
    starts = [f["start_wall"] for f in files if f["start_wall"] is not None]
    if stall_times is not None and starts:
        lo = min(starts)
        hi = max(f["start_wall"] + f["seconds"] for f in files if f["start_wall"] is not None)
        covered, end = 0.0, lo
        for t in stall_times:
            a, b = max(t - 0.02, end, lo), min(t + 0.08, hi)
            if b > a:
                covered += b - a
                end = b
        coverage = 100.0 * covered / (hi - lo) if hi > lo else None
    total_s = sum(f["seconds"] for f in files)
    diffs = [f["seconds"] - f["bridged_s"] for f in files if f["bridged_s"] is not None]
    gaps = {ch: sum(f[ch]["gaps"] for f in files) for ch in ("left", "right")}
    worst = max((f[ch]["longest_gap_samples"] for f in files for ch in ("left", "right")),
                default=0)
    rate = files[0]["rate"] if files else 8000
    with_gaps = [f for f in files if f["left"]["gaps"] or f["right"]["gaps"]]
    silent = {ch: sum(1 for f in files if f[ch]["first_sound_s"] is None) for ch in ("left", "right")}
    report = {
        "records": len(rows), "unfinished_records": unfinished,
        "settled_records": settled, "waited_s": round(waited, 1),
        "recordings": sum(statuses.values()), "status": statuses,
        "files": len(files), "missing_or_unreadable": missing[:20],
        "missing_count": len(missing),
        "bytes": sum(f["bytes"] for f in files),
        "seconds_total": round(total_s, 1),
        "seconds_minus_bridged_s": pcts(diffs),
        "first_sound_s": {ch: pcts([f[ch]["first_sound_s"] for f in files
                                    if f[ch]["first_sound_s"] is not None])
                          for ch in ("left", "right")},
        "silent_channels": silent,
        "gaps": gaps, "files_with_gaps": len(with_gaps),
        "gap_samples_total": sum(f[ch]["gap_samples"] for f in files for ch in ("left", "right")),
        "longest_gap_ms": round(1000.0 * worst / rate, 1),
        "gaps_at_driver_stall": at_stall if stall_times is not None else None,
        "gaps_not_at_driver_stall": unexplained if stall_times is not None else None,
        "longest_gap_not_at_driver_stall_ms": round(1000.0 * unexplained_longest / rate, 1),
        "gaps_not_at_driver_stall_examples": unexplained_at,
        "driver_stall_events": len(stall_times) if stall_times is not None else None,
        "driver_stall_windows_cover_pct": None if coverage is None else round(coverage, 2),
        "examples_with_gaps": [{k: f[k] for k in ("path", "left", "right", "seconds")}
                               for f in sorted(with_gaps, key=lambda f: -max(
                                   f["left"]["longest_gap_samples"],
                                   f["right"]["longest_gap_samples"]))[:5]],
        "analysis_s": round(time.time() - t0, 1),
    }
    d = report["seconds_minus_bridged_s"] or {}
    print("recordings       %d in %d records (%d unfinished); status %s; %d files read, %d "
          "missing or unreadable; %.1f MB"
          % (report["recordings"], len(rows), unfinished,
             ", ".join("%s %d" % kv for kv in sorted(statuses.items())) or "-", len(files),
             len(missing), report["bytes"] / 1e6))
    print("duration         %.1f s of audio in all; file minus bridged time (s): min %s p50 %s "
          "p99 %s max %s" % (total_s, d.get("min"), d.get("p50"), d.get("p99"), d.get("max")))
    fs = report["first_sound_s"]
    print("first sound      left (caller) p50 %s max %s s, right (what it hears) p50 %s max %s s "
          "after the start; channels all silent: left %d, right %d"
          % ((fs["left"] or {}).get("p50"), (fs["left"] or {}).get("max"),
             (fs["right"] or {}).get("p50"), (fs["right"] or {}).get("max"),
             silent["left"], silent["right"]))
    print("gaps (>= %d zero samples inside a channel's sound)  left %d, right %d, in %d files; "
          "%d samples in all; longest %.1f ms"
          % (args.gap_samples, gaps["left"], gaps["right"], len(with_gaps),
             report["gap_samples_total"], report["longest_gap_ms"]))
    if stall_times is not None:
        print("  of which at a moment the RTP driver fell behind (>= 5 ms late or cycles skipped, "
              "%d such moments, their windows cover %s %% of the recorded time): %d; not: %d "
              "(longest %.1f ms)%s"
              % (len(stall_times), report["driver_stall_windows_cover_pct"], at_stall, unexplained,
                 report["longest_gap_not_at_driver_stall_ms"],
                 (", e.g. " + "; ".join(unexplained_at[:4])) if unexplained_at else ""))
    for f in report["examples_with_gaps"][:3]:
        print("  e.g. %s: left %d gaps at %s s, right %d at %s s"
              % (f["path"], f["left"]["gaps"], f["left"]["gaps_at_s"][:4], f["right"]["gaps"],
                 f["right"]["gaps_at_s"][:4]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
    ok = (files and not missing and not with_gaps and set(statuses) == {"ok"}
          and unfinished == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, sqlite3.Error, ValueError) as e:
        print("check_recordings: %s" % e, file=sys.stderr)
        sys.exit(2)
