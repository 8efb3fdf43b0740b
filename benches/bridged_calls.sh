#!/usr/bin/env bash
# Bridged calls: callers dial 12345, the queue offers each call to a ready seat, the seat's phone
# answers and the engine relays the audio between the two RTP legs. Target (issue): at least
# 1,000 concurrent bridged calls on this 2-core machine with no packet lost inside the engine and
# p99 added delay under 1 ms; report CPU and memory per call.
#
#   bash benches/bridged_calls.sh
#
# How (one engine, everything on 127.0.0.1):
#  1. a seats file with BRIDGE_SEATS seats (username = the seat phone's RTP port, skill general)
#     and a dialplan 12345 -> queue general (wrap_up_s = 0, announce_every_s = 0, no recording
#     unless BRIDGE_RECORD=1) are written to the scratch directory; the engine runs with the
#     desk API on a free port;
#  2. SIPp registers every seat phone (tests/sipp/seat_register.xml, digest, BRIDGE_REG_RATE/s),
#     then every seat is logged in ready through the desk API (POST /seats/{id}/login);
#  3. the RTP driver (benches/drivers/bridge_driver.rs, built with cargo) owns the RTP ports of
#     all callers and seats: each port starts sending PCMA every 20 ms (tagged payloads) once the
#     engine sends to it;
#  4. one SIPp UAS answers for all seat phones (benches/sipp/seat_phones.xml) and stays until the
#     engine's BYE; SIPp callers (benches/sipp/uac_caller_hold.xml) dial at BRIDGE_RATE/s, at most
#     BRIDGE_CALLS, each hanging up after BRIDGE_HOLD_S;
#  5. once every call is bridged (the driver's seat ports all receive from the engine) and
#     BRIDGE_SETTLE_S passed, the driver marks its tagged packets for BRIDGE_CAPTURE_S (SIGUSR1,
#     SIGUSR2) and dumpcap, running on lo since before the calls (starting a capture stalled the
#     driver ~150 ms), keeps the marked packets of 1 in BRIDGE_SAMPLE streams (a BPF test on the
#     tag, so a sampled packet and its relayed copy are both kept); bridge_rtp.py analyse pairs
#     each packet that entered the engine with the copy it sent on the partner leg: lost inside
#     the engine, added delay;
#  6. CPU (engine, both SIPp, the driver, dumpcap; schedstat) and RSS from /proc during the capture:
#     per call = (RSS with N bridged - RSS with the seats logged in and no call) / N.
#
# With BRIDGE_RECORD=1 (recording N calls, issue 6) it also reports the engine's disk writes
# during the capture (/proc/PID/io write_bytes, and the growth of the recordings directory), and
# once the calls have ended and their records are final, benches/check_recordings.py reads every
# WAV: its length against the time the call was bridged, and gaps (runs of >= 20 ms of samples 0
# inside a channel's sound: the driver's PCMA never decodes to 0, so a 0 is silence the recorder
# inserted).
#
# With BRIDGE_THREE_WAY=1 (three-way conferences, issue 5), once all N calls are bridged every
# seat starts a three-way transfer through the desk API (POST /seats/{id}/transfer
# {"kind":"three-way","to":"subcentre:bench"}, BRIDGE_TRANSFER_RATE/s) to a sub-centre declared
# in the bench's dialplan, whose trunk is one SIPp UAS (benches/sipp/subcentre_uas.xml) answering
# with an RTP port of the driver (its third side, "target"); when it answers, the engine mixes
# caller, seat and target. Only the callers send tagged audio; seats and targets send A-law
# silence (0xD5, untagged), so each listener's mix is the caller's frame plus 8 per silent party,
# which encodes back to the caller's bytes (bridge_driver.rs: the tag's codes are chosen for that).
# The capture starts once every target leg hears the engine; analyse pairs each caller packet
# with its copies on the seat leg and on the target leg: lost in the mixer, added delay. Figures
# per conference: CPU, RSS. Conference calls are recorded only with BRIDGE_RECORD=1 (the
# engine's [records] recordings is turned off otherwise: a sub-centre call is recorded whatever
# the queue says).
#
# Environment:
#   BRIDGE_CALLS=1000     concurrent bridged calls wanted
#   BRIDGE_SEATS=         seats (default: BRIDGE_CALLS + 2 %)
#   BRIDGE_RATE=50        calls per second offered while ramping up
#   BRIDGE_HOLD_S=        how long a caller stays (default: ramp + settle + capture + 45 s, so
#                         that all calls are still up 36 s after the last one was answered;
#                         with BRIDGE_THREE_WAY=1 plus the transfers' time + 15 s)
#   BRIDGE_IDLE_WAIT_S=35 wait after the logins before the no-call RSS is read (the engine keeps
#                         finished REGISTER transactions 32 s, and trims memory every 10 s)
#   BRIDGE_SETTLE_S=5     wait after all calls are bridged before capturing
#   BRIDGE_CAPTURE_S=10   capture length
#   BRIDGE_SAMPLE=8       capture 1 in this many streams of each side (a power of 2, <= 256)
#   BRIDGE_REG_RATE=200   REGISTERs per second
#   BRIDGE_SLOT_US=250    the RTP driver's pacing step (its sendmmsg bursts; bridge_driver --slot-us)
#   BRIDGE_RECORD=0       1: the queue records its calls (stereo WAV per call, as by default)
#                         and the recordings are checked (see above)
#   BRIDGE_THREE_WAY=0    1: three-way conferences (see above)
#   BRIDGE_TRANSFER_RATE= three-way transfers started per second (default: BRIDGE_RATE)
#   BENCH_DRIVER_BIN=     the RTP driver's binary (default: cargo build --release --example
#                         bridge_driver, then target/release/examples/bridge_driver)
#   plus HOTLINE_BIN, BENCH_KEEP, BENCH_WAIT_QUIET, BENCH_RT, ENGINE_WORKERS (see benches/lib.sh)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N=${BRIDGE_CALLS:-1000}
SEATS=${BRIDGE_SEATS:-$((N + (N / 50 > 2 ? N / 50 : 2)))}
RATE=${BRIDGE_RATE:-50}
SETTLE_S=${BRIDGE_SETTLE_S:-5}
CAPTURE_S=${BRIDGE_CAPTURE_S:-10}
SAMPLE=${BRIDGE_SAMPLE:-8}
REG_RATE=${BRIDGE_REG_RATE:-200}
SLOT_US=${BRIDGE_SLOT_US:-250}
RECORD=${BRIDGE_RECORD:-0}
THREE_WAY=${BRIDGE_THREE_WAY:-0}
TRANSFER_RATE=${BRIDGE_TRANSFER_RATE:-$RATE}
RAMP_S=$(((N + RATE - 1) / RATE))
TRANSFER_S=0
[ "$THREE_WAY" = 1 ] && TRANSFER_S=$(((N + TRANSFER_RATE - 1) / TRANSFER_RATE + 15))
HOLD_S=${BRIDGE_HOLD_S:-$((RAMP_S + TRANSFER_S + SETTLE_S + CAPTURE_S + 45))}
IDLE_WAIT_S=${BRIDGE_IDLE_WAIT_S:-35}
ADMIN_TOKEN=bench-admin-token-0123456789abcdef

