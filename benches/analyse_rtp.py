#!/usr/bin/env python3
"""Timing and loss of RTP streams in a packet capture (python3 standard library only).

Reads a pcap or pcapng file (as written by tshark/dumpcap on `lo`), takes the UDP packets
whose source port (engine -> caller) or destination port (caller -> engine) lies in the
engine's RTP range, parses the RTP header itself, and reports per direction:

  * streams: distinct (source address, source port, destination port, SSRC);
  * gaps: capture-time difference between consecutive packets of one stream, pooled over all
    streams (p50 / p99 / p99.9 / max) and the worst per-stream p99;
  * lost: missing sequence numbers inside each stream (sum of seq jumps - 1);
  * late cycles: timestamp jumps larger than 160 per sequence step (the sender skipped whole
    20 ms cycles, marked with the marker bit, see src/media/worker.rs);
  * streams active at the capture's midpoint (an estimate of concurrency within the sample).

Usage: analyse_rtp.py CAPTURE --ports MIN-MAX [--target-ms 20 --tolerance-ms 2] [--json OUT]
Exit status: 0 when the engine's streams met the criterion (p99 of the gaps between packets of
one stream, pooled over the sampled streams, within target +- tolerance, and no packet lost),
1 when not, 2 on bad input. The strict reading (each stream's own p99 within the tolerance as
well) is reported beside it.
"""

import argparse
import json
import struct
import sys


