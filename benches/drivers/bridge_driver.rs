//! The RTP of both sides of bridged calls, traceable packet by packet: the audio source of
//! benches/bridged_calls.sh (which builds it with `cargo build --release --example bridge_driver`).
//! benches/bridge_rtp.py reads what it sends (`analyse`, `bpf`, `selftest`).
//!
//! Usage:
//!   bridge_driver --callers BASE:N --seats BASE:M [--targets BASE:K] [--silent SIDES]
//!                 --status FILE [--seconds S] [--slot-us 250] [--stalls FILE]
//!
//! Binds the RTP ports the callers' and the seats' SDPs name (127.0.0.1, one socket per port:
//! callers BASE..BASE+N-1, seats BASE..BASE+M-1). A port stays silent until the engine's first
//! packet arrives on it (the caller's queue music, or the seat leg once the seat answered); that
//! packet tells the engine port of the leg. From then on the driver sends one PCMA packet every
//! 20 ms to that engine port, at a phase of the 20 ms cycle drawn at random for the stream
//! (--slot-us steps, 250 us by default: a phone's clock has nothing to do with the engine's).
//! Every packet leaves through one socket of the driver with sendmmsg, one call per slot (to keep
//! the driver's CPU down: it shares the 2 cores with the engine; the slot bounds the bursts:
//! 1,000 phones in 1 ms slots make ~100-packet bursts that hold a core ~0.4 ms, which 2,000 real
//! phones never do); the engine's legs latch to that address (symmetric RTP) and send there, to
//! a 4 kB receive buffer nobody reads (the kernel drops what does not fit, as at an unread sink).
//! Runs until SIGTERM/SIGINT or --seconds; every second it rewrites --status (JSON): streams
//! started per side, packets sent, how late its own sends were against their schedule. A pass
//! more than a 20 ms cycle late skips the older ticks instead of catching up: those frames are
//! never sent (frames_not_sent), the stream goes on with its next packet number 20 ms later (no
//! gap in the numbers).
//!
//! Packet: a 12-byte RTP header (V=2, PT 8 PCMA, sequence = packet number & 0xFFFF, timestamp =
//! number * 160, SSRC 0x48000000 | side << 16 | index), then 160 bytes of payload. Every payload
//! is tagged, so that the packet the engine relays on the partner leg can be told apart from
//! every other: bytes 0-3 "hlb1", byte 4 the side (0 caller, 1 seat, 2 target), byte 5 the mark
//! (below), bytes 6-9 the stream index and 10-17 the packet's number in its stream, one hex digit
//! per byte (0xE0 | digit); the rest is a fixed pattern (byte at UDP payload offset i:
//! ROBUST[(i * 37 + index * 11 + side * 101) % len(ROBUST)]). The mark is 0xE1 between SIGUSR1
//! and SIGUSR2, else 0xE0: the capture filter (`bridge_rtp.py bpf --marked`) keeps marked packets
//! only, so dumpcap can be started long before the window it records (starting a capture stalled
//! the driver for ~150 ms under load, a gap in every stream: better before the calls than in the
//! middle of them). The engine's relay decodes each 20 ms PCMA frame to linear and encodes it
//! again on the other leg; A-law decode then encode gives every one of the 256 codes back
//! unchanged (src/media/g711.rs tests it), so a relayed frame carries the very same 160 bytes
//! when both legs use PCMA and the frames stay whole (20 ms in, 20 ms out).
//!
//! Every byte of a tagged payload is an A-law code of segment 3 or more (|x| >= 1056, ROBUST):
//! adding up to +-16 to its linear value encodes back to the same code (`bridge_rtp.py selftest`
//! checks it). This is what lets a tag cross the conference mixer: there a listener hears the
//! talker plus the other parties, and the --silent sides send A-law "silence" 0xD5, which
//! decodes to +8, not 0 (A-law has no code for 0). So with the caller tagged and the seat and
//! the target silent, the seat hears caller + 8 and the target caller + 8, which encode back to
//! the caller's very bytes. (No A-law code decodes to 0 either, so a recording of this audio
//! holds a sample 0 only where the engine inserted silence.)
//!
//! With --targets, a third set of ports (the sub-centre's, side 2) works as the others. With
//! --silent SIDES (e.g. seat,target), those sides send untagged 0xD5 frames. The status file
//! also maps every engine port seen to the stream it serves ("legs": engine port -> [side,
//! index]), which `bridge_rtp.py analyse --legs` uses to tell which leg each relayed copy left
//! on. With --stalls FILE, every moment the driver itself fell behind (a send pass >= 5 ms late,
//! or 20 ms cycles skipped: those packets are never sent) is written there at the end (JSON:
//! t0_wall, stall_ms, truncated, events [tick ms after t0, ms late, ticks skipped]), so that gaps
//! in recordings can be laid against the source's own stalls (benches/check_recordings.py).