# Port plan, below the ephemeral range (where bench_free_port's ports come from): engine RTP
# from 12000 (a leg takes an even port and keeps the odd one for RTCP: 4 ports per bridged call;
# 6 per call are given; 9 per three-way conference, for 6), then the callers' RTP ports (one per
# call), then the seats' (their usernames), then the targets'; the driver binds the callers',
# seats' and targets' ports.
LEGS=2
[ "$THREE_WAY" = 1 ] && LEGS=3
RTP_MIN=12000
RTP_MAX=$((RTP_MIN + (3 * LEGS * N > 4000 ? 3 * LEGS * N : 4000) - 1))
CALLER_BASE=$((RTP_MAX + 501))
SEAT_BASE=$((CALLER_BASE + N + 500))
TARGET_BASE=$((SEAT_BASE + SEATS + 500))
PORT_END=$((SEAT_BASE + SEATS))
[ "$THREE_WAY" = 1 ] && PORT_END=$((TARGET_BASE + N))
ephemeral_lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)

bench_require sipp dumpcap python3 awk timeout getconf
CAPTURE_FILTER=$(python3 "$BENCH_ROOT/benches/bridge_rtp.py" bpf --sample "$SAMPLE" --marked) ||
  bench_die "BRIDGE_SAMPLE must be a power of 2 from 1 to 256"
[ "$SEATS" -ge "$N" ] || bench_die "BRIDGE_SEATS ($SEATS) must be at least BRIDGE_CALLS ($N)"
[ "$PORT_END" -lt "$ephemeral_lo" ] || bench_die "too many calls for the port plan (the phones' ports reach the ephemeral range $ephemeral_lo)"
bench_init bridged
bench_engine_binary
# The RTP driver, built (quietly) like the engine unless BENCH_DRIVER_BIN names one.
if [ -z "${BENCH_DRIVER_BIN:-}" ]; then
  bench_log "building the RTP driver (cargo build --release --example bridge_driver)"
  (cd "$BENCH_ROOT" && cargo build --release --quiet --example bridge_driver) || bench_die "driver build failed"
  BENCH_DRIVER_BIN="$BENCH_ROOT/target/release/examples/bridge_driver"
fi
[ -x "$BENCH_DRIVER_BIN" ] || bench_die "no RTP driver binary at $BENCH_DRIVER_BIN"
bench_wait_quiet

# --- seats file and dialplan ---------------------------------------------------------------
SEATS_FILE="$BENCH_DIR/seats.toml"
REG_CSV="$BENCH_DIR/seat-register.csv"
CALLERS_CSV="$BENCH_DIR/callers.csv"
TARGETS_CSV="$BENCH_DIR/targets.csv"
python3 - "$SEATS_FILE" "$REG_CSV" "$CALLERS_CSV" "$SEATS" "$SEAT_BASE" "$N" "$CALLER_BASE" "$TARGETS_CSV" "$TARGET_BASE" <<'EOF'
import sys
seats_file, reg_csv, callers_csv = sys.argv[1:4]
seats, seat_base, n, caller_base = (int(x) for x in sys.argv[4:8])
targets_csv, target_base = sys.argv[8], int(sys.argv[9])
with open(seats_file, "w") as f, open(reg_csv, "w") as r:
    r.write("SEQUENTIAL\n")
    for j in range(seats):
        u = seat_base + j
        f.write('[seats.s%d]\nname = "Seat %d"\nusername = "%d"\npassword = "pw-%d"\n'
                'token = "token-%d-0123456789abcdef"\nskills = { general = 3 }\n\n' % (u, u, u, u, u))
        # SIPp reads the authentication keyword whole from the injection file.
        r.write("%d;[authentication username=%d password=pw-%d];\n" % (u, u, u))
with open(callers_csv, "w") as c:
    c.write("SEQUENTIAL\n")
    for i in range(n):
        c.write("%d;\n" % (caller_base + i))
# The sub-centre's answers (three-way): one RTP port per call, in the order the INVITEs come.
with open(targets_csv, "w") as t:
    t.write("SEQUENTIAL\n")
    for i in range(n):
        t.write("%d;\n" % (target_base + i))
