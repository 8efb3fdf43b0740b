#!/usr/bin/env bash
# Call-setup rate: callers dial 12345, the engine answers at once and starts the greeting, each
# caller hangs up after CALL_HOLD_MS. Target (issue): at least 600 calls/s sustained for 60 s
# with under 0.1 % failed calls.
#
#   bash benches/call_setup.sh
#
# Environment (defaults = the issue's figure):
#   CALL_RATE=600       calls per second offered by SIPp
#   CALL_DURATION_S=60  seconds of offered load (SIPp makes CALL_RATE x CALL_DURATION_S calls)
#   CALL_HOLD_MS=2000   how long each caller listens before its BYE
#   plus HOTLINE_BIN, BENCH_KEEP, BENCH_WAIT_QUIET (see benches/lib.sh)
#
# SIPp: tests/sipp/uac_caller_bye.xml over UDP from 127.0.0.1, its RTP port a sink the engine
# streams the greeting to. The engine runs with log level warn, media workers = cores, the
# default RTP range 10000-30000. Engine and SIPp run with the same (default) scheduling; both
# are sampled every second from /proc for CPU and RSS.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

RATE=${CALL_RATE:-600}
DURATION=${CALL_DURATION_S:-60}
HOLD=${CALL_HOLD_MS:-2000}
CALLS=$((RATE * DURATION))

bench_require sipp python3 awk timeout getconf
bench_init call-setup
bench_engine_binary
bench_wait_quiet

engine_start 10000 30000
idle_rss=$(rss_kb "$ENGINE_PID")

sipp_common_args call-setup
MON="$BENCH_DIR/monitor.txt"
limit=$((DURATION + HOLD / 1000 + 60))
bench_log "SIPp: $CALLS calls at $RATE/s, each hangs up after $HOLD ms (bounded at $limit s)"
t_start=$(date +%s.%N)
sipp_start "$limit" call-setup -sf "$BENCH_ROOT/tests/sipp/uac_caller_bye.xml" "${SIPP_ARGS[@]}" \
  -r "$RATE" -m "$CALLS" -d "$HOLD" -l $((RATE * (HOLD / 1000 + 3))) \
  "127.0.0.1:$ENGINE_PORT"
monitor_start "$MON" "$ENGINE_PID" "$SIPP_PID"
# Per-thread CPU and run-queue wait over the steady phase (5 s in until 5 s before the end).
win=$((DURATION - 10))
if [ "$win" -ge 1 ]; then
  sleep 5
  thread_snapshot "$ENGINE_PID" "$BENCH_DIR/threads-0.txt"
  thread_snapshot "$SIPP_PID" "$BENCH_DIR/sipp-threads-0.txt"
  proc_snapshot "$BENCH_DIR/procs-0.txt"
  sleep "$win"
  sipp_sip_drops=$(udp_drops "$SIPP_SIP_PORT")
  thread_snapshot "$ENGINE_PID" "$BENCH_DIR/threads-1.txt"
  thread_snapshot "$SIPP_PID" "$BENCH_DIR/sipp-threads-1.txt"
  proc_snapshot "$BENCH_DIR/procs-1.txt"
fi
sipp_wait
t_end=$(date +%s.%N)
engine_sip_drops=$(udp_drops "$ENGINE_PORT")
sleep 2
load_end=$(bench_loadavg)

stats="$SIPP_STATS"
ok=$(sipp_stat "$stats" 'SuccessfulCall(C)')
failed=$(sipp_stat "$stats" 'FailedCall(C)')
created=$(sipp_stat "$stats" 'TotalCallCreated')
retrans=$(sipp_stat "$stats" 'Retransmissions(C)')
max_current=$(sipp_stat_max "$stats" 'CurrentCall')
rtd=$(sipp_time_ms "$stats" 'ResponseTime1(C)')
rtd_sd=$(sipp_time_ms "$stats" 'ResponseTime1StDev(C)')
fail_pct=$(awk -v f="$failed" -v c="$created" 'BEGIN { if (c > 0) printf "%.3f", 100 * f / c; else print "n/a" }')
elapsed=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')
# The offered rate really achieved: calls created / time until the last one was created
# (1-s resolution of SIPp's statistics).
t_all=$(sipp_epoch_reaching "$stats" 'TotalCallCreated' "$CALLS")
achieved=$(awk -v n="$created" -v a="$t_start" -v b="${t_all:-0}" -v d="$DURATION" \
  'BEGIN { if (b > a) printf "%.0f", n / (b - a > d ? b - a : d); else print 0 }')

