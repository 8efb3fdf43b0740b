# Shared shell functions of the load benchmarks (benches/*.sh). Source it; do not run it.
#
# Everything here talks to 127.0.0.1 only, is bounded in time, and every process it starts is
# recorded in BENCH_PIDS and stopped by bench_cleanup (installed as the EXIT trap by bench_init).
#
# Environment understood by every script:
#   HOTLINE_BIN   engine binary to run (default: build with `cargo build --release`, then use
#                 target/release/hotline)
#   BENCH_KEEP=1  keep the scratch directory (configs, logs, SIPp statistics, captures)
#   BENCH_WAIT_QUIET=1  before the run, wait (at most 15 min, polling every 30 s) for the
#                 1-minute load average to drop below BENCH_MAX_LOAD (default 0.7)
#   BENCH_RT=0    1-98: the engine's media threads run SCHED_FIFO at this priority
#                 (media.realtime_priority) and the load generators (SIPp, the RTP driver) at
#                 BENCH_RT_RIG (default: the same priority: the same scheduling for both, so
#                 the engine cannot win by starving them); needs root
#   BENCH_SPLIT=1 the engine runs on the first half of the cores (its media workers: one per
#                 core) and the load generators on the other half (taskset): as if the callers
#                 were on another machine of the same size; both keep the same scheduling

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_PIDS=()
BENCH_DIR=""
BENCH_CLK_TCK=$(getconf CLK_TCK)
BENCH_NCPU=$(nproc)
# How the engine and the load generators are started: pinned to their halves of the cores
# with BENCH_SPLIT, and the load generators under chrt with BENCH_RT (see above).
BENCH_ENGINE_SCHED=()
BENCH_RIG_SCHED=()
BENCH_ENGINE_CPUS=$BENCH_NCPU
if [ "${BENCH_SPLIT:-0}" = 1 ]; then
  BENCH_ENGINE_CPUS=$((BENCH_NCPU / 2))
  [ "$BENCH_ENGINE_CPUS" -ge 1 ] || { echo "BENCH_SPLIT needs at least 2 cores" >&2; exit 2; }
  BENCH_ENGINE_SCHED=(taskset -c "$(seq -s, 0 $((BENCH_ENGINE_CPUS - 1)))")
  BENCH_RIG_SCHED=(taskset -c "$(seq -s, "$BENCH_ENGINE_CPUS" $((BENCH_NCPU - 1)))")
fi
[ "${BENCH_RT:-0}" -gt 0 ] && BENCH_RIG_SCHED+=(chrt -f "${BENCH_RT_RIG:-$BENCH_RT}")

bench_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 1; }

# Refuses to go on when a tool is missing (nothing is installed silently).
bench_require() {
  local missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]} — install the tools with: bash tests/install-deps.sh" >&2
    echo "(sipp = Debian sip-tester; python3, awk and timeout are needed too)" >&2
    exit 2
  fi
}

# Creates the scratch directory and installs the cleanup trap.
bench_init() {
  local name=$1
  BENCH_DIR=$(mktemp -d "/tmp/hotline-bench-$name.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  bench_log "scratch directory: $BENCH_DIR"
}

# Stops every process the script started (SIGINT/SIGTERM first, SIGKILL after 10 s).
bench_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local entry
  for entry in "${BENCH_PIDS[@]}"; do
    tracked_alive "$entry" && kill -TERM "${entry%%:*}" 2>/dev/null
  done
  local deadline=$((SECONDS + 10))
  for entry in "${BENCH_PIDS[@]}"; do
    while tracked_alive "$entry" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    tracked_alive "$entry" && kill -KILL "${entry%%:*}" 2>/dev/null
    wait "${entry%%:*}" 2>/dev/null
  done
  if [ -n "$BENCH_DIR" ] && [ -d "$BENCH_DIR" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $status -ne 0 ]; then
      bench_log "kept $BENCH_DIR"
    else
      rm -rf "$BENCH_DIR"
    fi
  fi
  exit $status
}

# bench_track PID: remembers a process to stop at exit, with its start time, so that a PID
# reused by someone else's process after ours ended is never signalled.
bench_track() { BENCH_PIDS+=("$1:$(proc_start "$1")"); }

# proc_start PID: the process's start time (field 22 of /proc/PID/stat); empty if gone or a
# zombie (exited, not yet reaped).
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  awk '$1 != "Z" { print $20 }' <<<"${stat##*) }"
}