EOF
mkdir -p "$BENCH_DIR/dialplans"
record_toml=false
[ "$RECORD" = 1 ] && record_toml=true
cat >"$BENCH_DIR/dialplans/12345.toml" <<EOF
# Bridged-calls benchmark: 12345 goes straight to the general queue; seats take the next call
# at once (no wrap-up) and waiting callers hear the music only (no announcements).
[[numbers]]
number = "12345"
mode = "unified"
line = "12345 bridged calls (benchmark)"
start = "general"

[defaults]
zero_to_operator = false

[queues.general]
name = "综合"
skill = "general"
strategy = "longest-idle"
ring_timeout_s = 20
wrap_up_s = 0
max_wait_s = 600
announce_every_s = 0
record = $record_toml

[nodes.general]
queue = "general"
fallback = "goodbye"

[nodes.goodbye]
hangup = ["thanks-goodbye"]
EOF
TRUNK_PORT=""
recordings_toml=true
if [ "$THREE_WAY" = 1 ]; then
  TRUNK_PORT=$(bench_free_port)
  [ "$RECORD" = 1 ] || recordings_toml=false
  cat >>"$BENCH_DIR/dialplans/12345.toml" <<EOF

# Three-way transfers go to this sub-centre: one SIPp UAS answers every call.
[subcentres.bench]
name = "benchmark sub-centre"
trunk = "127.0.0.1:$TRUNK_PORT"
transport = "udp"
number = "12366"
always_open = true
EOF
fi

API_PORT=$(bench_free_port)
PHONE_PORT=$(bench_free_port)
ENGINE_DIALPLANS="$BENCH_DIR/dialplans" ENGINE_MAX_CALLS=$((LEGS * N + 200)) engine_start "$RTP_MIN" "$RTP_MAX" "
[records]
recordings = $recordings_toml

[seats]
file = \"$SEATS_FILE\"

[api]
listen = \"127.0.0.1:$API_PORT\"
admin_token = \"$ADMIN_TOKEN\"
"
sleep 2
bare_rss=$(rss_kb "$ENGINE_PID")

# --- register and log in the seats -----------------------------------------------------------
sipp_common_args seat-register
bench_log "SIPp: $SEATS seat phones register at $REG_RATE/s"
sipp_start $((SEATS / REG_RATE + 60)) seat-register -sf "$BENCH_ROOT/tests/sipp/seat_register.xml" \
  "${SIPP_ARGS[@]}" -inf "$REG_CSV" -set phone_port "$PHONE_PORT" -r "$REG_RATE" -m "$SEATS" \
  -l "$SEATS" "127.0.0.1:$ENGINE_PORT"
sipp_wait
REG_STATS=$SIPP_STATS
reg_ok=$(sipp_stat "$REG_STATS" 'SuccessfulCall(C)')
reg_failed=$(sipp_stat "$REG_STATS" 'FailedCall(C)')
bench_log "registered: $reg_ok ok, $reg_failed failed"

login_out=$(python3 - "$API_PORT" "$ADMIN_TOKEN" "$SEATS" "$SEAT_BASE" <<'EOF'
import http.client, json, sys, time
port, token, seats, base = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
ok = 0
errors = {}
t0 = time.time()
for j in range(seats):
    try:
        conn.request("POST", "/seats/s%d/login" % (base + j), body='{"ready": true}', headers=hdr)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 200:
            ok += 1
        else:
            key = "%d %s" % (resp.status, body[:120].decode(errors="replace"))
            errors[key] = errors.get(key, 0) + 1
    except (OSError, http.client.HTTPException) as e:
        errors[str(e)] = errors.get(str(e), 0) + 1
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
print(ok, "%.1f" % (time.time() - t0), json.dumps(errors)[:300])
EOF
)
read -r login_ok login_s login_err <<<"$login_out"
bench_log "logged in ready: $login_ok of $SEATS in $login_s s ${login_err:+errors: $login_err}"
[ "${login_ok:-0}" -ge "$N" ] || bench_die "only ${login_ok:-0} seats logged in (need $N): $login_err"
bench_log "waiting $IDLE_WAIT_S s for the REGISTER transactions to expire"
sleep "$IDLE_WAIT_S"
idle_rss=$(rss_kb "$ENGINE_PID")
idle_fds=$(fd_count "$ENGINE_PID")
idle_socks=$(socket_count "$ENGINE_PID")
bench_log "seats logged in: engine RSS $idle_rss kB (bare $bare_rss kB), $idle_fds fds"

# --- media driver, seat phones, callers -------------------------------------------------------
DRIVER_STATUS="$BENCH_DIR/driver-status.json"
# Three-way: the callers talk (tagged), the seats and the sub-centre send A-law silence.
DRIVER_EXTRA=(--slot-us "$SLOT_US")
[ "$THREE_WAY" = 1 ] && DRIVER_EXTRA+=(--targets "$TARGET_BASE:$N" --silent seat,target)
"${BENCH_RIG_SCHED[@]}" "$BENCH_DRIVER_BIN" --callers "$CALLER_BASE:$N" \
  --seats "$SEAT_BASE:$SEATS" "${DRIVER_EXTRA[@]}" --status "$DRIVER_STATUS" --stalls "$BENCH_DIR/driver-stalls.json" \
  --seconds $((RAMP_S + HOLD_S + 120)) >"$BENCH_DIR/driver.log" 2>&1 &
