#!/usr/bin/env bash
# Concurrent calls in navigation, each hearing the greeting (then the wait for a key), with the
# engine's RTP measured on the wire. Targets (issue): at least 3,000 concurrent calls with
# silent callers and at least 1,200 with callers streaming audio, every RTP stream sent on
# schedule: p99 gap between packets of one stream within 20 +- 2 ms, none lost — measured from
# a capture, not from the engine's counters.
#
#   bash benches/navigation_load.sh
#
# How: a fresh engine per kind of caller. SIPp ramps calls up at NAV_RATE/s and holds at most
# N + 1 % at once (-l): a caller hangs up after NAV_HOLD_MS (20 s, i.e. during the greeting (14 s)
# or the 5 s wait for a key that follows it; the engine would hang up itself at ~23.5 s) and
# SIPp replaces it at once, so N calls stay up with ~N/20 new calls per second. Once SIPp
# reports N current calls and NAV_SETTLE_S more seconds passed, tshark captures on lo for
# NAV_CAPTURE_S seconds. Its BPF filter keeps only the RTP of a sample of the engine's ports
# (the even ports p of the engine's range with (p/2) % NAV_SAMPLE_MOD < workers: every worker's
# share is sampled evenly, wherever the FIFO port pool happens to be), both directions, 96
# bytes a packet. benches/analyse_rtp.py then reads the RTP headers from the capture.
#
# Environment:
#   NAV_MODE=both          silent | stream | both
#   NAV_SILENT_CALLS=3000  concurrent silent callers (SDP at SIPp's RTP sink port)
#   NAV_STREAM_CALLS=1200  concurrent callers streaming A-law (SIPp rtp_stream, PT 8, 20 ms)
#   NAV_RATE=200           calls per second while ramping up and replacing
#   NAV_HOLD_MS=20000      when a caller hangs up
#   NAV_CAPTURE_S=10       capture length
#   NAV_SETTLE_S=5         wait after N calls are up before capturing
#   NAV_SAMPLE_MOD=16×workers  sample 1 in NAV_SAMPLE_MOD/workers of the engine's RTP ports
#   NAV_RTP_THREADTASKS=20 streaming callers per SIPp RTP thread (SIPp's -rtp_threadtasks)
#   plus HOTLINE_BIN, BENCH_KEEP, BENCH_WAIT_QUIET, BENCH_RT, BENCH_SPLIT (see benches/lib.sh)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

MODE=${NAV_MODE:-both}
SILENT_N=${NAV_SILENT_CALLS:-3000}
STREAM_N=${NAV_STREAM_CALLS:-1200}
RATE=${NAV_RATE:-200}
HOLD_MS=${NAV_HOLD_MS:-20000}
CAPTURE_S=${NAV_CAPTURE_S:-10}
SETTLE_S=${NAV_SETTLE_S:-5}
WORKERS=${ENGINE_WORKERS:-$BENCH_ENGINE_CPUS}
SAMPLE_MOD=${NAV_SAMPLE_MOD:-$((16 * WORKERS))}
RTP_TASKS=${NAV_RTP_THREADTASKS:-20}
RTP_MIN=20000

bench_require sipp tshark sox python3 awk timeout getconf
case "$MODE" in silent | stream | both) ;; *) bench_die "NAV_MODE must be silent, stream or both" ;; esac
[ $((SAMPLE_MOD % WORKERS)) -eq 0 ] || bench_die "NAV_SAMPLE_MOD must be a multiple of the workers ($WORKERS)"
bench_init navigation
bench_engine_binary

# The caller's audio: the greeting prompt as raw A-law (real speech, 14 s; looped by SIPp).
sox -D "$BENCH_ROOT/prompts/greeting.wav" -r 8000 -c 1 -e a-law -t raw "$BENCH_DIR/caller.alaw" ||
  bench_die "sox could not make the caller's A-law file"

RESULTS="$BENCH_DIR/results.txt"
: >"$RESULTS"