# proc_running PID: true while the process exists and has not exited (zombies count as gone).
proc_running() { [ -n "$(proc_start "$1")" ]; }

# Whether the tracked entry PID:START is still that same process.
tracked_alive() {
  local pid=${1%%:*} start=${1#*:}
  [ -n "$start" ] && [ "$(proc_start "$pid")" = "$start" ]
}

# The 1-minute load average.
bench_load1() { cut -d' ' -f1 /proc/loadavg; }
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# With BENCH_WAIT_QUIET=1: waits (bounded, 15 min, every 30 s) for the load to drop below
# BENCH_MAX_LOAD. Prints the load average it starts with either way.
bench_wait_quiet() {
  if [ "${BENCH_WAIT_QUIET:-0}" = 1 ]; then
    local max=${BENCH_MAX_LOAD:-0.7} tries=0
    while awk -v l="$(bench_load1)" -v m="$max" 'BEGIN { exit !(l >= m) }'; do
      if [ $tries -ge 30 ]; then
        bench_log "load average still $(bench_loadavg) after 15 min: running anyway"
        break
      fi
      bench_log "load average $(bench_loadavg) >= $max: waiting 30 s"
      sleep 30
      tries=$((tries + 1))
    done
  fi
  BENCH_LOAD_START=$(bench_loadavg)
  bench_log "load average at start: $BENCH_LOAD_START"
}

# A port free for both UDP and TCP on 127.0.0.1 right now.
bench_free_port() {
  python3 - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
EOF
}

# Sets HOTLINE_BIN (builds the release binary unless HOTLINE_BIN is given).
bench_engine_binary() {
  if [ -z "${HOTLINE_BIN:-}" ]; then
    bench_log "building the engine (cargo build --release)"
    (cd "$BENCH_ROOT" && cargo build --release --quiet --bin hotline) || bench_die "build failed"
    HOTLINE_BIN="$BENCH_ROOT/target/release/hotline"
  fi
  [ -x "$HOTLINE_BIN" ] || bench_die "no engine binary at $HOTLINE_BIN"
}

# bench_scheduling: one line saying how the engine and the load generators were scheduled.
bench_scheduling() {
  local cores="sharing all $BENCH_NCPU cores"
  [ "${BENCH_SPLIT:-0}" = 1 ] && cores="engine on core(s) ${BENCH_ENGINE_SCHED[2]}, load generators on ${BENCH_RIG_SCHED[2]}"
  if [ "${BENCH_RT:-0}" -gt 0 ]; then
    echo "SCHED_FIFO: engine media threads $BENCH_RT, load generators ${BENCH_RT_RIG:-$BENCH_RT}; $cores"
  else
    echo "normal (CFS) for the engine and the load generators; $cores"
  fi
}

# engine_start RTP_MIN RTP_MAX [EXTRA_TOML]
# Starts the engine on a free SIP port with log level warn and the repository's prompts;
# sets ENGINE_PID, ENGINE_PORT, ENGINE_LOG, ENGINE_CONFIG. EXTRA_TOML is appended verbatim and
# must not repeat the [sip], [media], [paths] or [log] tables (use ENGINE_MEDIA_EXTRA for keys
# of [media], ENGINE_DIALPLANS for another dialplan directory).
engine_start() {
  local rtp_min=$1 rtp_max=$2 extra=${3:-}
  ENGINE_PORT=$(bench_free_port)
  ENGINE_CONFIG="$BENCH_DIR/hotline.toml"
  ENGINE_LOG="$BENCH_DIR/engine.log"
  cat >"$ENGINE_CONFIG" <<EOF
[sip]
listen = "127.0.0.1:$ENGINE_PORT"
tcp = false
max_calls = ${ENGINE_MAX_CALLS:-10000}

[media]
rtp_port_min = $rtp_min
rtp_port_max = $rtp_max
workers = ${ENGINE_WORKERS:-$BENCH_ENGINE_CPUS}
realtime_priority = ${BENCH_RT:-0}
${ENGINE_MEDIA_EXTRA:-}

[paths]
prompts = "$BENCH_ROOT/prompts"
dialplans = "${ENGINE_DIALPLANS:-$BENCH_ROOT/tests/dialplans/first-flow}"
data = "$BENCH_DIR/var"

[log]
level = "${ENGINE_LOG_LEVEL:-warn}"

$extra
EOF
  # RUST_LOG would override the configured level.
  env -u RUST_LOG "${BENCH_ENGINE_SCHED[@]}" "$HOTLINE_BIN" run --config "$ENGINE_CONFIG" >"$ENGINE_LOG" 2>&1 &
  ENGINE_PID=$!
  bench_track "$ENGINE_PID"
  if ! engine_wait_ready 20; then
    sed -n 1,40p "$ENGINE_LOG" >&2
    bench_die "the engine did not answer OPTIONS on 127.0.0.1:$ENGINE_PORT within 20 s"
  fi
  bench_log "engine pid $ENGINE_PID answering on 127.0.0.1:$ENGINE_PORT (RTP $rtp_min-$rtp_max)"
}

# engine_wait_ready SECONDS: OPTIONS probes every 100 ms until a 200 comes back.
engine_wait_ready() {
  python3 - "$ENGINE_PORT" "$1" "$ENGINE_PID" <<'EOF'
import socket, sys, time
port, limit, pid = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])