DRIVER_PID=$!
bench_track "$DRIVER_PID"
for _ in $(seq 1 100); do [ -s "$DRIVER_STATUS" ] && break; sleep 0.1; done
[ -s "$DRIVER_STATUS" ] || { cat "$BENCH_DIR/driver.log" >&2; bench_die "the RTP driver did not start"; }
driver_stat() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$DRIVER_STATUS" "$1" 2>/dev/null; }
# dumpcap (tshark's capture engine) writes the sampled packets, the tagged ones the driver marks
# during the capture window (BPF on the tag). It starts now, before the calls: starting a
# capture on lo stalled the driver's sends for ~150 ms under load (seen as a gap in every
# recording). It is stopped after the capture window (and bounded by its own autostop in case
# the script dies).
cap="$BENCH_DIR/capture.pcapng"
tlog="$BENCH_DIR/dumpcap.log"
dumpcap -i lo -f "$CAPTURE_FILTER" -s 96 -B 64 -w "$cap" -a "duration:$((RAMP_S + HOLD_S + 180))" -q >"$tlog" 2>&1 &
dumpcap_pid=$!
bench_track "$dumpcap_pid"
for _ in $(seq 1 100); do grep -q "^File:" "$tlog" 2>/dev/null && break; sleep 0.1; done
grep -q "^File:" "$tlog" 2>/dev/null || { cat "$tlog" >&2; bench_die "dumpcap did not start"; }

limit=$((RAMP_S + HOLD_S + 90))
sipp_common_args seat-phones
SEAT_SIPP_ARGS=("${SIPP_ARGS[@]}")
# The UAS listens on the phones' contact port instead of a free one.
for i in "${!SEAT_SIPP_ARGS[@]}"; do
  [ "${SEAT_SIPP_ARGS[$i]}" = -p ] && SEAT_SIPP_ARGS[$((i + 1))]=$PHONE_PORT
done
SEAT_STATS=$SIPP_STATS
sipp_start "$limit" seat-phones -sf "$BENCH_ROOT/benches/sipp/seat_phones.xml" \
  "${SEAT_SIPP_ARGS[@]}" -m "$N" -l $((2 * SEATS))
SEAT_SIPP_PID=$SIPP_PID
SEAT_TIMEOUT_PID=$SIPP_TIMEOUT_PID
TARGET_SIPP_PID=""
TARGET_TIMEOUT_PID=""
TARGET_STATS=""
if [ "$THREE_WAY" = 1 ]; then
  sipp_common_args subcentre
  TARGET_SIPP_ARGS=("${SIPP_ARGS[@]}")
  for i in "${!TARGET_SIPP_ARGS[@]}"; do
    [ "${TARGET_SIPP_ARGS[$i]}" = -p ] && TARGET_SIPP_ARGS[$((i + 1))]=$TRUNK_PORT
  done
  TARGET_STATS=$SIPP_STATS
  sipp_start "$limit" subcentre -sf "$BENCH_ROOT/benches/sipp/subcentre_uas.xml" \
    "${TARGET_SIPP_ARGS[@]}" -inf "$TARGETS_CSV" -m "$N" -l $((2 * N))
  TARGET_SIPP_PID=$SIPP_PID
  TARGET_TIMEOUT_PID=$SIPP_TIMEOUT_PID
fi

sipp_common_args callers
CALLER_STATS=$SIPP_STATS
bench_log "SIPp: $N callers at $RATE/s, each stays $HOLD_S s (bounded at $limit s)"
t_calls=$(date +%s.%N)
sipp_start "$limit" callers -sf "$BENCH_ROOT/benches/sipp/uac_caller_hold.xml" "${SIPP_ARGS[@]}" \
  -inf "$CALLERS_CSV" -r "$RATE" -m "$N" -l "$N" -d $((HOLD_S * 1000)) "127.0.0.1:$ENGINE_PORT"
CALLER_SIPP_PID=$SIPP_PID
CALLER_TIMEOUT_PID=$SIPP_TIMEOUT_PID
MON="$BENCH_DIR/monitor.txt"
monitor_start "$MON" "$ENGINE_PID" "$CALLER_SIPP_PID" "$SEAT_SIPP_PID" "$DRIVER_PID"

# Wait (bounded) until every call is bridged: all N seat ports hear the engine.
deadline=$((SECONDS + RAMP_S + 60))
seats_up=0
while [ $SECONDS -lt $deadline ] && proc_running "$CALLER_SIPP_PID"; do
  seats_up=$(driver_stat seats_latched)
  [ "${seats_up:-0}" -ge "$N" ] && break
  sleep 0.5
