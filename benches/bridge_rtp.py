#!/usr/bin/env python3
"""Audio of both sides of bridged calls, traceable packet by packet (python3 standard library only).

Used by benches/bridged_calls.sh. Two commands:

  drive   Binds the RTP ports the callers' and the seats' SDPs name (127.0.0.1, one socket per
          port: callers BASE..BASE+N-1, seats BASE..BASE+M-1). A port stays silent until the
          engine's first packet arrives on it (the caller's queue music, or the seat leg once
          the seat answered); that packet tells the engine port of the leg. From then on the
          driver sends one PCMA packet every 20 ms to that engine port, at a phase of the 20 ms
          cycle drawn at random for the stream (1 ms steps: a phone's clock has nothing to do
          with the engine's). Every packet leaves through one socket of the driver with
          sendmmsg, one call per 1 ms phase (to keep the driver's CPU down: it shares the 2
          cores with the engine); the engine's legs latch to that address (symmetric RTP) and
          send there, to a 4 kB receive buffer nobody reads (the kernel drops what does not
          fit, as at an unread sink). Runs until SIGTERM/SIGINT or --seconds; every second it
          rewrites --status (JSON): streams started per side, packets sent, how late its own
          sends were against their schedule.

          Every payload is tagged, so that the packet the engine relays on the partner leg can
          be told apart from every other: bytes 0-3 "HLB1", byte 4 the side (0 caller, 1 seat),
          bytes 6-7 the stream index, bytes 8-11 the packet's number in its stream; the rest is
          a fixed pattern. The engine's relay decodes each 20 ms PCMA frame to linear and
          encodes it again on the other leg; A-law decode then encode gives every one of the 256
          codes back unchanged (src/media/g711.rs tests it), so a relayed frame carries the very
          same 160 bytes when both legs use PCMA and the frames stay whole (20 ms in, 20 ms out).

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

Usage:
  bridge_rtp.py drive --callers BASE:N --seats BASE:M --status FILE [--seconds S]
  bridge_rtp.py analyse CAPTURE --ports MIN-MAX [--tail-ms 1000] [--json OUT]
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from analyse_rtp import CAPTURE_STATS, percentile, read_packets, udp_of  # noqa: E402

MAGIC = b"HLB1"
FRAME = 160
CYCLE_MS = 20
PT_PCMA = 8


# ---------------------------------------------------------------------------------- drive


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", MsgHdr), ("len", ctypes.c_uint)]


class SockAddrIn(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("port", ctypes.c_uint16),
                ("addr", ctypes.c_uint32), ("zero", ctypes.c_char * 8)]


PACKET = 12 + FRAME
MMSG_MAX = 1024  # UIO_MAXIOV: messages per sendmmsg call


def drive(args):
    """See the module doc. All packets leave through one socket (127.0.0.1, an ephemeral port)
    with sendmmsg, one call per 1 ms phase: the engine's legs latch to that address (symmetric
    RTP: they accept the first source that sends and answer it), so they all send to it after
    the first packet; the per-port sockets only learn each leg's engine port. One call for
    ~100 packets instead of one each keeps the driver's own CPU down (it shares the 2 cores)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    sendmmsg = libc.sendmmsg
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int

    specs = []
    for side, spec in ((0, args.callers), (1, args.seats)):
        base, n = (int(x) for x in spec.split(":"))
        specs.extend((side, i, base + i) for i in range(n))
    total = len(specs)
    pool = (ctypes.c_char * (PACKET * total))()
    mv = memoryview(pool).cast("B")
    iovs = (IoVec * total)()
    addrs = (SockAddrIn * total)()
    header = struct.Struct("!BBHII")
    tag = struct.Struct("!BBH")
    by_fd = {}
    socks = []
    ep = select.epoll()
    for k, (side, index, port) in enumerate(specs):
        off = k * PACKET
        header.pack_into(mv, off, 0x80, PT_PCMA, 0, 0, 0x48000000 | (side << 16) | index)
        mv[off + 12:off + 16] = MAGIC
        tag.pack_into(mv, off + 16, side, 0, index)
        # A fixed, speech-level pattern after the tag (any A-law bytes survive the relay).
        for i in range(24, PACKET):
            mv[off + i] = (0x55 ^ ((i * 37 + index * 11 + side * 101) & 0x3F)) & 0xFF
        iovs[k].base = ctypes.addressof(pool) + off
        iovs[k].len = PACKET
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
        by_fd[s.fileno()] = k
        ep.register(s.fileno(), select.EPOLLIN)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    out.bind(("127.0.0.1", 0))
    out_fd = out.fileno()

    stop = [False]

    def on_signal(_sig, _frm):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    bins = [[] for _ in range(CYCLE_MS)]       # stream numbers per 1 ms phase
    arrays = [None] * CYCLE_MS                  # their mmsghdr arrays
    phases = random.Random(12345)
    seq = [0] * total
    latched = [0, 0]
    sent = 0
    errors = 0
    skipped_ticks = 0
    # Lateness of each send against its schedule (ms): < 1, < 2, < 5, < 10, < 20, >= 20.
    late_edges = (1.0, 2.0, 5.0, 10.0, 20.0)
    late_hist = [0] * (len(late_edges) + 1)
    late_max = 0.0
    pack_hdr = struct.Struct("!HI").pack_into
    pack_seq = struct.Struct("!I").pack_into
    msg_size = ctypes.sizeof(MMsgHdr)
    t0 = time.monotonic()
    deadline = t0 + args.seconds if args.seconds else None
    next_tick = 1
    next_status = t0

    def write_status(final=False):
        doc = {
            "time": time.time(), "final": final,
            "callers_latched": latched[0], "seats_latched": latched[1],
            "sent": sent, "send_errors": errors, "skipped_ticks": skipped_ticks,
            "late_ms_histogram": dict(zip(["<1", "<2", "<5", "<10", "<20", ">=20"], late_hist)),
            "late_max_ms": round(late_max, 3),
        }
        tmp = args.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, args.status)

    def build(b):
        ids = bins[b]
        arr = (MMsgHdr * len(ids))()
        for j, k in enumerate(ids):
            arr[j].hdr.name = ctypes.addressof(addrs[k])
            arr[j].hdr.namelen = ctypes.sizeof(SockAddrIn)
            arr[j].hdr.iov = ctypes.addressof(iovs[k])
            arr[j].hdr.iovlen = 1
        arrays[b] = arr

    while not stop[0]:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        due = int((now - t0) * 1000.0)
        if due >= next_tick:
            # Every phase at most once per pass: older whole cycles are skipped, not caught up.
            first = max(next_tick, due - CYCLE_MS + 1)
            skipped_ticks += first - next_tick
            for tick in range(first, due + 1):
                b = tick % CYCLE_MS
                ids = bins[b]
                n = len(ids)
                if not n:
                    continue
                for k in ids:
                    q = seq[k]
                    off = k * PACKET
                    pack_hdr(mv, off + 2, q & 0xFFFF, (q * FRAME) & 0xFFFFFFFF)
                    pack_seq(mv, off + 20, q)
                    seq[k] = q + 1
                base = ctypes.addressof(arrays[b])
                done = 0
                while done < n:
                    r = sendmmsg(out_fd, base + done * msg_size, min(n - done, MMSG_MAX), 0)
                    if r <= 0:
                        errors += 1  # this message failed: skip it, send the rest
                        done += 1
                    else:
                        sent += r
                        done += r
                late = (time.monotonic() - t0) * 1000.0 - tick
                k = 0
                while k < len(late_edges) and late >= late_edges[k]:
                    k += 1
                late_hist[k] += n
                if late > late_max:
                    late_max = late
            next_tick = due + 1
        if now >= next_status:
            write_status()
            next_status = now + 1.0
        wait = t0 + next_tick / 1000.0 - time.monotonic()
        for fd, _ev in ep.poll(max(0.0, wait)):
            k = by_fd.get(fd)
            if k is None:
                continue
            try:
                _data, (host, port) = socks[k].recvfrom(2048)
            except OSError:
                continue
            addrs[k].family = socket.AF_INET
            addrs[k].port = socket.htons(port)
            addrs[k].addr = struct.unpack("=I", socket.inet_aton(host))[0]
            ep.unregister(fd)
            del by_fd[fd]
            socks[k].close()  # what the engine sends now goes to the driver's one socket
            latched[specs[k][0]] += 1
            # Its phase in the 20 ms cycle: drawn at random (fixed per stream), as a phone's
            # clock bears no relation to the engine's.
            b = phases.randrange(CYCLE_MS)
            bins[b].append(k)
            build(b)
    write_status(final=True)
    return 0