use serde::ser::SerializeMap;
use serde::Serialize;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

/// A stream sends one 20 ms frame per cycle.
const CYCLE_US: u32 = 20_000;
/// Bytes of PCMA per 20 ms frame (8 kHz), and the RTP timestamp step.
const FRAME: usize = 160;
const PACKET: usize = 12 + FRAME;
const PT_PCMA: u8 = 8;
const ALAW_SILENCE: u8 = 0xD5;
/// DIGIT | d carries the hex digit d (an A-law code of segment 3).
const DIGIT: u8 = 0xE0;
const MARK_ON: u8 = DIGIT | 1;
const MAGIC: &[u8; 4] = b"hlb1";
// Offsets in the UDP payload (RTP header of 12 bytes, then the tag).
const TAG_MAGIC: usize = 12;
const TAG_SIDE: usize = 16;
const TAG_MARK: usize = 17;
const TAG_INDEX: usize = 18;
const TAG_SEQ: usize = 22;
const TAG_END: usize = 30;
const SIDES: [&str; 3] = ["caller", "seat", "target"];
/// A send pass at least this late (or ticks skipped) is logged in --stalls, at most STALLS_MAX.
const STALL_MS: f64 = 5.0;
const STALLS_MAX: usize = 500_000;
/// UIO_MAXIOV: messages per sendmmsg call.
const MMSG_MAX: usize = 1024;
const LATE_EDGES_MS: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 20.0];
const LATE_LABELS: [&str; 6] = ["<1", "<2", "<5", "<10", "<20", ">=20"];
/// A millisecond in ns.
const MS: u64 = 1_000_000;

/// Set by SIGTERM/SIGINT: stop, write the final status.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR1, cleared by SIGUSR2: mark the tagged packets (the capture window).
static WANT_MARK: AtomicBool = AtomicBool::new(false);

/// The command line.
struct Args {
    /// (side, first port, ports) per side given.
    sides: Vec<(u8, u16, u32)>,
    silent: [bool; 3],
    status: OsString,
    seconds: f64,
    slot_us: u32,
    stalls: Option<OsString>,
}

/// The one-line usage, printed with argument errors and --help.
const USAGE: &str = "usage: bridge_driver --callers BASE:N --seats BASE:M [--targets BASE:K] \
[--silent SIDES] --status FILE [--seconds S] [--slot-us 250] [--stalls FILE]";

/// BASE:N as (first port, count), all ports within 1..=65535.
fn parse_ports(flag: &str, v: &str) -> Result<(u16, u32), String> {
    let bad = || format!("{flag} wants BASE:N (ports 1-65535), not {v:?}");
    let (base, n) = v.split_once(':').ok_or_else(bad)?;
    let base: u32 = base.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if base == 0 || base + n > 65_536 {
        return Err(bad());
    }
    Ok((base as u16, n))
}

/// The options taking a value (all of them).
const OPTIONS: [&str; 8] = [
    "--callers",
    "--seats",
    "--targets",
    "--silent",
    "--status",
    "--seconds",
    "--slot-us",
    "--stalls",
];