done
t_bridged=$(date +%s.%N)
bench_log "$seats_up seat legs bridged after $(awk -v a="$t_calls" -v b="$t_bridged" 'BEGIN { printf "%.1f", b - a }') s"
if [ "$THREE_WAY" = 1 ]; then
  # RSS with the N calls bridged, before the conferences (largest of 3 readings).
  pre_conf_rss=0
  for _ in 1 2 3; do
    r=$(rss_kb "$ENGINE_PID")
    [ "${r:-0}" -gt "$pre_conf_rss" ] && pre_conf_rss=$r
    sleep 0.5
  done
  pre_conf_fds=$(fd_count "$ENGINE_PID")
  # Each seat whose phone hears the engine (the driver's map of latched legs) is on a call.
  bench_log "three-way transfers of the bridged calls at $TRANSFER_RATE/s"
  transfer_out=$(python3 - "$API_PORT" "$ADMIN_TOKEN" "$DRIVER_STATUS" "$SEAT_BASE" "$TRANSFER_RATE" <<'EOF'
import http.client, json, sys, time
port, token, status, base, rate = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
body = json.dumps({"kind": "three-way", "to": "subcentre:bench"})
seats = sorted(v[1] for v in json.load(open(status))["legs"].values() if v[0] == 1)
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
ok = 0
errors = {}
took = []
t0 = time.time()
for j, index in enumerate(seats):
    due = t0 + j / rate
    now = time.time()
    if due > now:
        time.sleep(due - now)
    a = time.time()
    try:
        conn.request("POST", "/seats/s%d/transfer" % (base + index), body=body, headers=hdr)
        resp = conn.getresponse()
        text = resp.read()
        took.append(time.time() - a)
        if resp.status == 200:
            ok += 1
        else:
            key = "%d %s" % (resp.status, text[:120].decode(errors="replace"))
            errors[key] = errors.get(key, 0) + 1
    except (OSError, http.client.HTTPException) as e:
        errors[str(e)] = errors.get(str(e), 0) + 1
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
took.sort()
p50 = took[len(took) // 2] * 1000 if took else 0
print(ok, len(seats), "%.1f" % (time.time() - t0), "%.1f" % p50,
      "%.1f" % (took[-1] * 1000 if took else 0), json.dumps(errors).replace(" ", "_")[:300])
EOF
)
  read -r xfer_ok xfer_tried xfer_s xfer_p50 xfer_max xfer_err <<<"$transfer_out"
  bench_log "transfers: $xfer_ok of $xfer_tried accepted in $xfer_s s (answer p50 $xfer_p50 ms, max $xfer_max ms) ${xfer_err:+errors: $xfer_err}"
  # Wait (bounded) until every target leg hears the engine: the sub-centre answered and the
  # conference runs.
  deadline=$((SECONDS + TRANSFER_S + 30))
  targets_up=0
  while [ $SECONDS -lt $deadline ] && proc_running "$CALLER_SIPP_PID"; do
    targets_up=$(driver_stat targets_latched)
    [ "${targets_up:-0}" -ge "$N" ] && break
    sleep 0.5
  done
  t_conf=$(date +%s.%N)
  bench_log "$targets_up target legs in conference after $(awk -v a="$t_bridged" -v b="$t_conf" 'BEGIN { printf "%.1f", b - a }') s"
  t_bridged=$t_conf
fi
bench_log "settling $SETTLE_S s"
sleep "$SETTLE_S"

# --- capture -----------------------------------------------------------------------------------
# dumpcap (started before the calls, see above) keeps the packets the driver marks between
# SIGUSR1 and SIGUSR2: CAPTURE_S.
RIG_PIDS=("$ENGINE_PID" "$CALLER_SIPP_PID" "$SEAT_SIPP_PID" "$DRIVER_PID" "$dumpcap_pid" ${TARGET_SIPP_PID:+"$TARGET_SIPP_PID"})
# The engine's writes (/proc/PID/io: write_bytes reach the block layer, wchar all write()s) and
# the size of its recordings.
io_of() { awk '$1 == "write_bytes:" { w = $2 } $1 == "wchar:" { c = $2 } END { print w + 0, c + 0 }' "/proc/$ENGINE_PID/io" 2>/dev/null || echo "0 0"; }
rec_bytes() { du -sb "$BENCH_DIR/var/recordings" 2>/dev/null | cut -f1 || echo 0; }
read -r io_w0 io_c0 <<<"$(io_of)"
rec0=$(rec_bytes)
rig_ns() { local p; for p in "${RIG_PIDS[@]}"; do printf '%s ' "$(cpu_ns "$p")"; done; echo; }
kill -USR1 "$DRIVER_PID"
c0=$(date +%s.%N)
stat0=$(head -1 /proc/stat)
forks0=$(awk '$1 == "processes" { print $2 }' /proc/stat)
ns0=$(rig_ns)
thread_snapshot "$ENGINE_PID" "$BENCH_DIR/threads-0.txt"
proc_snapshot "$BENCH_DIR/procs-0.txt"
sleep "$CAPTURE_S"
kill -USR2 "$DRIVER_PID"
ns1=$(rig_ns)
stat1=$(head -1 /proc/stat)
forks1=$(awk '$1 == "processes" { print $2 }' /proc/stat)
thread_snapshot "$ENGINE_PID" "$BENCH_DIR/threads-1.txt"
proc_snapshot "$BENCH_DIR/procs-1.txt"
c1=$(date +%s.%N)
read -r io_w1 io_c1 <<<"$(io_of)"
rec1=$(rec_bytes)
kill -INT "$dumpcap_pid" 2>/dev/null
waited=0
while proc_running "$dumpcap_pid" && [ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
wait "$dumpcap_pid" 2>/dev/null

# With N bridged: RSS (largest of 3 readings), sockets, drops at the engine's RTP sockets.
bridged_rss=0
for _ in 1 2 3; do
  r=$(rss_kb "$ENGINE_PID")
  [ "${r:-0}" -gt "$bridged_rss" ] && bridged_rss=$r
  sleep 0.5
done
bridged_fds=$(fd_count "$ENGINE_PID")
bridged_socks=$(socket_count "$ENGINE_PID")
seats_after=$(driver_stat seats_latched)
callers_after=$(driver_stat callers_latched)
# /proc/net/udp: local address:port (hex) in column 2, drops in the last column.
read -r rtp_sockets rtp_drops < <(python3 - "$RTP_MIN" "$RTP_MAX" <<'EOF'
import sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
n = d = 0
with open("/proc/net/udp") as f:
    next(f)
    for line in f:
        cols = line.split()
        port = int(cols[1].split(":")[1], 16)
        if lo <= port <= hi:
            n += 1
            d += int(cols[-1])
print(n, d)
EOF
)
read -r sip_cur_min sip_cur_max < <(sipp_stat_window "$CALLER_STATS" CurrentCall "$c0" "$c1")
read -r seat_cur_min seat_cur_max < <(sipp_stat_window "$SEAT_STATS" CurrentCall "$c0" "$c1")
target_cur_min=n/a target_cur_max=n/a
[ -n "$TARGET_STATS" ] && read -r target_cur_min target_cur_max < <(sipp_stat_window "$TARGET_STATS" CurrentCall "$c0" "$c1")
targets_after=$(driver_stat targets_latched)
load_cap=$(bench_loadavg)
bench_log "capture done (RSS $bridged_rss kB)"
# Again once the INVITE transactions of the call set-ups are gone (kept 32 s after the answer)
# and a housekeeping pass (every 10 s) has run, if the calls are still all up then.
late_at=$(awk -v a="$t_bridged" 'BEGIN { printf "%.0f", a + 36 }')
while [ "$(date +%s)" -lt "$late_at" ] && proc_running "$CALLER_SIPP_PID"; do sleep 0.5; done
late_rss=0
for _ in 1 2 3; do
  r=$(rss_kb "$ENGINE_PID")
  [ "${r:-0}" -gt "$late_rss" ] && late_rss=$r
  sleep 0.5
done
late_up=$(sipp_stat "$CALLER_STATS" CurrentCall)
late_fds=$(fd_count "$ENGINE_PID")
late_socks=$(socket_count "$ENGINE_PID")
bench_log "36 s after the last answer: RSS $late_rss kB, SIPp current calls $late_up; waiting for the calls to end"

sipp_wait  # the callers
CALLER_EXIT=$SIPP_EXIT
# The seat phones end after N calls; bounded wait, then stop them.
for _ in $(seq 1 150); do proc_running "$SEAT_SIPP_PID" || break; sleep 0.2; done
proc_running "$SEAT_SIPP_PID" && kill -INT "$SEAT_SIPP_PID" 2>/dev/null
wait "$SEAT_TIMEOUT_PID" 2>/dev/null
SEAT_EXIT=$?
TARGET_EXIT=n/a
if [ -n "$TARGET_SIPP_PID" ]; then
  for _ in $(seq 1 150); do proc_running "$TARGET_SIPP_PID" || break; sleep 0.2; done
  proc_running "$TARGET_SIPP_PID" && kill -INT "$TARGET_SIPP_PID" 2>/dev/null
  wait "$TARGET_TIMEOUT_PID" 2>/dev/null
  TARGET_EXIT=$?
fi
kill -TERM "$DRIVER_PID" 2>/dev/null
wait "$DRIVER_PID" 2>/dev/null
sleep 1

# --- the call records once final; the recordings --------------------------------------------------
# The final record of a recorded call waits for its WAV to be closed: wait (bounded) for all N.
rec_out=""
rec_exit=n/a
if [ "$RECORD" = 1 ]; then
  bench_log "waiting for the $N records to be final, then reading every recording"
  rec_out=$(python3 "$BENCH_ROOT/benches/check_recordings.py" --data "$BENCH_DIR/var" --expect "$N" \
    --wait-s 60 --driver-stalls "$BENCH_DIR/driver-stalls.json" --json "$BENCH_DIR/recordings.json")
  rec_exit=$?
fi
conf_out=""
if [ "$THREE_WAY" = 1 ]; then
  conf_out=$(python3 - "$BENCH_ROOT/benches" "$BENCH_DIR/var" "$N" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from check_recordings import load_records, wait_finished
data, n = sys.argv[2], int(sys.argv[3])
wait_finished(data, n, 30)
outcomes = {}
answered = 0
for _finished, r in load_records(data):
    for t in r.get("transfers", []):
        key = "%s %s" % (t.get("kind"), t.get("outcome"))
        outcomes[key] = outcomes.get(key, 0) + 1
        answered += t.get("kind") == "three-way" and t.get("outcome") == "answered"
print(answered, ", ".join("%s: %d" % kv for kv in sorted(outcomes.items())) or "none")
EOF
)
fi

# --- figures ---------------------------------------------------------------------------------
analysis="$BENCH_DIR/bridge.json"
rtp_out=$(python3 "$BENCH_ROOT/benches/bridge_rtp.py" analyse "$cap" --ports "$RTP_MIN-$RTP_MAX" \
  --legs "$DRIVER_STATUS" --json "$analysis")
jget() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); v=r
for k in sys.argv[2].split('.'): v=v[k]
print(v)" "$analysis" "$1" 2>/dev/null || echo n/a; }
lost=$(jget lost_in_engine)
p99=$(jget delay_ms.p99)
relayed=$(jget relayed)

c_ok=$(sipp_stat "$CALLER_STATS" 'SuccessfulCall(C)')
c_failed=$(sipp_stat "$CALLER_STATS" 'FailedCall(C)')
c_retrans=$(sipp_stat "$CALLER_STATS" 'Retransmissions(C)')
s_ok=$(sipp_stat "$SEAT_STATS" 'SuccessfulCall(C)')
s_failed=$(sipp_stat "$SEAT_STATS" 'FailedCall(C)')
# CPU % of one core of each rig process over the capture, from schedstat (ns).
read -r eng_cpu caller_cpu seat_cpu driver_cpu dumpcap_cpu target_cpu < <(awk -v a="$ns0" -v b="$ns1" -v t0="$c0" -v t1="$c1" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); s = ""
    for (i = 1; i <= n; i++) s = s sprintf("%.1f ", (x[i] == "" || y[i] == "") ? -1 : 100 * (y[i] - x[i]) / 1e9 / (t1 - t0))
    print s }')