def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.1)
local = "127.0.0.1:%d" % s.getsockname()[1]
deadline = time.time() + limit
n = 0
while time.time() < deadline:
    if not running(pid):
        sys.exit(1)
    n += 1
    msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKbench%d\r\n"
           "From: <sip:probe@%s>;tag=p%d\r\nTo: <sip:127.0.0.1:%d>\r\nCall-ID: bench-probe-%d\r\n"
           "CSeq: %d OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
           % (port, local, n, local, n, port, n, n))
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        data, _ = s.recvfrom(4096)
        if data.startswith(b"SIP/2.0 200"):
            sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
EOF
}

# Stops the engine (SIGTERM, then SIGKILL after 20 s).
engine_stop() {
  [ -n "${ENGINE_PID:-}" ] || return 0
  kill -TERM "$ENGINE_PID" 2>/dev/null
  local deadline=$((SECONDS + 20))
  while proc_running "$ENGINE_PID" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  proc_running "$ENGINE_PID" && kill -KILL "$ENGINE_PID" 2>/dev/null
  wait "$ENGINE_PID" 2>/dev/null
  ENGINE_PID=""
}

# cpu_ticks PID: user+system time of the process (all threads) in clock ticks; empty if gone.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  # Fields after the command name (which may contain spaces): state is field 3, utime 14.
  awk '{ print $12 + $13 }' <<<"${stat##*) }"
}

# cpu_ns PID: CPU time of the process (all its threads) in ns, from /proc/PID/task/*/schedstat
# (the scheduler's own account: not tick-sampled, so bursty threads are not under-counted);
# empty if gone.
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1; n++ } END { if (n) printf "%.0f\n", s }'
}

# rss_kb PID [FIELD]: VmRSS (or VmHWM, the peak) of the process in kB.
rss_kb() {
  awk -v f="${2:-VmRSS}:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# CPU pressure of the whole machine (PSI, /proc/pressure/cpu): cumulative microseconds during
# which at least one runnable task waited for a CPU ("some") and the same for "full"; "- -"
# without PSI. (The tick-sampled /proc/stat busy time under-counts the bursty 2 ms media
# threads on this VM, so it is not used.)
machine_ticks() {
  if [ -r /proc/pressure/cpu ]; then
    awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^total=/) v[$1] = substr($i, 7) }
      END { print (v["some"] == "" ? "-" : v["some"]), (v["full"] == "" ? "-" : v["full"]) }' /proc/pressure/cpu
  else
    echo "- -"
  fi
}

# monitor_start FILE PID...: every second, appends "epoch_s psi_some_us psi_full_us
# open_fds_of_first_pid" then "ticks rss_kb" for each PID ("-" when gone) to FILE. Columns:
# 1 time, 2-3 CPU pressure (see machine_ticks), 4 fds of the first PID, 5/6 ticks/RSS of the
# first PID, 7/8 of the second... Stops by itself after 1 hour or when the first PID is gone; the cleanup trap
# stops it too. Sets MONITOR_PID.
monitor_start() {
  local file=$1
  shift
  (
    local end=$((SECONDS + 3600))
    while [ $SECONDS -lt $end ] && proc_running "$1"; do
      local line
      line="$(date +%s.%N) $(machine_ticks) $(fd_count "$1")"
      local pid t r
      for pid in "$@"; do
        t=$(cpu_ticks "$pid")
        r=$(rss_kb "$pid")
        line+=" ${t:--} ${r:--}"
      done
      echo "$line" >>"$file"
      sleep 1
    done
  ) &
  MONITOR_PID=$!
  bench_track "$MONITOR_PID"
}