# Steady phase: from 5 s after the start until the last call was offered (DURATION s).
s0=$(awk -v a="$t_start" 'BEGIN { printf "%.3f", a + 5 }')
s1=$(awk -v a="$t_start" -v d="$DURATION" 'BEGIN { printf "%.3f", a + d }')
read -r eng_cpu eng_win < <(cpu_window "$MON" "$(mon_ticks_col 1)" "$s0" "$s1")
read -r sipp_cpu _ < <(cpu_window "$MON" "$(mon_ticks_col 2)" "$s0" "$s1")
machine=$(machine_window "$MON" "$s0" "$s1")
read -r eng_cpu_all _ < <(cpu_window "$MON" "$(mon_ticks_col 1)" "$t_start" "$t_end")
read -r sipp_cpu_all _ < <(cpu_window "$MON" "$(mon_ticks_col 2)" "$t_start" "$t_end")
peak_rss=$(rss_kb "$ENGINE_PID" VmHWM)
engine_alive=yes
proc_running "$ENGINE_PID" || engine_alive="NO (crashed?)"

# Met at this rate: every call offered, fewer than 0.1 % failed, the rate kept up (within 2 %).
run_ok="NO"
awk -v f="$failed" -v c="$created" -v n="$CALLS" -v r="$RATE" -v ach="$achieved" \
  'BEGIN { exit !(c == n && c > 0 && f / c < 0.001 && ach >= 0.98 * r) }' && run_ok="yes"
met="NOT MET"
[ "$run_ok" = yes ] && [ "$RATE" -ge 600 ] && [ "$DURATION" -ge 60 ] && met="MET"

cat <<EOF

=== call setup: $RATE calls/s offered for $DURATION s, caller hangs up after $HOLD ms ===
date                     $(date -u '+%Y-%m-%d %H:%M UTC')
$(bench_provenance)
load average             start $BENCH_LOAD_START, end $load_end  (machine: $BENCH_NCPU cores)
calls offered / created  $CALLS / $created in ${elapsed} s wall (offered rate achieved: $achieved/s)
successful               $ok
failed                   $failed ($fail_pct %)
retransmissions          $retrans  (SIPp's count: INVITE/BYE sent again for a late answer)
SIP datagrams dropped    engine's SIP socket: ${engine_sip_drops:-n/a} (whole run), SIPp's SIP socket: ${sipp_sip_drops:-n/a} (until 5 s before the end): receive buffer full
max concurrent calls     $max_current
INVITE->200 time         mean $rtd ms, std-dev $rtd_sd ms (SIPp, 1 ms resolution)
INVITE->200 histogram    $(sipp_repartition "$stats")
SIPp health              $(sipp_health "$stats")
engine CPU               $eng_cpu % of one core in the steady phase (${eng_win} s), $eng_cpu_all % over the run
engine threads (${win} s of the steady phase; run-queue wait = runnable but no CPU free):
$(thread_report "$BENCH_DIR/threads-0.txt" "$BENCH_DIR/threads-1.txt" "$win" 2>/dev/null)
SIPp CPU                 $sipp_cpu % of one core in the steady phase, $sipp_cpu_all % over the run
$(thread_report "$BENCH_DIR/sipp-threads-0.txt" "$BENCH_DIR/sipp-threads-1.txt" "$win" 2>/dev/null)
other processes' CPU     $(others_report "$BENCH_DIR/procs-0.txt" "$BENCH_DIR/procs-1.txt" "$win" "$ENGINE_PID" "$SIPP_PID" "$SIPP_TIMEOUT_PID" "$MONITOR_PID" $$ 2>/dev/null) of one core (steady phase)
CPU pressure (PSI some)  $machine % of the steady phase some runnable task waited for a CPU (machine-wide)
engine RSS               idle $idle_rss kB, peak (VmHWM) $peak_rss kB
engine alive at the end  $engine_alive
SIPp exit code           $SIPP_EXIT
< 0.1 % failed at $RATE/s, rate kept: $run_ok
target (>= 600 calls/s for 60 s, < 0.1 % failed): $met
engine warnings/errors (count, message):
$(engine_log_summary)
EOF
if [ "$failed" != 0 ] && [ -s "$BENCH_DIR/call-setup-errors.log" ]; then
  echo "first SIPp errors:"
  grep -v '^$' "$BENCH_DIR/call-setup-errors.log" | head -8 | cut -c1-200 | sed 's/^/  /'
fi
engine_stop