win=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')
rig_cpu=$(awk -v a="$eng_cpu" -v b="$caller_cpu" -v c="$seat_cpu" -v d="$driver_cpu" -v e="$dumpcap_cpu" -v f="${target_cpu:-0}" 'BEGIN { printf "%.1f", a + b + c + d + e + f }')
machine=$(machine_window "$MON" "$c0" "$c1")
# The machine's time by kind between the two /proc/stat readings (all cores; 100 % = all of them).
machine_split=$(awk -v a="$stat0" -v b="$stat1" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 2; i <= n; i++) { d[i] = y[i] - x[i]; t += d[i] }
    if (t <= 0) { print "n/a"; exit }
    printf "user %.1f %%, system %.1f %%, softirq %.1f %%, idle %.1f %%, steal %.1f %%", 100 * (d[2] + d[3]) / t, 100 * d[4] / t, 100 * d[8] / t, 100 * (d[5] + d[6]) / t, 100 * d[9] / t }')
# Busy time of the machine (in % of one core) not charged to the rig's processes: other
# processes (also short-lived ones, which the per-process snapshots miss) and kernel work.
machine_busy=$(awk -v a="$stat0" -v b="$stat1" -v c="$BENCH_NCPU" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 2; i <= n; i++) { d[i] = y[i] - x[i]; t += d[i] }
    if (t <= 0) print "n/a"; else printf "%.1f", 100 * c * (t - d[5] - d[6]) / t }')