# run_kind KIND N: one measured run; appends its figures to RESULTS.
run_kind() {
  local kind=$1 n=$2
  local hold_s=$((HOLD_MS / 1000))
  local ramp_s=$(((n + RATE - 1) / RATE))
  # Generations of callers: enough that N stay up until the capture is over (+10 s margin).
  local gens=$(((ramp_s + SETTLE_S + CAPTURE_S + 10 + hold_s - 1) / hold_s + 1))
  local total=$((n * gens))
  # SIPp's -l: N plus 1 % (at least 10), so that N stay up while hung-up calls are replaced.
  local limit_calls=$((n + (n / 100 > 10 ? n / 100 : 10)))
  local rtp_max=$((RTP_MIN + (4 * n > 2000 ? 4 * n : 2000) - 1))
  local scenario args_extra=()
  if [ "$kind" = silent ]; then
    scenario="$BENCH_ROOT/tests/sipp/uac_caller_bye.xml"
  else
    scenario="$BENCH_ROOT/benches/sipp/uac_stream_bye.xml"
    # SIPp plays RTP streams in threads of -rtp_threadtasks calls each (SIPp's default: 20).
    args_extra=(-rtp_threadtasks "$RTP_TASKS")
  fi
  bench_log "== $kind callers: $n at once, ramp $RATE/s, hang up after $HOLD_MS ms, $total calls in all"
  # Each kind starts on a quiet machine (with BENCH_WAIT_QUIET=1), not in the previous run's wake.
  bench_wait_quiet
  ENGINE_MAX_CALLS=$((n * 2 + 100)) engine_start "$RTP_MIN" "$rtp_max"
  local idle_fds idle_rss
  idle_fds=$(fd_count "$ENGINE_PID")
  idle_rss=$(rss_kb "$ENGINE_PID")

  sipp_common_args "nav-$kind"
  local mon="$BENCH_DIR/monitor-$kind.txt"
  local limit=$((gens * hold_s + ramp_s + 90))
  local t0
  t0=$(date +%s.%N)
  sipp_start "$limit" "nav-$kind" -sf "$scenario" "${SIPP_ARGS[@]}" "${args_extra[@]}" \
    -r "$RATE" -l "$limit_calls" -m "$total" -d "$HOLD_MS" "127.0.0.1:$ENGINE_PORT"
  monitor_start "$mon" "$ENGINE_PID" "$SIPP_PID"

  # Wait (bounded) until SIPp has N calls up.
  local deadline=$((SECONDS + ramp_s + 30)) current=0
  while [ $SECONDS -lt $deadline ] && proc_running "$SIPP_PID"; do
    current=$(sipp_stat "$SIPP_STATS" CurrentCall)
    [ "${current:-0}" -ge "$n" ] && break
    sleep 0.5
  done
  bench_log "SIPp reports $current current calls; settling $SETTLE_S s"
  sleep "$SETTLE_S"

  # The sampled ports: even p in the range with (p/2) % MOD < workers, either direction.
  local cond_s="udp[0:2] >= $RTP_MIN and udp[0:2] <= $rtp_max and (udp[0:2] / 2) % $SAMPLE_MOD < $WORKERS"
  local cond_d="udp[2:2] >= $RTP_MIN and udp[2:2] <= $rtp_max and (udp[2:2] / 2) % $SAMPLE_MOD < $WORKERS"
  local cap="$BENCH_DIR/capture-$kind.pcapng" tlog="$BENCH_DIR/tshark-$kind.log"
  tshark -i lo -f "udp and (($cond_s) or ($cond_d))" -s 96 -B 64 -w "$cap" \
    -a "duration:$CAPTURE_S" -q >"$tlog" 2>&1 &
  local tshark_pid=$!
  bench_track "$tshark_pid"
  local i
  for i in $(seq 1 100); do
    grep -q "Capturing on" "$tlog" 2>/dev/null && break
    sleep 0.1
  done
  local dumpcap_pid
  dumpcap_pid=$(cat "/proc/$tshark_pid/task/$tshark_pid/children" 2>/dev/null | awk '{ print $1 }')
  [ -n "$dumpcap_pid" ] && bench_track "$dumpcap_pid"
  local c0 c1 t_tshark0 t_dump0 t_tshark1 t_dump1
  c0=$(date +%s.%N)
  thread_snapshot "$ENGINE_PID" "$BENCH_DIR/threads-$kind-0.txt"
  thread_snapshot "$SIPP_PID" "$BENCH_DIR/sipp-threads-$kind-0.txt"
  proc_snapshot "$BENCH_DIR/procs-$kind-0.txt"
  t_tshark0=$(cpu_ticks "$tshark_pid")
  t_dump0=$(cpu_ticks "${dumpcap_pid:-0}")
  # tshark stops itself after CAPTURE_S; sample its CPU just before (bounded wait).
  sleep "$((CAPTURE_S - 1))"
  thread_snapshot "$ENGINE_PID" "$BENCH_DIR/threads-$kind-1.txt"
  thread_snapshot "$SIPP_PID" "$BENCH_DIR/sipp-threads-$kind-1.txt"
  proc_snapshot "$BENCH_DIR/procs-$kind-1.txt"
  t_tshark1=$(cpu_ticks "$tshark_pid")
  t_dump1=$(cpu_ticks "${dumpcap_pid:-0}")
  local waited=0
  while proc_running "$tshark_pid" && [ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -INT "$tshark_pid" 2>/dev/null
  wait "$tshark_pid" 2>/dev/null
  c1=$(date +%s.%N)
  local load_cap
  load_cap=$(bench_loadavg)
  bench_log "capture done; waiting for SIPp to finish its $total calls"
  sipp_wait

  # Figures.
  local ok failed created retrans
  ok=$(sipp_stat "$SIPP_STATS" 'SuccessfulCall(C)')
  failed=$(sipp_stat "$SIPP_STATS" 'FailedCall(C)')
  created=$(sipp_stat "$SIPP_STATS" 'TotalCallCreated')
  retrans=$(sipp_stat "$SIPP_STATS" 'Retransmissions(C)')
  local cur_min cur_max fd_min fd_max
  read -r cur_min cur_max < <(sipp_stat_window "$SIPP_STATS" CurrentCall "$c0" "$c1")
  read -r fd_min fd_max < <(awk -v t0="$c0" -v t1="$c1" -v base="$idle_fds" '
    $1 >= t0 && $1 <= t1 && $4 != "-" { v = $4 - base; if (!s || v < lo) lo = v; if (!s || v > hi) hi = v; s = 1 }
    END { if (s) print lo, hi; else print "n/a n/a" }' "$mon")
  local eng_cpu sipp_cpu machine win
  read -r eng_cpu win < <(cpu_window "$mon" "$(mon_ticks_col 1)" "$c0" "$c1")
  read -r sipp_cpu _ < <(cpu_window "$mon" "$(mon_ticks_col 2)" "$c0" "$c1")
  machine=$(machine_window "$mon" "$c0" "$c1")
  local tshark_cpu
  tshark_cpu=n/a
  if [ -n "$t_tshark0" ] && [ -n "$t_tshark1" ] && [ -n "$t_dump0" ] && [ -n "$t_dump1" ]; then
    tshark_cpu=$(awk -v a="$t_tshark0" -v b="$t_tshark1" -v c="$t_dump0" -v d="$t_dump1" \
      -v s="$((CAPTURE_S - 1))" -v hz="$BENCH_CLK_TCK" 'BEGIN { printf "%.1f", 100 * ((b - a) + (d - c)) / hz / s }')
  fi
  local eng_rss
  eng_rss=$(awk -v t0="$c0" -v t1="$c1" -v c="$(mon_rss_col 1)" '$1 >= t0 && $1 <= t1 && $c != "-" { v = $c } END { print v + 0 }' "$mon")
  local drops
  drops=$(grep -iE "dropped" "$tlog" | tr '\n' ' ')
  [ -n "$drops" ] || drops="none reported"
  local sampled_ports all_ports
  read -r sampled_ports all_ports < <(awk -v lo="$RTP_MIN" -v hi="$rtp_max" -v m="$SAMPLE_MOD" -v w="$WORKERS" \
    'BEGIN { for (p = lo + lo % 2; p + 1 <= hi; p += 2) { a++; if (int(p / 2) % m < w) s++ }; print s, a }')

  local analysis="$BENCH_DIR/rtp-$kind.json" rtp_out
  rtp_out=$(python3 "$BENCH_ROOT/benches/analyse_rtp.py" "$cap" --ports "$RTP_MIN-$rtp_max" --json "$analysis")
  local rtp_ok=$?
  local est
  est=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(round(r['engine_to_caller']['streams_active_at_midpoint'] * $all_ports / $sampled_ports))" "$analysis" 2>/dev/null || echo n/a)
  local isb_drop
  isb_drop=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=r['capture_stats']; print(s.get('if_dropped','n/a'), 'of', s.get('if_received','n/a'), 'received')" "$analysis" 2>/dev/null || echo n/a)

  local reached=no met="NOT MET"
  [ "${cur_min%.*}" != n/a ] && [ "${cur_min:-0}" -ge "$n" ] && reached=yes
  local target=3000
  [ "$kind" = stream ] && target=1200
  if [ "$reached" = yes ] && [ $rtp_ok -eq 0 ] && [ "$n" -ge "$target" ] && [ "$failed" = 0 ] &&
    ! grep -qiE "[1-9][0-9]* packets? dropped" "$tlog"; then
    met="MET"
  fi

  {
    echo
    echo "=== navigation, $kind callers: $n at once (target >= $target) ==="
    echo "date                     $(date -u '+%Y-%m-%d %H:%M UTC')"
    bench_provenance
    echo "load average             start $BENCH_LOAD_START, at capture end $load_cap (machine: $BENCH_NCPU cores)"
    [ "$kind" = stream ] && echo "SIPp RTP threads         $(((n + RTP_TASKS - 1) / RTP_TASKS)) or more (-rtp_threadtasks $RTP_TASKS)"
    echo "SIPp calls               $created created, $ok successful, $failed failed, $retrans retransmissions; exit $SIPP_EXIT"
    echo "SIPp health              $(sipp_health "$SIPP_STATS")"
    echo "concurrent calls         SIPp current calls during the capture: min $cur_min, max $cur_max"
    echo "                         engine open sockets above idle during the capture: min $fd_min, max $fd_max"
    echo "                         estimated from the capture: $est (streams active at its midpoint x $all_ports / $sampled_ports ports)"
    echo "capture                  ${CAPTURE_S} s on lo, ports sampled $sampled_ports of $all_ports (1 in $((SAMPLE_MOD / WORKERS))), tshark: $drops; pcapng ISB: $isb_drop"
    echo "$rtp_out" | sed 's/^/  /'
    echo "engine CPU               $eng_cpu % of one core during the capture (${win} s)"
    echo "engine threads (the capture's first $((CAPTURE_S - 1)) s; run-queue wait = runnable but no CPU free):"
    thread_report "$BENCH_DIR/threads-$kind-0.txt" "$BENCH_DIR/threads-$kind-1.txt" "$((CAPTURE_S - 1))"
    echo "SIPp CPU                 $sipp_cpu % of one core during the capture; its threads:"
    thread_report "$BENCH_DIR/sipp-threads-$kind-0.txt" "$BENCH_DIR/sipp-threads-$kind-1.txt" "$((CAPTURE_S - 1))"
    echo "tshark+dumpcap CPU       $tshark_cpu % of one core during the capture"
    echo "other processes' CPU     $(others_report "$BENCH_DIR/procs-$kind-0.txt" "$BENCH_DIR/procs-$kind-1.txt" "$((CAPTURE_S - 1))" "$ENGINE_PID" "$SIPP_PID" "$SIPP_TIMEOUT_PID" "$tshark_pid" "${dumpcap_pid:-0}" "$MONITOR_PID" $$) of one core"
    echo "CPU pressure (PSI some)  $machine % of the capture some runnable task waited for a CPU (machine-wide)"
    echo "engine RSS               idle $idle_rss kB, during the capture $eng_rss kB, peak $(rss_kb "$ENGINE_PID" VmHWM) kB"
    echo "target ($target concurrent, p99 gap 20+-2 ms per stream, none lost): $met"
    echo "engine warnings/errors (count, message):"
    engine_log_summary
  } | tee -a "$RESULTS" >&2
  engine_stop
}

if [ "$MODE" = silent ] || [ "$MODE" = both ]; then run_kind silent "$SILENT_N"; fi
if [ "$MODE" = stream ] || [ "$MODE" = both ]; then run_kind stream "$STREAM_N"; fi

echo
echo "########## navigation load: figures ##########"
cat "$RESULTS"
