#!/usr/bin/env python3
"""The tagged audio of bridged calls, traced packet by packet (python3 standard library only).

Used by benches/bridged_calls.sh. The audio itself comes from benches/drivers/bridge_driver.rs
(`cargo build --release --example bridge_driver`): the RTP of every caller, seat and target port,
each payload tagged with its side, stream and packet number, marked between SIGUSR1 and SIGUSR2.
Its top doc comment describes the tag and what the driver does; the tag's offsets and codes below
(MAGIC, TAG_*, DIGIT, MARK_ON, ROBUST) must stay as it writes them. Three commands:

  analyse Reads a capture on lo (pcap/pcapng, as benches/analyse_rtp.py does) of tagged packets
          in both directions and pairs every packet that entered an engine port with the packet
          the engine sent on the partner leg carrying the same tag. Reports: packets in / relayed
          / lost inside the engine (entered a bridged leg, never came out of its partner; the
          last --tail-ms of the capture are not counted, their copies may still be in the
          engine), the added delay (capture time out - capture time in, both taken as the
          packets pass lo) p50/p90/p99/p99.9/max with a histogram, silence frames the engine
          sent on bridged legs between relayed ones (its FIFO was empty at a tick: gaps in the
          engine's own RTP sequence between tagged packets), and the gaps between the packets
          each side sent (how regular the sources were).

          With --legs (the driver's status file), each copy is attributed to the side of the
          leg it left on, and the figures are given per direction as well (caller->seat,
          seat->caller; in a conference caller->seat and caller->target, each caller packet
          being expected on both).

  bpf     Prints the capture filter (BPF) that keeps the tagged packets of 1 in --sample
          streams of each side (a power of 2, at most 256), by the low bits of the stream index;
          with --marked, only those the driver marked (between its SIGUSR1 and SIGUSR2).

  selftest Checks that the tag's codes survive +-16 through A-law (the mixer adds +8 per silent
          party: see ROBUST).

Usage:
  bridge_rtp.py analyse CAPTURE --ports MIN-MAX [--legs STATUS] [--tail-ms 1000] [--json OUT]
  bridge_rtp.py bpf --sample N [--marked]
  bridge_rtp.py selftest
"""

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from analyse_rtp import CAPTURE_STATS, percentile, read_packets, udp_of  # noqa: E402

MAGIC = b"hlb1"
CYCLE_MS = 20
ALAW_SILENCE = 0xD5
SIDES = ("caller", "seat", "target")


def _alaw_decode(code):
    a = code ^ 0x55
    seg = (a & 0x70) >> 4
    v = ((a & 0x0F) << 4) + 8
    if seg >= 1:
        v += 0x100
    if seg > 1:
        v <<= seg - 1
    return v if a & 0x80 else -v


# A-law codes of segment >= 3: the +-16 of two silent parties (0xD5 = +8 each) stays inside
# their quantisation step, so they encode back to themselves (checked in the selftest).
ROBUST = [c for c in range(256) if ((c ^ 0x55) & 0x70) >> 4 >= 3]
DIGIT = 0xE0  # DIGIT | d for a hex digit d: segment 3


def _digits(value, n):
    """value as n hex digits, most significant first, one byte each (DIGIT | d)."""
    return bytes(DIGIT | ((value >> (4 * (n - 1 - i))) & 0x0F) for i in range(n))


def _undigits(b):
    v = 0
    for x in b:
        v = (v << 4) | (x & 0x0F)
    return v


# Offsets in the UDP payload (RTP header of 12 bytes, then the tag).
TAG_MAGIC = 12
TAG_SIDE = 16
TAG_MARK = 17
TAG_INDEX = 18
MARK_ON = DIGIT | 1
TAG_SEQ = 22
TAG_END = 30


# -------------------------------------------------------------------------------- analyse


def _legs_map(path):
    """engine port -> side of the stream it serves, from the driver's status file."""
    if not path:
        return {}
    with open(path) as f:
        doc = json.load(f)
    return {int(port): v[0] for port, v in doc.get("legs", {}).items()}