not_rig=$(awk -v m="$machine_busy" -v r="$rig_cpu" 'BEGIN { if (m == "n/a") print "n/a"; else printf "%.1f", m - r }')
forks=$(awk -v a="$forks0" -v b="$forks1" 'BEGIN { print b - a }')
others=$(others_report "$BENCH_DIR/procs-0.txt" "$BENCH_DIR/procs-1.txt" "$win" "$ENGINE_PID" "$CALLER_SIPP_PID" "$SEAT_SIPP_PID" "$CALLER_TIMEOUT_PID" "$SEAT_TIMEOUT_PID" "$DRIVER_PID" "$dumpcap_pid" "$MONITOR_PID" $$ $TARGET_SIPP_PID $TARGET_TIMEOUT_PID)
# Quiet: the machine's busy time beyond the rig's processes stayed under 30 % of a core (on a
# quiet machine it was 6-22 %: this script's monitor, kernel work charged to no process). A
# compiler or a test suite running meanwhile (short-lived processes, which the per-process
# snapshots miss) shows here.
quiet=no
awk -v n="$not_rig" 'BEGIN { exit !(n != "n/a" && n + 0 < 30) }' && quiet=yes
legs=$((bridged_socks - idle_socks))
per_call_kb=$(awk -v a="$bridged_rss" -v b="$idle_rss" -v n="$N" 'BEGIN { printf "%.1f", (a - b) / n }')
late_calls=$(((late_socks - idle_socks) / LEGS))
per_call_late_kb=$(awk -v a="$late_rss" -v b="$idle_rss" -v n="$late_calls" 'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "n/a" }')
per_call_cpu=$(awk -v c="$eng_cpu" -v n="$N" 'BEGIN { if (c + 0 > 0) printf "%.3f", c / n; else print "n/a" }')
driver_late=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['late_ms_histogram'], 'max', d['late_max_ms'], 'ms; skipped ticks', d['skipped_ticks'], '(frames never sent:', d.get('frames_not_sent'), '); sent', d['sent'], ', errors', d['send_errors'])" "$DRIVER_STATUS" 2>/dev/null)

reached=no
[ "${seats_after:-0}" -ge "$N" ] && [ "${seats_up:-0}" -ge "$N" ] && reached=yes
no_loss=no
[ "$lost" = 0 ] && [ "${relayed:-0}" != n/a ] && [ "${relayed:-0}" -gt 0 ] && [ "${rtp_drops:-1}" = 0 ] && no_loss=yes
delay_ok=no
awk -v p="$p99" 'BEGIN { exit !(p != "n/a" && p + 0 < 1.0) }' && delay_ok=yes
met="NOT MET"
[ "$reached" = yes ] && [ "$no_loss" = yes ] && [ "$delay_ok" = yes ] && [ "$N" -ge 1000 ] && met="MET"
verdict="$N bridged at once: $reached; no packet lost inside the engine: $no_loss; p99 added delay < 1 ms: $delay_ok (p99 $p99 ms)
target (>= 1000 bridged, none lost, p99 added delay < 1 ms): $met"
title="bridged calls: $N callers <-> $N seats, media relayed by the engine"
unit="bridged call"
sipp_line="callers $caller_cpu %, seat phones $seat_cpu % of one core (SIP only)"
calls_extra=""
during="seat legs hearing the engine: $seats_after (before: $seats_up), caller legs: $callers_after; SIPp current calls: callers $sip_cur_min-$sip_cur_max, seat phones $seat_cur_min-$seat_cur_max"
rss_lines="$N bridged, at the capture: $bridged_rss kB => $per_call_kb kB per bridged call (set-up transactions still kept)"
if [ "$THREE_WAY" = 1 ]; then
  read -r conf_answered conf_outcomes <<<"$conf_out"
  title="three-way conferences: $N callers + $N seats + $N sub-centre legs, mixed by the engine"
  unit="conference"
  sipp_line="callers $caller_cpu %, seat phones $seat_cpu %, sub-centre $target_cpu % of one core (SIP only)"
  calls_extra="; sub-centre: $(sipp_stat "$TARGET_STATS" 'SuccessfulCall(C)') ok, $(sipp_stat "$TARGET_STATS" 'FailedCall(C)') failed, exit $TARGET_EXIT"
  during="target legs hearing the engine: $targets_after (before: $targets_up), seat legs: $seats_after, caller legs: $callers_after; SIPp current calls: callers $sip_cur_min-$sip_cur_max, seat phones $seat_cur_min-$seat_cur_max, sub-centre $target_cur_min-$target_cur_max"
  per_conf_more=$(awk -v a="$bridged_rss" -v b="$pre_conf_rss" -v n="$N" 'BEGIN { printf "%.1f", (a - b) / n }')
  rss_lines="$N bridged (2 legs), before the transfers: $pre_conf_rss kB ($pre_conf_fds fds)
                         $N in conference, at the capture: $bridged_rss kB => $per_call_kb kB per conference, $per_conf_more kB more than a bridged call (set-up transactions still kept)"
  in_conf=no
  [ "$reached" = yes ] && [ "${targets_after:-0}" -ge "$N" ] && [ "${targets_up:-0}" -ge "$N" ] &&
    [ "${target_cur_min:-0}" != n/a ] && [ "${target_cur_min:-0}" -ge "$N" ] && in_conf=yes
  dir_fig() { echo "$(jget "by_direction.$1.relayed") relayed, $(jget "by_direction.$1.lost") lost; delay p50 $(jget "by_direction.$1.delay_ms.p50") p99 $(jget "by_direction.$1.delay_ms.p99") max $(jget "by_direction.$1.delay_ms.max") ms"; }
  conf_met="NOT MET"
  [ "$in_conf" = yes ] && [ "$N" -ge 300 ] && conf_met="MET"
  verdict="$N in conference at once: $in_conf (records: $conf_answered three-way transfers answered; $conf_outcomes)