# fd_count PID: open file descriptors of a process (the engine holds one socket per RTP leg).
fd_count() {
  local n
  n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
  echo "${n:--}"
}

# Monitor columns of the Nth monitored PID (1-based): ticks and RSS.
mon_ticks_col() { echo $((3 + 2 * $1)); }
mon_rss_col() { echo $((4 + 2 * $1)); }

# cpu_window FILE COL T0 T1: CPU% (of one core) of the process whose ticks are in column COL
# (see mon_ticks_col) between epoch T0 and T1, from the monitor samples nearest inside that
# window. Prints "pct seconds".
cpu_window() {
  awk -v c="$2" -v t0="$3" -v t1="$4" -v hz="$BENCH_CLK_TCK" '
    $1 >= t0 && $1 <= t1 && $c != "-" && $c != "" {
      if (!seen) { a = $1; ta = $c; seen = 1 }
      b = $1; tb = $c
    }
    END {
      if (!seen || b <= a) { print "n/a 0"; exit }
      printf "%.1f %.1f\n", 100 * (tb - ta) / hz / (b - a), b - a
    }' "$1"
}

# machine_window FILE T0 T1: CPU pressure in the window: % of the time at least one runnable
# task of the machine waited for a CPU (PSI "some"). Near 0: every thread ran when it wanted;
# high: the cores were contended (by the rig itself or by other users of the machine).
machine_window() {
  awk -v t0="$2" -v t1="$3" '
    $1 >= t0 && $1 <= t1 && $2 != "-" {
      if (!seen) { ta = $1; sa = $2; seen = 1 }
      tb = $1; sb = $2
    }
    END { if (!seen || tb <= ta) print "n/a"; else printf "%.1f\n", 100 * (sb - sa) / 1e6 / (tb - ta) }' "$1"
}

# max_col FILE COL: largest value of a column (e.g. the RSS of one PID).
max_col() {
  awk -v c="$2" '$c != "-" && $c + 0 > m { m = $c + 0 } END { print m + 0 }' "$1"
}

# last_col FILE COL: last non-empty value of a column.
last_col() {
  awk -v c="$2" '$c != "-" && $c != "" { v = $c } END { print v }' "$1"
}

# The common SIPp arguments: SIP over UDP from 127.0.0.1 (a free local port, not the engine's),
# media on 127.0.0.1, large socket buffers, number 12345, no stdin, statistics every second.
# Sets SIPP_ARGS, SIPP_STATS (the CSV file) and SIPP_SIP_PORT.
sipp_common_args() {
  local name=$1
  SIPP_STATS="$BENCH_DIR/$name-stats.csv"
  SIPP_SIP_PORT=$(bench_free_port)
  SIPP_ARGS=(-s 12345 -i 127.0.0.1 -mi 127.0.0.1 -p "$SIPP_SIP_PORT"
    -mp "$(bench_free_port)" -buff_size 4194304 -nostdin
    -trace_stat -stf "$SIPP_STATS" -fd 1 -trace_err -error_file "$BENCH_DIR/$name-errors.log"
    -trace_screen -screen_file "$BENCH_DIR/$name-screen.log")
}

# sipp_start LIMIT_S NAME ARGS...: runs `timeout -k 5 -s INT LIMIT_S sipp ARGS` in the
# background from the scratch directory; sets SIPP_TIMEOUT_PID and SIPP_PID (the sipp process
# itself, for CPU figures).
sipp_start() {
  local limit=$1 name=$2
  shift 2
  (cd "$BENCH_DIR" && exec timeout -k 5 -s INT "$limit" "${BENCH_RIG_SCHED[@]}" sipp "$@" >"$BENCH_DIR/$name-stdout.log" 2>&1) &
  SIPP_TIMEOUT_PID=$!
  bench_track "$SIPP_TIMEOUT_PID"
  SIPP_PID=""
  local i
  for i in $(seq 1 50); do
    SIPP_PID=$(cat "/proc/$SIPP_TIMEOUT_PID/task/$SIPP_TIMEOUT_PID/children" 2>/dev/null | awk '{ print $1 }')
    [ -n "$SIPP_PID" ] && break
    sleep 0.1
  done
  [ -n "$SIPP_PID" ] || bench_die "sipp did not start (see $BENCH_DIR/$name-stdout.log)"
  bench_track "$SIPP_PID"
}

# sipp_wait: waits for the SIPp run started by sipp_start; sets SIPP_EXIT.
sipp_wait() {
  wait "$SIPP_TIMEOUT_PID" 2>/dev/null
  SIPP_EXIT=$?
}

