#!/usr/bin/env bash
# Engine memory: RSS per call in navigation, and whether the process returns to its idle size
# after a load of 20,000 calls (no ratchet). Targets (issue): under 40 KB per call in
# navigation; back to the idle size after 20,000 calls.
#
#   bash benches/memory.sh
#
# How (one engine for the whole run, RSS = VmRSS of /proc/PID/status):
#  1. idle: RSS 2 s after the engine answers OPTIONS;
#  2. navigation: MEM_CALLS silent callers dial in at MEM_RATE/s and stay in the greeting /
#     key wait (each hangs up after MEM_HOLD_MS); once the engine holds all of them (its open
#     sockets = idle + MEM_CALLS) RSS is read 3 times, 1 s apart (largest kept):
#     per call = (RSS with N up - idle) / N;
#     (the INVITE transactions of these calls are still kept then: they are part of the cost
#     of a call in its first 32 s);
#  3. the calls end; after all ended and MEM_LINGER_S more (default 50 s: the engine keeps
#     finished SIP transactions 64 x T1 = 32 s to absorb retransmissions, and gives memory
#     back in its housekeeping every 10 s) RSS is read again;
#  4. MEM_ROUNDS rounds of MEM_LOAD_CALLS short calls (MEM_LOAD_RATE/s, 1 s each); after each,
#     the same wait, then RSS: "after-load". Several rounds tell a one-off growth (allocator
#     keeping freed pages) from a ratchet (growth with every round).
#
# Environment: MEM_CALLS=3000 MEM_RATE=200 MEM_HOLD_MS=20000 MEM_LOAD_CALLS=20000
#   MEM_LOAD_RATE=500 MEM_ROUNDS=3 MEM_LINGER_S=50, plus HOTLINE_BIN, BENCH_KEEP,
#   BENCH_WAIT_QUIET (see benches/lib.sh)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N=${MEM_CALLS:-3000}
RATE=${MEM_RATE:-200}
HOLD=${MEM_HOLD_MS:-20000}
LOAD_CALLS=${MEM_LOAD_CALLS:-20000}
LOAD_RATE=${MEM_LOAD_RATE:-500}
ROUNDS=${MEM_ROUNDS:-3}
LINGER=${MEM_LINGER_S:-50}

# rss_split PID: the resident memory's parts: anonymous (the heap, stacks: what the engine
# allocated) and file-backed (the binary's and libraries' pages it has touched: shared, clean,
# dropped by the kernel under memory pressure), from /proc/PID/status.
rss_split() {
  awk '$1 == "RssAnon:" { a = $2 } $1 == "RssFile:" { f = $2 } $1 == "RssShmem:" { s = $2 }
    END { printf "anon %d kB, file %d kB", a, f + s }' "/proc/$1/status" 2>/dev/null
}

bench_require sipp python3 awk timeout getconf
bench_init memory
bench_engine_binary
bench_wait_quiet

RTP_MIN=20000
RTP_MAX=$((RTP_MIN + (4 * N > 4000 ? 4 * N : 4000) - 1))
ENGINE_MAX_CALLS=$((N * 2 + 1000)) engine_start "$RTP_MIN" "$RTP_MAX"
MON="$BENCH_DIR/monitor.txt"
monitor_start "$MON" "$ENGINE_PID"
sleep 2
idle_rss=$(rss_kb "$ENGINE_PID")
idle_split=$(rss_split "$ENGINE_PID")
idle_fds=$(fd_count "$ENGINE_PID")
cp "/proc/$ENGINE_PID/smaps" "$BENCH_DIR/smaps-idle.txt" 2>/dev/null
bench_log "idle: RSS $idle_rss kB ($idle_split), $idle_fds open fds"

# wait_engine_calls WANT SECONDS: waits until the engine holds WANT RTP sockets above idle.
wait_engine_calls() {
  local want=$1 deadline=$((SECONDS + $2)) have=0
  while [ $SECONDS -lt $deadline ]; do
    have=$(($(fd_count "$ENGINE_PID") - idle_fds))
    [ "$have" -ge "$want" ] && break
    sleep 0.5
  done
  echo "$have"
}

# wait_engine_idle SECONDS: waits until the engine's open fds are back to idle.
wait_engine_idle() {
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(fd_count "$ENGINE_PID")" -le "$idle_fds" ] && return 0
    sleep 1
  done
  return 1
}

# Phase 2: N calls up.
sipp_common_args mem-nav
ramp=$(((N + RATE - 1) / RATE))
sipp_start $((ramp + HOLD / 1000 + 90)) mem-nav -sf "$BENCH_ROOT/tests/sipp/uac_caller_bye.xml" \
  "${SIPP_ARGS[@]}" -r "$RATE" -m "$N" -l "$N" -d "$HOLD" "127.0.0.1:$ENGINE_PORT"
up=$(wait_engine_calls "$N" $((ramp + 15)))
sleep 1
nav_rss=0
for i in 1 2 3; do
  r=$(rss_kb "$ENGINE_PID")
  [ "$r" -gt "$nav_rss" ] && nav_rss=$r
  sleep 1