/// Parses std::env::args (options as `--name value` or `--name=value`); None: --help.
fn parse_args(mut argv: impl Iterator<Item = OsString>) -> Result<Option<Args>, String> {
    let mut ports: [Option<(u16, u32)>; 3] = [None; 3];
    let mut args = Args {
        sides: Vec::new(),
        silent: [false; 3],
        status: OsString::new(),
        seconds: 0.0,
        slot_us: 250,
        stalls: None,
    };
    while let Some(arg) = argv.next() {
        let arg = arg.into_string().map_err(|a| format!("not UTF-8: {a:?}"))?;
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(OsString::from(v))),
            None => (arg, None),
        };
        if !OPTIONS.contains(&name.as_str()) {
            return Err(format!("unknown option {name}"));
        }
        let value = match inline.or_else(|| argv.next()) {
            Some(v) => v,
            None => return Err(format!("{name} wants a value")),
        };
        // File names need not be UTF-8.
        match name.as_str() {
            "--status" => {
                args.status = value;
                continue;
            }
            "--stalls" => {
                args.stalls = Some(value);
                continue;
            }
            _ => {}
        }
        let value = value
            .into_string()
            .map_err(|v| format!("{name}: not UTF-8: {v:?}"))?;
        match name.as_str() {
            "--callers" => ports[0] = Some(parse_ports(&name, &value)?),
            "--seats" => ports[1] = Some(parse_ports(&name, &value)?),
            "--targets" => ports[2] = Some(parse_ports(&name, &value)?),
            "--silent" => {
                for s in value.split(',').filter(|s| !s.is_empty()) {
                    let side = SIDES.iter().position(|x| *x == s);
                    let side = side.ok_or_else(|| {
                        format!("--silent: unknown side {s:?} (caller, seat, target)")
                    })?;
                    args.silent[side] = true;
                }
            }
            "--seconds" => {
                args.seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {value:?}"))?;
                if !(args.seconds >= 0.0 && args.seconds.is_finite()) {
                    return Err("--seconds must be a finite number >= 0".into());
                }
            }
            "--slot-us" => {
                args.slot_us = value
                    .parse()
                    .map_err(|_| format!("--slot-us: not a number: {value:?}"))?
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if ports[0].is_none() || ports[1].is_none() || args.status.is_empty() {
        return Err("--callers, --seats and --status are required".into());
    }
    if args.slot_us == 0 || !CYCLE_US.is_multiple_of(args.slot_us) {
        return Err(format!("--slot-us must divide {CYCLE_US}"));
    }
    args.sides = (0u8..)
        .zip(ports)
        .filter_map(|(side, p)| p.map(|(base, n)| (side, base, n)))
        .collect();
    Ok(Some(args))
}

/// A-law codes of segment >= 3: the +-16 of two silent parties (0xD5 = +8 each) stays inside
/// their quantisation step, so they encode back to themselves.
fn robust_codes() -> Vec<u8> {
    (0..=255u8)
        .filter(|c| ((c ^ 0x55) & 0x70) >> 4 >= 3)
        .collect()
}

/// Writes the fixed bytes of stream (side, index)'s packet: everything but sequence,
/// timestamp and packet number, which `stamp` updates in place.
fn build_packet(p: &mut [u8], side: u8, index: u32, silent: bool, robust: &[u8]) {
    p[0] = 0x80;
    p[1] = PT_PCMA;
    p[8..12].copy_from_slice(&(0x4800_0000 | u32::from(side) << 16 | index).to_be_bytes());
    if silent {
        p[12..].fill(ALAW_SILENCE);
        return;
    }
    p[TAG_MAGIC..TAG_SIDE].copy_from_slice(MAGIC);
    p[TAG_SIDE] = DIGIT | side;
    p[TAG_MARK] = DIGIT;
    for (i, b) in p[TAG_INDEX..TAG_SEQ].iter_mut().enumerate() {
        *b = DIGIT | ((index >> (4 * (3 - i))) & 0x0F) as u8;
    }
    let (index, side) = (index as usize, usize::from(side));
    for (i, b) in p.iter_mut().enumerate().skip(TAG_END) {
        *b = robust[(i * 37 + index * 11 + side * 101) % robust.len()];
    }
}

/// Sets packet number `n`: RTP sequence and timestamp, and (tagged) its 8 hex digits.
fn stamp(p: &mut [u8], n: u64, tagged: bool) {
    p[2..4].copy_from_slice(&(n as u16).to_be_bytes());
    p[4..8].copy_from_slice(&((n as u32).wrapping_mul(FRAME as u32)).to_be_bytes());
    if tagged {
        // Spread the 8 nibbles of the low 32 bits one per byte, most significant first.
        let mut x = n & 0xFFFF_FFFF;
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFF;
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FF;
        x = (x | x << 4) & 0x0F0F_0F0F_0F0F_0F0F;
        p[TAG_SEQ..TAG_END].copy_from_slice(&(x | 0xE0E0_E0E0_E0E0_E0E0).to_be_bytes());
    }
}

/// Only stores to atomics: async-signal-safe.
extern "C" fn on_signal(sig: libc::c_int) {
    match sig {
        libc::SIGUSR1 => WANT_MARK.store(true, Relaxed),
        libc::SIGUSR2 => WANT_MARK.store(false, Relaxed),
        _ => STOP.store(true, Relaxed),
    }
}

/// Installs `on_signal` without SA_RESTART, so that a sleep ends at once on a signal.
fn install_signals() -> io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler only stores to atomics.
        let rc = unsafe {
            let mut sa: libc::sigaction = mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CLOCK_MONOTONIC in ns.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reaches `at` ns (or a signal arrives).
fn sleep_until(at: u64) {
    let ts = libc::timespec {
        tv_sec: (at / 1_000_000_000) as libc::time_t,
        tv_nsec: (at % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: ts is a valid timespec; the remainder is not wanted with TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Wall-clock time in seconds since the epoch (as Python's time.time()).
fn wall_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// x rounded to `digits` decimals (as Python's round()).
fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Memory the kernel reads at every sendmmsg: allocated once and never moved or freed, so the
/// prebuilt mmsghdr arrays can point into it; every access goes through its one raw pointer.
struct Fixed<T> {
    ptr: *mut T,
    len: usize,
}

impl<T: Clone> Fixed<T> {
    /// `len` copies of `fill`, leaked: they live as long as the process.
    fn new(len: usize, fill: T) -> Self {
        Fixed {
            ptr: Box::leak(vec![fill; len].into_boxed_slice()).as_mut_ptr(),
            len,
        }
    }

    /// A pointer to element `i`, for the kernel (iovec, mmsghdr) or a single write.
    fn at(&self, i: usize) -> *mut T {
        assert!(i < self.len);
        // SAFETY: in bounds of the allocation.
        unsafe { self.ptr.add(i) }
    }

    /// Elements start..start + len, to update in place.
    fn slice(&mut self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.len);
        // SAFETY: in bounds; &mut self makes it the only reference (the kernel reads the memory
        // only during sendmmsg, when none is alive).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Engine port -> [side, index], in the order the ports were first seen (as the Python wrote it).
#[derive(Default)]
struct Legs {
    list: Vec<(u16, [u32; 2])>,
    pos: HashMap<u16, usize>,
}

impl Serialize for Legs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.list.len()))?;
        for (port, v) in &self.list {
            m.serialize_entry(port, v)?;
        }
        m.end()
    }
}

/// The lateness histogram, keyed "<1" .. ">=20".
struct Hist([u64; 6]);

impl Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6))?;
        for (label, n) in LATE_LABELS.iter().zip(self.0) {
            m.serialize_entry(label, &n)?;
        }
        m.end()
    }
}