# sipp_stat FILE NAME: the value of column NAME in the last row of a SIPp statistics CSV.
sipp_stat() {
  awk -F';' -v n="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next }
    c && $c != "" { v = $c }
    END { print v + 0 }' "$1" 2>/dev/null
}

# sipp_stat_max FILE NAME: the largest value of column NAME over the rows.
sipp_stat_max() {
  awk -F';' -v n="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next }
    c && $c + 0 > m { m = $c + 0 }
    END { print m + 0 }' "$1" 2>/dev/null
}

# Prints the engine log's warnings and errors, counted by message (at most 15 kinds).
engine_log_summary() {
  [ -s "$ENGINE_LOG" ] || { echo "  (engine log empty)"; return; }
  sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$ENGINE_LOG" |
    sed -E 's/(leg|worker|late_ms|connection|calls)=[0-9]+/\1=N/g; s/to=[0-9.:]+/to=ADDR/g' |
    sort | uniq -c | sort -rn | head -15 | sed 's/^/  /'
}

# sipp_stat_window FILE NAME T0 T1: "min max" of column NAME over the rows whose CurrentTime
# (epoch, the third tab-separated part of that column) lies between T0 and T1.
sipp_stat_window() {
  awk -F';' -v n="$2" -v t0="$3" -v t1="$4" '
    NR == 1 { for (i = 1; i <= NF; i++) { if ($i == n) c = i; if ($i == "CurrentTime") ct = i }; next }
    c && ct {
      split($ct, p, "\t"); t = p[3] + 0
      if (t >= t0 && t <= t1) { v = $c + 0; if (!seen || v < lo) lo = v; if (!seen || v > hi) hi = v; seen = 1 }
    }
    END { if (seen) print lo, hi; else print "n/a n/a" }' "$1" 2>/dev/null
}

# sipp_time_ms FILE NAME: a cumulative time column (hh:mm:ss:usec) of the last row, in ms.
sipp_time_ms() {
  awk -F';' -v n="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next }
    c && $c != "" { v = $c }
    END { split(v, p, ":"); printf "%.2f\n", (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 + p[4] / 1000 }' "$1" 2>/dev/null
}

# sipp_epoch_of_row FILE ROW: epoch of the CurrentTime of data row ROW (1 = first, -1 = last).
sipp_epoch_first() {
  awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "CurrentTime") ct = i; next }
    NR == 2 { split($ct, p, "\t"); print p[3]; exit }' "$1"
}

# sipp_epoch_reaching FILE NAME VALUE: epoch of the first row whose column NAME is >= VALUE.
sipp_epoch_reaching() {
  awk -F';' -v n="$2" -v want="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) { if ($i == n) c = i; if ($i == "CurrentTime") ct = i }; next }
    c && ct && $c + 0 >= want + 0 { split($ct, p, "\t"); print p[3]; exit }' "$1" 2>/dev/null
}

# sipp_repartition FILE: the INVITE->200 response-time distribution of the last row,
# "<10:N <20:N ... >=1000:N".
sipp_repartition() {
  awk -F';' '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^ResponseTimeRepartition1_/) { c[++k] = i; h[k] = substr($i, 26) }; next }
    { for (j = 1; j <= k; j++) v[j] = $c[j] }
    END { s = ""; for (j = 1; j <= k; j++) s = s (j > 1 ? " " : "") h[j] "ms:" v[j] + 0; print s }' "$1" 2>/dev/null
}

# sipp_health FILE: SIPp's own signs of trouble (watchdog trips = SIPp could not keep its
# schedule; dead/out-of-call messages = answers that came after the call was over).
sipp_health() {
  echo "watchdog major $(sipp_stat "$1" 'WatchdogMajor(C)'), minor $(sipp_stat "$1" 'WatchdogMinor(C)');" \
    "out-of-call msgs $(sipp_stat "$1" 'OutOfCallMsgs(C)'), dead-call msgs $(sipp_stat "$1" 'DeadCallMsgs(C)')"
}

# thread_snapshot PID FILE: per thread "tid name cpu_ns runqueue_wait_ns wakeups" from
# /proc/PID/task/*/schedstat (time on CPU, time runnable but waiting for a CPU, timeslices).
thread_snapshot() {
  local tid name
  for t in /proc/"$1"/task/*; do
    tid=${t##*/}
    name=$(tr ' ' '_' <"$t/comm" 2>/dev/null) || continue
    echo "$tid $name $(cat "$t/schedstat" 2>/dev/null)"
  done >"$2"
}