done
up_after=$(($(fd_count "$ENGINE_PID") - idle_fds))
sipp_cur=$(sipp_stat "$SIPP_STATS" CurrentCall)
bench_log "navigation: $up calls up in the engine (SIPp: $sipp_cur), RSS $nav_rss kB"
sipp_wait
nav_ok=$(sipp_stat "$SIPP_STATS" 'SuccessfulCall(C)')
nav_failed=$(sipp_stat "$SIPP_STATS" 'FailedCall(C)')
wait_engine_idle 60 || bench_log "warning: the engine still holds $(($(fd_count "$ENGINE_PID") - idle_fds)) sockets"
sleep "$LINGER"
after_nav_rss=$(rss_kb "$ENGINE_PID")
bench_log "after the navigation load: RSS $after_nav_rss kB"

# Phase 4: rounds of short calls.
round_results=()
load_failed_total=0
for round in $(seq 1 "$ROUNDS"); do
  sipp_common_args "mem-load$round"
  secs=$(((LOAD_CALLS + LOAD_RATE - 1) / LOAD_RATE))
  bench_log "round $round: $LOAD_CALLS calls at $LOAD_RATE/s, 1 s each"
  sipp_start $((secs + 90)) "mem-load$round" -sf "$BENCH_ROOT/tests/sipp/uac_caller_bye.xml" \
    "${SIPP_ARGS[@]}" -r "$LOAD_RATE" -m "$LOAD_CALLS" -d 1000 "127.0.0.1:$ENGINE_PORT"
  sipp_wait
  lok=$(sipp_stat "$SIPP_STATS" 'SuccessfulCall(C)')
  lfail=$(sipp_stat "$SIPP_STATS" 'FailedCall(C)')
  load_failed_total=$((load_failed_total + lfail))
  during=$(max_col "$MON" "$(mon_rss_col 1)")
  wait_engine_idle 60 || bench_log "warning: the engine still holds $(($(fd_count "$ENGINE_PID") - idle_fds)) sockets"
  sleep "$LINGER"
  r=$(rss_kb "$ENGINE_PID")
  cp "/proc/$ENGINE_PID/smaps" "$BENCH_DIR/smaps-round$round.txt" 2>/dev/null
  round_results+=("round $round: $lok ok / $lfail failed; RSS after (all ended + ${LINGER} s): $r kB ($(awk -v a="$r" -v b="$idle_rss" 'BEGIN { printf "%+d kB vs idle", a - b }'); $(rss_split "$ENGINE_PID"))")
  last_rss=$r
  bench_log "round $round: RSS $r kB"
done
peak=$(rss_kb "$ENGINE_PID" VmHWM)
load_end=$(bench_loadavg)

per_call=$(awk -v a="$nav_rss" -v b="$idle_rss" -v n="$up" 'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "n/a" }')
per_ok="NOT MET"
awk -v p="$per_call" -v n="$up" -v want="$N" 'BEGIN { exit !(p != "n/a" && p + 0 < 40 && n >= want) }' && per_ok="MET"
# "Returns to its idle size": after the load within 10 % (and at least 1 MB) of idle.
back_ok="NOT MET"
awk -v a="$last_rss" -v b="$idle_rss" 'BEGIN { tol = b * 0.10; if (tol < 1024) tol = 1024; exit !(a - b <= tol) }' && back_ok="MET"
# The same test against the size after the navigation calls: a fresh process has not yet
# touched the code pages, thread arenas and store pages that any call needs.
warm_ok="NOT MET"
awk -v a="$last_rss" -v b="$after_nav_rss" 'BEGIN { tol = b * 0.10; if (tol < 1024) tol = 1024; exit !(a - b <= tol) }' && warm_ok="MET"
ratchet="n/a (one round)"
if [ "$ROUNDS" -ge 2 ]; then
  first=$(echo "${round_results[0]}" | sed -E 's/.*RSS after[^:]*: ([0-9]+) kB.*/\1/')
  ratchet=$(awk -v a="$last_rss" -v b="$first" -v r="$ROUNDS" 'BEGIN { printf "%+d kB from round 1 to round %d", a - b, r }')
fi

cat <<EOF

=== memory: $N calls in navigation, then $ROUNDS x $LOAD_CALLS short calls ===
date                     $(date -u '+%Y-%m-%d %H:%M UTC')
$(bench_provenance)
load average             start $BENCH_LOAD_START, end $load_end (machine: $BENCH_NCPU cores)
idle RSS                 $idle_rss kB ($idle_split)
with calls up            $nav_rss kB with $up calls up in the engine ($up_after a few s later; SIPp current: $sipp_cur; SIPp: $nav_ok ok / $nav_failed failed)
per call in navigation   $per_call kB  (target < 40 KB: $per_ok)
after navigation load    $after_nav_rss kB (all ended + ${LINGER} s)
$(printf '%s\n' "${round_results[@]}")
growth between rounds    $ratchet
peak RSS (VmHWM)         $peak kB
back to idle after load  $back_ok (after-load $last_rss kB vs idle $idle_rss kB; allowed: +10 % or +1 MB)
back to warmed-up size   $warm_ok (after-load $last_rss kB vs $after_nav_rss kB after the navigation calls; same allowance)
engine warnings/errors (count, message):
$(engine_log_summary)
EOF
engine_stop