/// The status file (the keys benches/bridged_calls.sh and bridge_rtp.py analyse read).
#[derive(Serialize)]
struct Status<'a> {
    time: f64,
    #[serde(rename = "final")]
    is_final: bool,
    callers_latched: u64,
    seats_latched: u64,
    targets_latched: u64,
    sent: u64,
    send_errors: u64,
    slot_us: u32,
    skipped_ticks: u64,
    frames_not_sent: u64,
    late_ms_histogram: &'a Hist,
    late_max_ms: f64,
    legs: &'a Legs,
}

/// The --stalls file.
#[derive(Serialize)]
struct Stalls<'a> {
    t0_wall: f64,
    stall_ms: f64,
    truncated: bool,
    events: &'a [(f64, f64, u64)],
}

/// JSON with Python's json.dump separators (", ", ": "), so files read the same as before.
struct PyStyle;

/// The separator Python writes before every array item or object key but the first.
fn py_comma<W: ?Sized + io::Write>(w: &mut W, first: bool) -> io::Result<()> {
    if first {
        Ok(())
    } else {
        w.write_all(b", ")
    }
}

impl serde_json::ser::Formatter for PyStyle {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        py_comma(w, first)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        py_comma(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// Writes `doc` to `path` through `path.tmp` and a rename: readers never see half a file.
fn write_json(path: &OsString, doc: &impl Serialize) -> Result<(), String> {
    let mut buf = Vec::with_capacity(4096);
    doc.serialize(&mut serde_json::Serializer::with_formatter(
        &mut buf, PyStyle,
    ))
    .map_err(|e| e.to_string())?;
    let mut tmp = path.clone();
    tmp.push(".tmp");
    std::fs::write(&tmp, &buf).map_err(|e| format!("{}: {e}", tmp.to_string_lossy()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.to_string_lossy()))
}

/// Sets a socket buffer size (SO_RCVBUF / SO_SNDBUF).
fn set_buf(fd: libc::c_int, opt: libc::c_int, bytes: libc::c_int) -> io::Result<()> {
    // SAFETY: fd is an open socket; the option value is a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&bytes as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// xorshift64*: the streams' phases, fixed by the seed from run to run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }
}

/// The mmsghdr array of one slot: one message per stream, its packet to its engine port.
fn build_slot(
    ids: &[usize],
    iovs: &Fixed<libc::iovec>,
    addrs: &Fixed<libc::sockaddr_in>,
) -> Vec<libc::mmsghdr> {
    ids.iter()
        .map(|&k| {
            // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
            let mut m: libc::mmsghdr = unsafe { mem::zeroed() };
            m.msg_hdr.msg_name = addrs.at(k).cast();
            m.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            m.msg_hdr.msg_iov = iovs.at(k);
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect()
}

/// Binds the ports, then paces and sends until stopped; writes the status (and stalls) files.
fn run(args: &Args) -> Result<(), String> {
    let robust = robust_codes();
    let specs: Vec<(u8, u32, u16)> = args
        .sides
        .iter()
        .flat_map(|&(side, base, n)| (0..n).map(move |i| (side, i, base + i as u16)))
        .collect();
    let total = specs.len();
    let tagged: Vec<bool> = specs
        .iter()
        .map(|s| !args.silent[usize::from(s.0)])
        .collect();
    let mut pool = Fixed::new(PACKET * total, 0u8);
    let iovs = Fixed::new(
        total,
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
    );
    // SAFETY: all-zero is a valid sockaddr_in.
    let addrs = Fixed::new(total, unsafe { mem::zeroed::<libc::sockaddr_in>() });
    // SAFETY: epoll_create1 has no memory arguments.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(format!("epoll_create1: {}", io::Error::last_os_error()));
    }
    let mut socks: Vec<Option<UdpSocket>> = Vec::with_capacity(total);
    for (k, &(side, index, port)) in specs.iter().enumerate() {
        build_packet(
            pool.slice(k * PACKET, PACKET),
            side,
            index,
            !tagged[k],
            &robust,
        );
        // SAFETY: k < total; the iovec points at stream k's packet inside the pool.
        unsafe {
            *iovs.at(k) = libc::iovec {
                iov_base: pool.at(k * PACKET).cast(),
                iov_len: PACKET,
            }
        };
        let s = UdpSocket::bind(("127.0.0.1", port))
            .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        set_buf(s.as_raw_fd(), libc::SO_RCVBUF, 4096).map_err(|e| format!("SO_RCVBUF: {e}"))?;
        s.set_nonblocking(true)
            .map_err(|e| format!("port {port}: {e}"))?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: k as u64,
        };
        // SAFETY: ep and the socket are open; ev is a valid epoll_event.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) } != 0 {
            return Err(format!("epoll_ctl: {}", io::Error::last_os_error()));
        }
        socks.push(Some(s));
    }
    let out = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let out_fd = out.as_raw_fd();
    set_buf(out_fd, libc::SO_RCVBUF, 4096).map_err(|e| format!("SO_RCVBUF: {e}"))?;
    set_buf(out_fd, libc::SO_SNDBUF, 4 << 20).map_err(|e| format!("SO_SNDBUF: {e}"))?;
    install_signals().map_err(|e| format!("sigaction: {e}"))?;

    let slots = (CYCLE_US / args.slot_us) as usize;
    let slot_ns = u64::from(args.slot_us) * 1000;
    let slot_ms = f64::from(args.slot_us) / 1000.0;
    let mut bins: Vec<Vec<usize>> = vec![Vec::new(); slots]; // stream numbers per slot of the cycle
    let mut arrays: Vec<Vec<libc::mmsghdr>> = (0..slots).map(|_| Vec::new()).collect();
    let mut phases = Rng(12345);
    let mut seq = vec![0u64; total];
    let tagged_ids: Vec<usize> = (0..total).filter(|&k| tagged[k]).collect();
    let mut open = total; // port sockets still waiting for the engine's first packet
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut rx = [0u8; 2048];
    let (mut latched, mut legs) = ([0u64; 3], Legs::default());
    let (mut sent, mut errors, mut skipped_ticks, mut unsent) = (0u64, 0u64, 0u64, 0u64);
    let (mut late_hist, mut late_max) = (Hist([0; 6]), 0.0f64);
    let mut marked = false;
    // Moments the driver itself fell behind (see --stalls): [tick ms, ms late, ticks skipped].
    let mut stalls: Vec<(f64, f64, u64)> = Vec::new();
    let t0 = monotonic_ns();
    let t0_wall = wall_s();
    let deadline = (args.seconds > 0.0).then(|| t0 + (args.seconds * 1e9) as u64);
    let mut next_tick: u64 = 1;
    let mut next_status = t0;

    macro_rules! status {
        ($final:expr) => {
            write_json(
                &args.status,
                &Status {
                    time: wall_s(),
                    is_final: $final,
                    callers_latched: latched[0],
                    seats_latched: latched[1],
                    targets_latched: latched[2],
                    sent,
                    send_errors: errors,
                    slot_us: args.slot_us,
                    skipped_ticks,
                    frames_not_sent: unsent,
                    late_ms_histogram: &late_hist,
                    late_max_ms: round_to(late_max, 3),
                    legs: &legs,
                },
            )
        };
    }

    while !STOP.load(Relaxed) {
        let want = WANT_MARK.load(Relaxed);
        if want != marked {
            marked = want;
            let code = if marked { MARK_ON } else { DIGIT };
            for &k in &tagged_ids {
                pool.slice(k * PACKET + TAG_MARK, 1)[0] = code;
            }
        }
        let now = monotonic_ns();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let due = (now - t0) / slot_ns;
        if due >= next_tick {
            // Every slot at most once per pass: older whole cycles are skipped, not caught up.
            let first = next_tick.max((due + 1).saturating_sub(slots as u64));
            skipped_ticks += first - next_tick;
            for tick in next_tick..first {
                unsent += bins[(tick % slots as u64) as usize].len() as u64;
            }
            if first > next_tick && stalls.len() < STALLS_MAX {
                let at = next_tick as f64 * slot_ms;
                stalls.push((
                    round_to(at, 3),
                    round_to((now - t0) as f64 / 1e6 - at, 1),
                    first - next_tick,
                ));
            }
            for tick in first..=due {
                let b = (tick % slots as u64) as usize;
                let n = bins[b].len();
                if n == 0 {
                    continue;
                }
                for &k in &bins[b] {
                    stamp(pool.slice(k * PACKET, PACKET), seq[k], tagged[k]);
                    seq[k] += 1;
                }
                let mut done = 0;
                while done < n {
                    let batch = (n - done).min(MMSG_MAX) as libc::c_uint;
                    // SAFETY: done < n = arrays[b].len(); its messages point into pool, iovs
                    // and addrs, which live (unmoved) to the end of the process.
                    let r = unsafe {
                        libc::sendmmsg(out_fd, arrays[b].as_mut_ptr().add(done), batch, 0)
                    };
                    if r <= 0 {
                        errors += 1; // this message failed: skip it, send the rest
                        done += 1;
                    } else {
                        sent += r as u64;
                        done += r as usize;
                    }
                }
                let late = (monotonic_ns() - t0) as f64 / 1e6 - tick as f64 * slot_ms;
                late_hist.0[LATE_EDGES_MS.iter().take_while(|&&e| late >= e).count()] += n as u64;
                if late >= STALL_MS && stalls.len() < STALLS_MAX {
                    stalls.push((round_to(tick as f64 * slot_ms, 3), round_to(late, 1), 0));
                }
                late_max = late_max.max(late);
            }
            next_tick = due + 1;
        }
        if now >= next_status {
            status!(false)?;
            next_status = now + 1000 * MS;
        }
        // epoll's timeout has 1 ms steps: shorter waits sleep, then look at the ports at once.
        let next_at = t0 + next_tick * slot_ns;
        let wait = next_at.saturating_sub(monotonic_ns());
        let timeout = if wait >= MS {
            (wait / MS) as libc::c_int
        } else {
            0
        };
        if timeout == 0 && wait > 0 {
            sleep_until(next_at);
        }
        if open == 0 {
            if timeout > 0 {
                sleep_until(next_at);
            }
            continue;
        }
        // SAFETY: events is a writable buffer of events.len() entries.
        let got = unsafe {
            libc::epoll_wait(
                ep,
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout,
            )
        };
        for ev in events.iter().take(got.max(0) as usize) {
            let k = ev.u64 as usize;
            let Some(Some(s)) = socks.get(k) else {
                continue;
            };
            let Ok((_, SocketAddr::V4(from))) = s.recv_from(&mut rx) else {
                continue;
            };
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: from.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*from.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: k < total; no reference into addrs is alive.
            unsafe { *addrs.at(k) = sa };
            // SAFETY: ep and the socket are open (a null event is allowed for EPOLL_CTL_DEL).
            unsafe {
                libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, s.as_raw_fd(), std::ptr::null_mut())
            };
            socks[k] = None; // closed: what the engine sends now goes to the driver's one socket
            open -= 1;
            let (side, index, _) = specs[k];
            latched[usize::from(side)] += 1;
            let leg = [u32::from(side), index];
            match legs.pos.get(&from.port()) {
                Some(&i) => legs.list[i].1 = leg,
                None => {
                    legs.pos.insert(from.port(), legs.list.len());
                    legs.list.push((from.port(), leg));
                }
            }
            // Its phase in the 20 ms cycle: drawn at random (fixed per stream), as a phone's
            // clock bears no relation to the engine's.
            let b = phases.below(slots as u64) as usize;
            bins[b].push(k);
            arrays[b] = build_slot(&bins[b], &iovs, &addrs);
        }
    }
    status!(true)?;
    if let Some(path) = &args.stalls {
        let doc = Stalls {
            t0_wall,
            stall_ms: STALL_MS,
            truncated: stalls.len() >= STALLS_MAX,
            events: &stalls,
        };
        write_json(path, &doc)?;
    }
    Ok(())
}

/// Exit status 0 once stopped, 2 on bad arguments or a failed socket or file operation.
fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}\n(see the top of benches/drivers/bridge_driver.rs)");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bridge_driver: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridge_driver: {e}");
            ExitCode::from(2)
        }
    }
}
