#!/usr/bin/env python3
"""Audio of both sides of bridged calls, traceable packet by packet (python3 standard library only).

Used by benches/bridged_calls.sh. Two commands:

  drive   Binds the RTP ports the callers' and the seats' SDPs name (127.0.0.1, one socket per
          port: callers BASE..BASE+N-1, seats BASE..BASE+M-1). A port stays silent until the
          engine's first packet arrives on it (the caller's queue music, or the seat leg once
          the seat answered); that packet tells the engine port of the leg. From then on the
          driver sends one PCMA packet every 20 ms to that engine port, at a phase of the 20 ms
          cycle drawn at random for the stream (--slot-us steps, 250 us by default: a phone's
          clock has nothing to do with the engine's). Every packet leaves through one socket of
          the driver with sendmmsg, one call per slot (to keep the driver's CPU down: it shares
          the 2 cores with the engine; the slot bounds the bursts: 1,000 phones in 1 ms slots
          make ~100-packet bursts that hold a core ~0.4 ms, which 2,000 real phones never do); the engine's legs latch to that address (symmetric RTP) and
          send there, to a 4 kB receive buffer nobody reads (the kernel drops what does not
          fit, as at an unread sink). Runs until SIGTERM/SIGINT or --seconds; every second it
          rewrites --status (JSON): streams started per side, packets sent, how late its own
          sends were against their schedule. A pass more than a 20 ms cycle late skips the
          older ticks instead of catching up: those frames are never sent (frames_not_sent),
          the stream goes on with its next packet number 20 ms later (no gap in the numbers).

          Every payload is tagged, so that the packet the engine relays on the partner leg can
          be told apart from every other: bytes 0-3 "hlb1", byte 4 the side (0 caller, 1 seat,
          2 target), byte 5 the mark (below), bytes 6-9 the stream index and 10-17 the packet's
          number in its stream, one hex digit per byte (0xE0 | digit); the rest is a fixed
          pattern. The mark is 1 between SIGUSR1 and SIGUSR2, else 0: the capture filter
          (`bpf --marked`) keeps marked packets only, so dumpcap can be started long before the
          window it records (starting a capture stalled the driver for ~150 ms under load, a
          gap in every stream: better before the calls than in the middle of them). The engine's relay
          decodes each 20 ms PCMA frame to linear and encodes it again on the other leg; A-law
          decode then encode gives every one of the 256 codes back unchanged (src/media/g711.rs
          tests it), so a relayed frame carries the very same 160 bytes when both legs use PCMA
          and the frames stay whole (20 ms in, 20 ms out).

          Every byte of a tagged payload is an A-law code of segment 3 or more (|x| >= 1056,
          see ROBUST): adding up to +-16 to its linear value encodes back to the same code. This
          is what lets a tag cross the conference mixer: there a listener hears the talker plus
          the other parties, and the driver's --silent sides send A-law "silence" 0xD5, which
          decodes to +8, not 0 (A-law has no code for 0). So with the caller tagged and the seat
          and the target silent, the seat hears caller + 8 and the target caller + 8, which
          encode back to the caller's very bytes. (No A-law code decodes to 0 either, so a
          recording of this audio holds a sample 0 only where the engine inserted silence.)

          With --targets, a third set of ports (the sub-centre's, side 2) works as the others.
          With --silent SIDES (e.g. seat,target), those sides send untagged 0xD5 frames.
          The status file also maps every engine port seen to the stream it serves ("legs":
          engine port -> [side, index]), which `analyse --legs` uses to tell which leg each
          relayed copy left on. With --stalls FILE, every moment the driver itself fell behind
          (a send pass >= STALL_MS late, or 20 ms cycles skipped: those packets are never sent)
          is written there at the end (JSON: t0_wall, events [tick ms after t0, ms late, ticks
          skipped]), so that gaps in recordings can be laid against the source's own stalls.

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
          with --marked, only those the driver marked (see drive).

Usage:
  bridge_rtp.py drive --callers BASE:N --seats BASE:M [--targets BASE:K] [--silent SIDES]
                      --status FILE [--seconds S] [--slot-us 250] [--stalls FILE]
  bridge_rtp.py analyse CAPTURE --ports MIN-MAX [--legs STATUS] [--tail-ms 1000] [--json OUT]
  bridge_rtp.py bpf --sample N [--marked]
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

MAGIC = b"hlb1"
FRAME = 160
CYCLE_MS = 20
PT_PCMA = 8
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
# A send pass at least this late (or ticks skipped) is logged in --stalls, at most STALLS_MAX.
STALL_MS = 5.0
STALLS_MAX = 500000
MMSG_MAX = 1024  # UIO_MAXIOV: messages per sendmmsg call


def drive(args):
    """See the module doc. All packets leave through one socket (127.0.0.1, an ephemeral port)
    with sendmmsg, one call per slot of the cycle: the engine's legs latch to that address (symmetric
    RTP: they accept the first source that sends and answer it), so they all send to it after
    the first packet; the per-port sockets only learn each leg's engine port. One call per slot
    instead of one per packet keeps the driver's own CPU down (it shares the 2 cores).
    Ticks count slots; lateness and stalls are reported in ms."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    sendmmsg = libc.sendmmsg
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int

    specs = []
    for side, spec in ((0, args.callers), (1, args.seats), (2, args.targets)):
        if not spec:
            continue
        base, n = (int(x) for x in spec.split(":"))
        specs.extend((side, i, base + i) for i in range(n))
    silent = {SIDES.index(x) for x in args.silent.split(",") if x} if args.silent else set()
    total = len(specs)
    pool = (ctypes.c_char * (PACKET * total))()
    mv = memoryview(pool).cast("B")
    iovs = (IoVec * total)()
    addrs = (SockAddrIn * total)()
    header = struct.Struct("!BBHII")
    by_fd = {}
    socks = []
    ep = select.epoll()
    for k, (side, index, port) in enumerate(specs):
        off = k * PACKET
        header.pack_into(mv, off, 0x80, PT_PCMA, 0, 0, 0x48000000 | (side << 16) | index)
        if side in silent:
            mv[off + 12:off + PACKET] = bytes([ALAW_SILENCE]) * FRAME
        else:
            mv[off + TAG_MAGIC:off + TAG_SIDE] = MAGIC
            mv[off + TAG_SIDE:off + TAG_INDEX] = bytes((DIGIT | side, DIGIT))
            mv[off + TAG_INDEX:off + TAG_SEQ] = _digits(index, 4)
            # A fixed pattern of loud codes after the tag (see ROBUST).
            for i in range(TAG_END, PACKET):
                mv[off + i] = ROBUST[(i * 37 + index * 11 + side * 101) % len(ROBUST)]
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
    # SIGUSR1 / SIGUSR2: mark the tagged packets from now on / no longer (the capture window).
    want_mark = [False]
    marked = [False]

    def on_mark(sig, _frm):
        want_mark[0] = sig == signal.SIGUSR1

    signal.signal(signal.SIGUSR1, on_mark)
    signal.signal(signal.SIGUSR2, on_mark)
    tagged_offsets = [k * PACKET + TAG_MARK for k in range(total) if specs[k][0] not in silent]

    if args.slot_us <= 0 or (CYCLE_MS * 1000) % args.slot_us:
        print(f"--slot-us must divide {CYCLE_MS * 1000}", file=sys.stderr)
        return 2
    slot_ms = args.slot_us / 1000.0
    slots = CYCLE_MS * 1000 // args.slot_us  # slots per 20 ms cycle
    bins = [[] for _ in range(slots)]          # stream numbers per slot of the cycle
    arrays = [None] * slots                    # their mmsghdr arrays
    phases = random.Random(12345)
    seq = [0] * total
    tagged = [specs[k][0] not in silent for k in range(total)]
    latched = [0, 0, 0]
    legs = {}  # engine port -> [side, index]
    sent = 0
    errors = 0
    skipped_ticks = 0
    unsent = [0]  # frames never sent: their stream's 20 ms tick was skipped
    # Lateness of each send against its schedule (ms): < 1, < 2, < 5, < 10, < 20, >= 20.
    late_edges = (1.0, 2.0, 5.0, 10.0, 20.0)
    late_hist = [0] * (len(late_edges) + 1)
    late_max = 0.0
    pack_hdr = struct.Struct("!HI").pack_into
    pack_seq = struct.Struct("!Q").pack_into
    # The packet number as 8 hex digits (DIGIT | d) in one 64-bit store: SPREAD[v] puts the 4
    # hex digits of a 16-bit v one per byte.
    spread = [0] * 65536
    for v in range(65536):
        spread[v] = ((v >> 12) << 24) | (((v >> 8) & 15) << 16) | (((v >> 4) & 15) << 8) | (v & 15)
    digits_mask = 0xE0E0E0E0E0E0E0E0
    msg_size = ctypes.sizeof(MMsgHdr)
    t0 = time.monotonic()
    t0_wall = time.time()
    # Moments the driver itself fell behind (see --stalls): [tick ms, ms late, ticks skipped].
    stalls = []
    deadline = t0 + args.seconds if args.seconds else None
    next_tick = 1
    next_status = t0

    def write_status(final=False):
        doc = {
            "time": time.time(), "final": final,
            "callers_latched": latched[0], "seats_latched": latched[1],
            "targets_latched": latched[2],
            "sent": sent, "send_errors": errors, "slot_us": args.slot_us,
            "skipped_ticks": skipped_ticks,
            "frames_not_sent": unsent[0],
            "late_ms_histogram": dict(zip(["<1", "<2", "<5", "<10", "<20", ">=20"], late_hist)),
            "late_max_ms": round(late_max, 3),
            "legs": legs,
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
        if want_mark[0] != marked[0]:
            marked[0] = want_mark[0]
            code = MARK_ON if marked[0] else DIGIT
            for off in tagged_offsets:
                mv[off] = code
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        due = int((now - t0) * 1000.0 / slot_ms)
        if due >= next_tick:
            # Every slot at most once per pass: older whole cycles are skipped, not caught up.
            first = max(next_tick, due - slots + 1)
            skipped_ticks += first - next_tick
            for tick in range(next_tick, first):
                unsent[0] += len(bins[tick % slots])
            if first > next_tick and len(stalls) < STALLS_MAX:
                at = next_tick * slot_ms
                stalls.append((round(at, 3), round((now - t0) * 1000.0 - at, 1), first - next_tick))
            for tick in range(first, due + 1):
                b = tick % slots
                ids = bins[b]
                n = len(ids)
                if not n:
                    continue
                for k in ids:
                    q = seq[k]
                    off = k * PACKET
                    pack_hdr(mv, off + 2, q & 0xFFFF, (q * FRAME) & 0xFFFFFFFF)
                    if tagged[k]:
                        pack_seq(mv, off + TAG_SEQ,
                                 (spread[(q >> 16) & 0xFFFF] << 32) | spread[q & 0xFFFF] | digits_mask)
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
                late = (time.monotonic() - t0) * 1000.0 - tick * slot_ms
                k = 0
                while k < len(late_edges) and late >= late_edges[k]:
                    k += 1
                late_hist[k] += n
                if late >= STALL_MS and len(stalls) < STALLS_MAX:
                    stalls.append((round(tick * slot_ms, 3), round(late, 1), 0))
                if late > late_max:
                    late_max = late
            next_tick = due + 1
        if now >= next_status:
            write_status()
            next_status = now + 1.0
        # epoll's timeout has 1 ms steps: shorter waits sleep, then look at the ports at once.
        wait = t0 + next_tick * slot_ms / 1000.0 - time.monotonic()
        if 0.0 < wait < 0.001:
            time.sleep(wait)
            wait = 0.0
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
            legs[port] = [specs[k][0], specs[k][1]]
            # Its phase in the 20 ms cycle: drawn at random (fixed per stream), as a phone's
            # clock bears no relation to the engine's.
            b = phases.randrange(slots)
            bins[b].append(k)
            build(b)
    write_status(final=True)
    if args.stalls:
        with open(args.stalls, "w") as f:
            json.dump({"t0_wall": t0_wall, "stall_ms": STALL_MS, "truncated": len(stalls) >= STALLS_MAX,
                       "events": stalls}, f)
    return 0


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
    d = sub.add_parser("drive")
    d.add_argument("--callers", required=True, help="BASE:N")
    d.add_argument("--seats", required=True, help="BASE:M")
    d.add_argument("--targets", help="BASE:K (a sub-centre's ports, side 2)")
    d.add_argument("--silent", default="", help="sides sending untagged 0xD5, e.g. seat,target")
    d.add_argument("--status", required=True)
    d.add_argument("--seconds", type=float, default=0.0)
    d.add_argument("--slot-us", type=int, default=250,
                   help="pacing step in us: phases are drawn in these steps, one sendmmsg each")
    d.add_argument("--stalls", help="write the moments the driver fell behind here (JSON), at the end")
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
    run = {"drive": drive, "analyse": analyse, "bpf": bpf, "selftest": selftest}[args.command]
    try:
        return run(args)
    except (OSError, ValueError, struct.error) as e:
        print("bridge_rtp: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