def read_packets(path):
    """Yields (time_s, frame_bytes, linktype) for every packet of a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        yield from _read_pcap(data)
    elif magic == b"\x0a\x0d\x0d\x0a":
        yield from _read_pcapng(data)
    else:
        raise ValueError("not a pcap or pcapng file: %s" % path)


def _read_pcap(data):
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    div = 1e9 if nano else 1e6
    pos = 24
    rec = struct.Struct(endian + "IIII")
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, pos)
        pos += 16
        yield sec + frac / div, data[pos:pos + incl], linktype
        pos += incl


# pcapng interface statistics options kept from the capture (dumpcap writes them on close).
ISB_FIELDS = {4: "if_received", 5: "if_dropped", 6: "filter_accepted", 7: "os_dropped",
              8: "delivered_to_user"}
CAPTURE_STATS = {}


def _read_pcapng(data):
    pos = 0
    endian = "<"
    interfaces = []  # (linktype, ticks per second)
    while pos + 12 <= len(data):
        btype_raw = data[pos:pos + 4]
        if btype_raw == b"\x0a\x0d\x0d\x0a":  # section header: byte order from its magic
            bom = data[pos + 8:pos + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12 or pos + blen > len(data):
            break
        body = data[pos + 8:pos + blen - 4]
        if btype == 1:  # interface description
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            resol = 1e6
            opos = 8
            while opos + 4 <= len(body):
                code, olen = struct.unpack_from(endian + "HH", body, opos)
                if code == 0:
                    break
                if code == 9 and olen >= 1:  # if_tsresol
                    v = body[opos + 4]
                    resol = float(2 ** (v & 0x7F)) if v & 0x80 else float(10 ** v)
                opos += 4 + ((olen + 3) & ~3)
            interfaces.append((linktype, resol))
        elif btype == 6:  # enhanced packet
            iface, ts_hi, ts_lo, caplen, _orig = struct.unpack_from(endian + "IIIII", body, 0)
            linktype, resol = interfaces[iface] if iface < len(interfaces) else (1, 1e6)
            yield ((ts_hi << 32) | ts_lo) / resol, body[20:20 + caplen], linktype
        elif btype == 5:  # interface statistics: what the capture itself received / dropped
            opos = 12
            while opos + 4 <= len(body):
                code, olen = struct.unpack_from(endian + "HH", body, opos)
                if code == 0:
                    break
                if code in ISB_FIELDS and olen == 8:
                    CAPTURE_STATS[ISB_FIELDS[code]] = struct.unpack_from(endian + "Q", body, opos + 4)[0]
                opos += 4 + ((olen + 3) & ~3)
        elif btype == 3:  # simple packet (no timestamp): unusable for timing
            pass
        pos += blen


def udp_of(frame, linktype):
    """(src_ip, src_port, dst_port, udp_payload) of an IPv4/IPv6 UDP frame, else None."""
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return None
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        if ethertype == 0x8100 and len(frame) >= 18:
            ethertype = struct.unpack_from("!H", frame, 16)[0]
            off = 18
    elif linktype == 113:  # Linux cooked v1
        if len(frame) < 16:
            return None
        ethertype = struct.unpack_from("!H", frame, 14)[0]
        off = 16
    elif linktype == 276:  # Linux cooked v2
        if len(frame) < 20:
            return None
        ethertype = struct.unpack_from("!H", frame, 0)[0]
        off = 20
    elif linktype == 0:  # BSD loopback
        family = struct.unpack_from("<I", frame, 0)[0] if len(frame) >= 4 else 0
        ethertype = 0x0800 if family == 2 else 0x86DD
        off = 4
    elif linktype in (101, 12, 14):  # raw IP
        ethertype = 0x0800 if frame and frame[0] >> 4 == 4 else 0x86DD
        off = 0
    else:
        return None
    if ethertype == 0x0800:
        if len(frame) < off + 20:
            return None
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17:
            return None
        flags_frag = struct.unpack_from("!H", frame, off + 6)[0]
        if flags_frag & 0x1FFF:
            return None
        src = frame[off + 12:off + 16]
        off += ihl
    elif ethertype == 0x86DD:
        if len(frame) < off + 40 or frame[off + 6] != 17:
            return None
        src = frame[off + 8:off + 24]
        off += 40
    else:
        return None
    if len(frame) < off + 8:
        return None
    sport, dport = struct.unpack_from("!HH", frame, off)
    return src, sport, dport, frame[off + 8:]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Stream:
    __slots__ = ("first", "last", "packets", "gaps", "lost", "late_cycles", "reordered",
                 "prev_seq", "prev_ts", "prev_time", "bad")

    def __init__(self, t):
        self.first = t
        self.last = t
        self.packets = 0
        self.gaps = []
        self.lost = 0
        self.late_cycles = 0
        self.reordered = 0
        self.prev_seq = None
        self.prev_ts = None
        self.prev_time = None
        self.bad = 0

    def add(self, t, seq, ts, samples_per_packet):
        self.packets += 1
        self.last = t
        if self.prev_seq is not None:
            step = (seq - self.prev_seq) & 0xFFFF
            if step == 0 or step > 0x8000:
                self.reordered += 1  # duplicate or older packet: not a gap sample
                return
            self.lost += step - 1
            if step == 1:
                self.gaps.append((t - self.prev_time) * 1000.0)
            dts = (ts - self.prev_ts) & 0xFFFFFFFF
            if samples_per_packet and dts > samples_per_packet * step:
                self.late_cycles += 1
        self.prev_seq = seq
        self.prev_ts = ts
        self.prev_time = t


def summarise(streams, target, tol, min_packets):
    gaps = []
    per_stream_p99 = []
    lost = late = reordered = packets = 0
    failing = 0
    t_first = min((s.first for s in streams.values()), default=0.0)
    t_last = max((s.last for s in streams.values()), default=0.0)
    mid = (t_first + t_last) / 2
    active_mid = 0
    for s in streams.values():
        packets += s.packets
        lost += s.lost
        late += s.late_cycles
        reordered += s.reordered
        if s.first <= mid <= s.last:
            active_mid += 1
        gaps.extend(s.gaps)
        if len(s.gaps) >= min_packets:
            g = sorted(s.gaps)
            p99 = percentile(g, 99)
            per_stream_p99.append(p99)
            if abs(p99 - target) > tol:
                failing += 1
    gaps.sort()
    outside = sum(1 for g in gaps if abs(g - target) > tol)
    return {
        "streams": len(streams),
        "streams_with_enough_packets": len(per_stream_p99),
        "streams_active_at_midpoint": active_mid,
        "packets": packets,
        "capture_span_s": round(t_last - t_first, 3),
        "gaps": len(gaps),
        "gap_min_ms": round(gaps[0], 3) if gaps else None,
        "gap_p50_ms": round(percentile(gaps, 50), 3) if gaps else None,
        "gap_p99_ms": round(percentile(gaps, 99), 3) if gaps else None,
        "gap_p999_ms": round(percentile(gaps, 99.9), 3) if gaps else None,
        "gap_max_ms": round(gaps[-1], 3) if gaps else None,
        "gaps_outside_tolerance": outside,
        "worst_stream_p99_ms": round(max(per_stream_p99), 3) if per_stream_p99 else None,
        "best_stream_p99_ms": round(min(per_stream_p99), 3) if per_stream_p99 else None,
        "streams_p99_outside_tolerance": failing,
        "lost": lost,
        "late_cycles": late,
        "reordered_or_duplicate": reordered,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--ports", required=True, help="engine RTP port range MIN-MAX")
    ap.add_argument("--target-ms", type=float, default=20.0)
    ap.add_argument("--tolerance-ms", type=float, default=2.0)
    ap.add_argument("--samples", type=int, default=160, help="RTP timestamp units per packet")
    ap.add_argument("--min-gaps", type=int, default=250,
                    help="gaps a stream needs for its own p99 to count (default 250 = 5 s)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.ports.split("-"))

    directions = {"engine_to_caller": {}, "caller_to_engine": {}}
    non_rtp = 0
    try:
        packets = read_packets(args.capture)
        for t, frame, linktype in packets:
            u = udp_of(frame, linktype)
            if u is None:
                continue
            src, sport, dport, payload = u
            if lo <= sport <= hi:
                d = directions["engine_to_caller"]
            elif lo <= dport <= hi:
                d = directions["caller_to_engine"]
            else:
                continue
            if len(payload) < 12 or payload[0] >> 6 != 2:
                non_rtp += 1
                continue
            pt = payload[1] & 0x7F
            if 72 <= pt <= 76:  # RTCP
                non_rtp += 1
                continue
            seq, ts, ssrc = struct.unpack_from("!HII", payload, 2)
            key = (src, sport, dport, ssrc)
            s = d.get(key)
            if s is None:
                s = d[key] = Stream(t)
            # telephone-event packets share the sequence space but not the timestamp rule
            s.add(t, seq, ts, args.samples if pt in (0, 8) else 0)
    except (OSError, ValueError, struct.error) as e:
        print("analyse_rtp: %s" % e, file=sys.stderr)
        return 2

    report = {"capture": args.capture, "ports": args.ports, "non_rtp_packets": non_rtp,
              "capture_stats": dict(CAPTURE_STATS)}
    for name, streams in directions.items():
        report[name] = summarise(streams, args.target_ms, args.tolerance_ms, args.min_gaps)
    eng = report["engine_to_caller"]
    # The figure: p99 of the gaps between packets of one stream, over all sampled streams.
    ok = (eng["streams"] > 0 and eng["lost"] == 0
          and eng["gap_p99_ms"] is not None
          and abs(eng["gap_p99_ms"] - args.target_ms) <= args.tolerance_ms)
    # The strict reading: every stream's own p99 within the tolerance too.
    strict = (ok and eng["streams_with_enough_packets"] > 0
              and eng["streams_p99_outside_tolerance"] == 0)
    report["criterion_met"] = ok
    report["strict_criterion_met"] = strict

    for name in ("engine_to_caller", "caller_to_engine"):
        r = report[name]
        if r["streams"] == 0:
            print("%-17s no streams" % name)
            continue
        print("%-17s streams %d (active at midpoint %d), packets %d over %.1f s"
              % (name, r["streams"], r["streams_active_at_midpoint"], r["packets"],
                 r["capture_span_s"]))
        print("%-17s gap ms: p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  min %.2f; "
              "worst stream p99 %s; streams with p99 outside %g+-%g: %d; gaps outside: %d"
              % ("", r["gap_p50_ms"], r["gap_p99_ms"], r["gap_p999_ms"], r["gap_max_ms"],
                 r["gap_min_ms"],
                 "n/a" if r["worst_stream_p99_ms"] is None else r["worst_stream_p99_ms"],
                 args.target_ms, args.tolerance_ms,
                 r["streams_p99_outside_tolerance"], r["gaps_outside_tolerance"]))
        print("%-17s lost %d, late cycles (marker, timestamp jump) %d, reordered/duplicate %d"
              % ("", r["lost"], r["late_cycles"], r["reordered_or_duplicate"]))
    if CAPTURE_STATS:
        print("capture statistics (pcapng ISB): %s" % ", ".join(
            "%s %d" % kv for kv in sorted(CAPTURE_STATS.items())))
    print("criterion (engine streams: p99 of the per-stream gaps within %g+-%g ms, none lost): %s"
          % (args.target_ms, args.tolerance_ms, "MET" if ok else "NOT MET"))
    print("strict reading (also each stream's own p99 over >= %d gaps within %g+-%g ms): %s"
          % (args.min_gaps, args.target_ms, args.tolerance_ms, "MET" if strict else "NOT MET"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