# -------------------------------------------------------------------------------- analyse


def analyse(args):
    lo, hi = (int(x) for x in args.ports.split("-"))
    ins = {}          # tag -> (time, engine port)
    outs = {}         # tag -> (time, engine port)
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
        if len(payload) < 24 or payload[12:16] != MAGIC:
            other += 1
            continue
        side = payload[16]
        index, seq = struct.unpack_from("!HI", payload, 18)
        tag = (side, index, seq)
        if lo <= dport <= hi and not lo <= sport <= hi:
            if tag in ins:
                dup_in += 1
                continue
            ins[tag] = (t, dport)
            in_streams.setdefault((side, index), []).append(t)
        elif lo <= sport <= hi:
            if tag in outs:
                dup_out += 1
                continue
            outs[tag] = (t, sport)
            eseq = struct.unpack_from("!H", payload, 2)[0]
            out_seq.setdefault(sport, []).append((t, eseq, payload[1] >> 7))
        else:
            other += 1
    if t_first is None:
        print("bridge_rtp: the capture holds no packets", file=sys.stderr)
        return 2

    tail = args.tail_ms / 1000.0
    bridged = {}  # (side, index) -> True when some packet of it came out of the engine
    for tag in outs:
        bridged[tag[:2]] = True
    delays = []
    per_stream = {}  # (side, index) -> delays
    lost = 0
    lost_streams = set()
    counted_in = 0
    unbridged_in = 0
    for tag, (t, _port) in ins.items():
        o = outs.get(tag)
        if o is not None:
            d_ms = (o[0] - t) * 1000.0
            delays.append(d_ms)
            per_stream.setdefault(tag[:2], []).append(d_ms)
            counted_in += 1
            continue
        if t > t_last - tail:
            continue
        if tag[:2] not in bridged:
            unbridged_in += 1
            continue
        counted_in += 1
        lost += 1
        lost_streams.add(tag[:2])
    out_without_in = sum(1 for tag, (t, _p) in outs.items()
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

    streams_in = len(in_streams)
    streams_bridged = sum(1 for k in in_streams if k in bridged)
    report = {
        "capture": args.capture, "ports": args.ports,
        "capture_span_s": round(t_last - t_first, 3),
        "capture_stats": dict(CAPTURE_STATS),
        "streams_in": streams_in,
        "streams_in_by_side": {"caller": sum(1 for k in in_streams if k[0] == 0),
                               "seat": sum(1 for k in in_streams if k[0] == 1)},
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
    print("capture          %.1f s, sampled streams into the engine: %d (%d callers, %d seats), "
          "%d of them relayed"
          % (report["capture_span_s"], streams_in, report["streams_in_by_side"]["caller"],
             report["streams_in_by_side"]["seat"], streams_bridged))
    print("packets          in %d (counted %d), relayed %d, LOST INSIDE THE ENGINE %d "
          "(in %d streams); in of unbridged streams %d; out without in %d; dup in/out %d/%d"
          % (len(ins), counted_in, len(delays), lost, len(lost_streams), unbridged_in,
             out_without_in, dup_in, dup_out))
    if delays:
        print("added delay ms   min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  "
              "mean %.2f" % (d["min"], d["p50"], d["p90"], d["p99"], d["p999"], d["max"],
                             d["mean"]))
        total = float(len(delays))
        print("delay histogram  " + "  ".join(
            "%s:%.1f%%" % (lab, 100.0 * n / total) for lab, n in zip(labels, hist) if n))
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("drive")
    d.add_argument("--callers", required=True, help="BASE:N")
    d.add_argument("--seats", required=True, help="BASE:M")
    d.add_argument("--status", required=True)
    d.add_argument("--seconds", type=float, default=0.0)
    a = sub.add_parser("analyse")
    a.add_argument("capture")
    a.add_argument("--ports", required=True, help="engine RTP port range MIN-MAX")
    a.add_argument("--tail-ms", type=float, default=1000.0)
    a.add_argument("--json")
    args = ap.parse_args()
    try:
        return drive(args) if args.command == "drive" else analyse(args)
    except (OSError, ValueError, struct.error) as e:
        print("bridge_rtp: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