caller -> seat through the mixer:   $(dir_fig caller-\>seat)
caller -> target through the mixer: $(dir_fig caller-\>target)
lost in the engine: $lost (datagrams dropped at its RTP sockets: $rtp_drops); added delay p50 $(jget delay_ms.p50) p99 $p99 max $(jget delay_ms.max) ms (design bound ~40 ms)
target (>= 300 concurrent three-way conferences): $conf_met"
fi
rec_lines=""
if [ "$RECORD" = 1 ]; then
  rec_lines="recording (disk)         $(awk -v w0="$io_w0" -v w1="$io_w1" -v c0="$io_c0" -v c1="$io_c1" -v r0="${rec0:-0}" -v r1="${rec1:-0}" -v t="$win" -v n="$N" 'BEGIN {
    printf "engine write_bytes %.1f MB in %s s = %.2f MB/s; bytes of its write() calls (wchar) %.2f MB/s;\n                         recordings directory grew %.1f MB = %.2f MB/s (%d calls x 32 kB/s of stereo 16-bit audio = %.2f MB/s)", (w1 - w0) / 1e6, t, (w1 - w0) / 1e6 / t, (c1 - c0) / 1e6 / t, (r1 - r0) / 1e6, (r1 - r0) / 1e6 / t, n, n * 0.032 }')
                         engine CPU per recorded $unit: $per_call_cpu % of one core (recorder thread: see the threads above)
recordings (after the calls ended; benches/check_recordings.py, exit $rec_exit = $([ "$rec_exit" = 0 ] && echo "all ok, complete, no gaps" || echo "NOT all ok / gaps found"))
$(echo "$rec_out" | sed 's/^/  /')"
fi

cat <<EOF

=== $title ===
date                     $(date -u '+%Y-%m-%d %H:%M UTC')
$(bench_provenance)
load average             start $BENCH_LOAD_START, at capture end $load_cap (machine: $BENCH_NCPU cores)
seats                    $SEATS in the file; registered $reg_ok ok / $reg_failed failed; logged in ready $login_ok (in $login_s s)
queue                    wrap_up_s = 0, announce_every_s = 0, record = $record_toml; [records] recordings = $recordings_toml
calls                    callers: $c_ok ok, $c_failed failed, $c_retrans retransmissions, exit $CALLER_EXIT; seat phones: $s_ok ok, $s_failed failed, exit $SEAT_EXIT$calls_extra
callers SIPp health      $(sipp_health "$CALLER_STATS")
$(printf '%-24s' "during the capture") $during$([ "$THREE_WAY" = 1 ] && printf '\n%-24s %s' "transfers" "$xfer_ok of $xfer_tried accepted (POST /seats/{id}/transfer) in $xfer_s s, answer p50 $xfer_p50 ms, max $xfer_max ms; errors: ${xfer_err:-none}")
                         engine sockets above idle: $legs ($LEGS per $unit), open fds $idle_fds -> $bridged_fds; engine RTP sockets $rtp_sockets, datagrams they dropped (receive buffer full): $rtp_drops
capture                  ${CAPTURE_S} s on lo, 1 in $SAMPLE streams of each side (tag test in BPF); dumpcap received/dropped $(grep -oE 'lo.: [0-9]+/[0-9]+' "$tlog" | cut -d' ' -f2)
$(echo "$rtp_out" | sed 's/^/  /')
RTP driver               $driver_late
engine CPU               $eng_cpu % of one core during the capture (${win} s, schedstat) = $per_call_cpu % per $unit
engine threads (during the capture; run-queue wait = runnable but no CPU free):
$(thread_report "$BENCH_DIR/threads-0.txt" "$BENCH_DIR/threads-1.txt" "$win")
SIPp CPU                 $sipp_line
RTP driver CPU           $driver_cpu % of one core (bridge_driver: all $((LEGS * N)) sources)
dumpcap CPU              $dumpcap_cpu % of one core
rig total                $rig_cpu % of one core (engine + SIPp x$((LEGS)) + driver + dumpcap; of $((100 * BENCH_NCPU)) %)
other processes' CPU     $others of one core (tick-sampled; short-lived processes are missed: see "not the rig's" below)
machine CPU (/proc/stat) $machine_split of the $BENCH_NCPU cores during the capture
                         busy $machine_busy % of one core, of which not the rig's processes: $not_rig %; processes started meanwhile: $forks (this script and its monitor: ~500)
machine quiet meanwhile  $quiet (busy time not the rig's < 30 % of a core; else the figures are not the rig's alone)
CPU pressure (PSI some)  $machine % of the capture some runnable task waited for a CPU (machine-wide)
engine RSS               bare $bare_rss kB; $SEATS seats registered and logged in, no call (after $IDLE_WAIT_S s) $idle_rss kB
                         $rss_lines
                         36 s after the last answer, $late_calls ${unit}s: $late_rss kB => $per_call_late_kb kB per $unit; peak $(rss_kb "$ENGINE_PID" VmHWM) kB
${rec_lines:+$rec_lines
}$verdict
engine warnings/errors (count, message):
$(engine_log_summary)
EOF
engine_stop