# thread_report BEFORE AFTER SECONDS: per thread name (threads of one name summed), CPU % of
# one core and run-queue wait in ms per second between two snapshots, busiest first (at most 8).
thread_report() {
  awk -v s="$3" '
    NR == FNR { cpu[$1] = $3; wt[$1] = $4; sl[$1] = $5; next }
    ($1 in cpu) { n = $2; c[n] += $3 - cpu[$1]; w[n] += $4 - wt[$1]; k[n] += $5 - sl[$1]; m[n]++ }
    END {
      for (n in c) printf "%s %d %.1f %.1f %.0f\n", n, m[n], 100 * c[n] / 1e9 / s, w[n] / 1e6 / s, k[n] / s
    }' "$1" "$2" | sort -k3 -nr | head -8 |
    awk '{ printf "  %-18s x%-3d CPU %5.1f %%  run-queue wait %6.1f ms/s  slices %6.0f/s\n", $1, $2, $3, $4, $5 }'
}

# proc_snapshot FILE: "pid name ticks" of every process (for the CPU used by others).
proc_snapshot() {
  # One cat for all (it goes on past processes that ended meanwhile): no fork per process.
  cat /proc/[0-9]*/stat 2>/dev/null | awk '{ n = index($0, ") "); name = substr($0, index($0, "(") + 1, n - index($0, "(") - 1)
    gsub(/ /, "_", name); split(substr($0, n + 2), a, " "); print $1, name, a[12] + a[13] }' >"$1"
}

# others_report BEFORE AFTER SECONDS PID...: CPU % (of one core) used between the snapshots by
# processes other than the PIDs given (and their children), with the three busiest named.
# Processes that started and ended between the snapshots are not seen.
others_report() {
  local before=$1 after=$2 secs=$3
  shift 3
  awk -v s="$secs" -v hz="$BENCH_CLK_TCK" -v ex=" $* " '
    NR == FNR { t[$1] = $3; next }
    index(ex, " " $1 " ") { next }
    { d = $3 - (($1 in t) ? t[$1] : $3); if (d > 0) { sum += d; by[$2] += d } }
    END {
      printf "%.1f %%", 100 * sum / hz / s
      n = 0
      for (k in by) { v[++n] = by[k]; nm[n] = k }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] > v[i]) { x = v[i]; v[i] = v[j]; v[j] = x; y = nm[i]; nm[i] = nm[j]; nm[j] = y }
      for (i = 1; i <= n && i <= 3; i++) printf "%s %s %.1f %%", (i == 1 ? " (busiest:" : ","), nm[i], 100 * v[i] / hz / s
      if (n > 0) printf ")"
      print ""
    }' "$before" "$after"
}

# bench_provenance: what was measured — the engine's source state and binary, and the settings
# given through the environment.
bench_provenance() {
  local rev dirty repo
  # The checkout the binary was built in (a worktree's target/release), else this one.
  repo=$(git -C "$(dirname "$HOTLINE_BIN")" rev-parse --show-toplevel 2>/dev/null || echo "$BENCH_ROOT")
  rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$repo" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
  echo "engine                   commit $rev$([ "$dirty" -gt 0 ] && echo " + $dirty uncommitted file(s) under src/Cargo"), binary $HOTLINE_BIN ($(date -u -r "$HOTLINE_BIN" '+%Y-%m-%d %H:%M UTC' 2>/dev/null))"
  local settings
  settings=$(env | grep -E '^(CALL_|NAV_|MEM_|ENGINE_|BENCH_)' | sort | tr '\n' ' ')
  echo "settings from env        ${settings:-(none: the defaults)}"
  echo "scheduling               $(bench_scheduling)"
}

# udp_drops PORT: datagrams the kernel dropped at the UDP socket bound to 127.0.0.1:PORT
# because its receive buffer was full (ss -m "d" counter); empty if no such socket.
udp_drops() {
  ss -uanm "sport = :$1" 2>/dev/null | grep -o 'skmem:([^)]*)' | head -1 | grep -o ',d[0-9]*' | tr -d ',d'
}

# socket_count PID: open sockets of a process (its fds that are sockets: one per RTP leg, and
# the SIP and API sockets; unlike fd_count, not the files it writes, such as recordings).
socket_count() {
  local n
  n=$(find "/proc/$1/fd" -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l)
  echo "${n:--}"
}