def analyse(args):
    lo, hi = (int(x) for x in args.ports.split("-"))
    legs = _legs_map(args.legs)
    ins = {}          # tag -> (time, engine port)
    outs = {}         # (tag, side of the leg it left on, -1 unknown) -> (time, engine port)
    in_streams = {}   # (side, index) -> [times]
    out_seq = {}      # engine port -> [(time, engine rtp seq, marker)]
    dup_in = dup_out = other = 0
    t_first = t_last = None
    for t, frame, linktype in read_packets(args.capture):
        u = udp_of(frame, linktype)
        if u is None:
            continue
        _src, sport, dport, payload = u
        if t_first is None:
            t_first = t
        t_last = t
        if len(payload) < TAG_END or payload[TAG_MAGIC:TAG_SIDE] != MAGIC:
            other += 1
            continue
        side = payload[TAG_SIDE] & 0x0F
        index = _undigits(payload[TAG_INDEX:TAG_SEQ])
        seq = _undigits(payload[TAG_SEQ:TAG_END])
        tag = (side, index, seq)
        if lo <= dport <= hi and not lo <= sport <= hi:
            if tag in ins:
                dup_in += 1
                continue
            ins[tag] = (t, dport)
            in_streams.setdefault((side, index), []).append(t)
        elif lo <= sport <= hi:
            key = (tag, legs.get(sport, -1))
            if key in outs:
                dup_out += 1
                continue
            outs[key] = (t, sport)
            eseq = struct.unpack_from("!H", payload, 2)[0]
            out_seq.setdefault(sport, []).append((t, eseq, payload[1] >> 7))
        else:
            other += 1
    if t_first is None:
        print("bridge_rtp: the capture holds no packets", file=sys.stderr)
        return 2

    tail = args.tail_ms / 1000.0
    # (side, index) -> the sides of the legs some packet of it came out on: where each of its
    # packets is expected (the partner; in a conference, both other parties).
    listeners = {}
    for tag, lside in outs:
        listeners.setdefault(tag[:2], set()).add(lside)
    delays = []
    per_stream = {}  # (side, index, listener) -> delays
    # "from->to" -> [relayed, lost, delays, lost streams]
    directions = {}
    lost = 0
    lost_streams = set()
    counted_in = 0
    unbridged_in = 0

    def direction(side, lside):
        name = "%s->%s" % (SIDES[side] if side < len(SIDES) else side,
                           SIDES[lside] if 0 <= lside < len(SIDES) else "?")
        return directions.setdefault(name, [0, 0, [], set()])

    for tag, (t, _port) in ins.items():
        heard_by = listeners.get(tag[:2])
        if not heard_by:
            if t <= t_last - tail:
                unbridged_in += 1
            continue
        for lside in sorted(heard_by):
            d = direction(tag[0], lside)
            o = outs.get((tag, lside))
            if o is not None:
                d_ms = (o[0] - t) * 1000.0
                delays.append(d_ms)
                d[0] += 1
                d[2].append(d_ms)
                per_stream.setdefault(tag[:2] + (lside,), []).append(d_ms)
                counted_in += 1
                continue
            if t > t_last - tail:
                continue
            counted_in += 1
            lost += 1
            d[1] += 1
            d[3].add(tag[:2])
            lost_streams.add(tag[:2])
    out_without_in = sum(1 for (tag, _l), (t, _p) in outs.items()
                         if tag not in ins and t > t_first + tail)
    delays.sort()
    # Per stream, its median delay in whole 20 ms frames: frames standing in the relay FIFO
    # (beyond the wait for the partner leg's next tick).
    standing = {}
    for values in per_stream.values():
        values.sort()
        k = int(values[len(values) // 2] // CYCLE_MS)
        standing[k] = standing.get(k, 0) + 1

    # The engine's own sequence on each bridged leg: a step of k between two relayed frames
    # means k - 1 other packets (silence: the relay FIFO was empty at that tick) went out.
    silence = relayed_steps = marked = 0
    out_gaps = []
    for seqs in out_seq.values():
        seqs.sort()
        for (ta, sa, _ma), (tb, sb, mb) in zip(seqs, seqs[1:]):
            step = (sb - sa) & 0xFFFF
            if step == 0 or step > 0x8000:
                continue
            relayed_steps += 1
            silence += step - 1
            marked += mb
            if step == 1:
                out_gaps.append((tb - ta) * 1000.0)
    out_gaps.sort()
    in_gaps = []
    for times in in_streams.values():
        times.sort()
        in_gaps.extend((b - a) * 1000.0 for a, b in zip(times, times[1:]))
    in_gaps.sort()

    edges = [1, 2, 5, 10, 15, 20, 25, 30, 40, 60, 80, 100, 150]
    hist = [0] * (len(edges) + 1)
    for d in delays:
        k = 0
        while k < len(edges) and d >= edges[k]:
            k += 1
        hist[k] += 1
    labels = ["<%g" % e for e in edges] + [">=%g" % edges[-1]]

    def pct(values, p):
        return round(percentile(values, p), 3) if values else None

    by_direction = {}
    for name, (relayed, dlost, dd, dstreams) in sorted(directions.items()):
        dd.sort()
        by_direction[name] = {
            "relayed": relayed, "lost": dlost, "streams_with_loss": len(dstreams),
            "delay_ms": {"p50": pct(dd, 50), "p90": pct(dd, 90), "p99": pct(dd, 99),
                         "p999": pct(dd, 99.9), "max": round(dd[-1], 3) if dd else None},
        }

    streams_in = len(in_streams)
    streams_bridged = sum(1 for k in in_streams if k in listeners)
    report = {
        "capture": args.capture, "ports": args.ports,
        "capture_span_s": round(t_last - t_first, 3),
        "capture_stats": dict(CAPTURE_STATS),
        "streams_in": streams_in,
        "streams_in_by_side": {name: sum(1 for k in in_streams if k[0] == i)
                               for i, name in enumerate(SIDES)},
        "streams_bridged": streams_bridged,
        "packets_in": len(ins), "packets_out_tagged": len(outs),
        "packets_in_counted": counted_in,
        "relayed": len(delays), "lost_in_engine": lost, "streams_with_loss": len(lost_streams),
        "in_of_unbridged_streams": unbridged_in,
        "out_without_in_after_start": out_without_in,
        "duplicates_in": dup_in, "duplicates_out": dup_out, "other_packets": other,
        "delay_ms": {
            "min": pct(delays, 0), "p50": pct(delays, 50), "p90": pct(delays, 90),
            "p99": pct(delays, 99), "p999": pct(delays, 99.9),
            "max": round(delays[-1], 3) if delays else None,
            "mean": round(sum(delays) / len(delays), 3) if delays else None,
        },
        "delay_histogram_ms": dict(zip(labels, hist)),
        "by_direction": by_direction,
        "streams_by_median_delay_frames": {str(k): v for k, v in sorted(standing.items())},
        "engine_silence_between_relayed": silence,
        "engine_relayed_steps": relayed_steps,
        "engine_marker_bits": marked,
        "engine_out_gap_ms": {"p50": pct(out_gaps, 50), "p99": pct(out_gaps, 99),
                              "max": round(out_gaps[-1], 3) if out_gaps else None},
        "source_gap_ms": {"p50": pct(in_gaps, 50), "p99": pct(in_gaps, 99),
                          "max": round(in_gaps[-1], 3) if in_gaps else None,
                          "min": round(in_gaps[0], 3) if in_gaps else None},
    }
    d = report["delay_ms"]
    print("capture          %.1f s, sampled streams into the engine: %d (%s), %d of them relayed"
          % (report["capture_span_s"], streams_in,
             ", ".join("%d %ss" % (n, name) for name, n in report["streams_in_by_side"].items()
                       if n or name != "target"), streams_bridged))
    print("packets          in %d (copies expected %d: one per leg hearing the stream), relayed %d, "
          "LOST INSIDE THE ENGINE %d (in %d streams); in of unbridged streams %d; out without in "
          "%d; dup in/out %d/%d"
          % (len(ins), counted_in, len(delays), lost, len(lost_streams), unbridged_in,
             out_without_in, dup_in, dup_out))
    if delays:
        print("added delay ms   min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  "
              "mean %.2f" % (d["min"], d["p50"], d["p90"], d["p99"], d["p999"], d["max"],
                             d["mean"]))
        total = float(len(delays))
        print("delay histogram  " + "  ".join(
            "%s:%.1f%%" % (lab, 100.0 * n / total) for lab, n in zip(labels, hist) if n))
    if legs:
        for name, v in by_direction.items():
            dd = v["delay_ms"]
            print("  %-14s relayed %d, lost %d (in %d streams); delay ms p50 %s  p90 %s  p99 %s  "
                  "p99.9 %s  max %s" % (name, v["relayed"], v["lost"], v["streams_with_loss"],
                                        dd["p50"], dd["p90"], dd["p99"], dd["p999"], dd["max"]))
    print("per stream       median delay in whole 20 ms frames (frames standing in the FIFO): "
          + ", ".join("%d: %d streams" % kv for kv in sorted(standing.items())))
    print("engine out       silence frames between relayed ones %d (over %d steps), marker bits "
          "%d; gap between relayed frames p50 %s p99 %s max %s ms"
          % (silence, relayed_steps, marked, report["engine_out_gap_ms"]["p50"],
             report["engine_out_gap_ms"]["p99"], report["engine_out_gap_ms"]["max"]))
    print("sources          gap between packets p50 %s p99 %s max %s min %s ms"
          % (report["source_gap_ms"]["p50"], report["source_gap_ms"]["p99"],
             report["source_gap_ms"]["max"], report["source_gap_ms"]["min"]))
    if CAPTURE_STATS:
        print("capture statistics (pcapng ISB): %s" % ", ".join(
            "%s %d" % kv for kv in sorted(CAPTURE_STATS.items())))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def bpf(args):
    """The capture filter: tagged packets of the streams whose index is 0 modulo --sample."""
    n = args.sample
    if n < 1 or n > 256 or n & (n - 1):
        print("bridge_rtp: --sample must be a power of 2 from 1 to 256", file=sys.stderr)
        return 2
    # UDP header 8 + RTP header 12: the tag's magic at udp[20], the index's last two hex
    # digits at udp[28] and udp[29] (one per byte, in the low 4 bits).
    magic = "udp[20:4] = 0x%s" % MAGIC.hex()
    if args.marked:
        magic += " and udp[%d] = 0x%02x" % (8 + TAG_MARK, MARK_ON)
    low, last = 8 + TAG_SEQ - 1, 8 + TAG_SEQ - 2
    if n == 1:
        print("udp and %s" % magic)
    elif n <= 16:
        print("udp and %s and (udp[%d] & %d) = 0" % (magic, low, n - 1))
    else:
        print("udp and %s and (udp[%d] & %d) = 0 and (udp[%d] & %d) = 0"
              % (magic, low, 15, last, (n >> 4) - 1))
    return 0


def selftest(_args):
    """Checks that tagged payloads survive +-16 (two silent parties) through A-law."""
    def encode(x):
        x = max(-32768, min(32767, x))
        s = -1 if x < 0 else 0
        mag = ((x ^ s) & 0xFFFF) >> 3
        seg = (mag | 0x1F).bit_length() - 5
        mant = (mag >> max(seg, 1)) & 0x0F
        return ((seg << 4) | mant) ^ (0xD5 ^ (0x80 if s else 0))
    assert all(encode(_alaw_decode(c)) == c for c in range(256))
    assert _alaw_decode(ALAW_SILENCE) == 8 and all(_alaw_decode(c) != 0 for c in range(256))
    for c in set(ROBUST) | set(MAGIC) | {DIGIT | d for d in range(16)}:
        assert c in ROBUST, hex(c)
        for extra in (-16, -8, 0, 8, 16):
            assert encode(_alaw_decode(c) + extra) == c, (hex(c), extra)
    assert _undigits(_digits(0x1234, 4)) == 0x1234
    print("ok: %d robust codes; tag and pattern bytes survive +-16" % len(ROBUST))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyse")
    a.add_argument("capture")
    a.add_argument("--ports", required=True, help="engine RTP port range MIN-MAX")
    a.add_argument("--legs", help="the driver's status file (engine port -> stream)")
    a.add_argument("--tail-ms", type=float, default=1000.0)
    a.add_argument("--json")
    b = sub.add_parser("bpf")
    b.add_argument("--sample", type=int, default=1)
    b.add_argument("--marked", action="store_true", help="only packets sent between SIGUSR1 and SIGUSR2")
    sub.add_parser("selftest")
    args = ap.parse_args()
    run = {"analyse": analyse, "bpf": bpf, "selftest": selftest}[args.command]
    try:
        return run(args)
    except (OSError, ValueError, struct.error) as e:
        print("bridge_rtp: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
