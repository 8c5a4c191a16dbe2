#!/usr/bin/env bash
# How Postern copes with a backlog: the cost of a queue of N waiting mails.
#
#   scripts/backlog.sh [N]
#
# Relay mode to Postfix's smtp-sink, as scripts/bench.sh. Measures:
#   1. the delivery rate with an empty queue (M mails through, M = N/4, at least 1000);
#   2. N mails accepted while the relay host is down (they wait: resend delay 1 h), and the
#      RSS with them;
#   3. a restart with those N queued: time from start to listening (a 220), and the RSS;
#   4. the relay host back, `postern queue retry --all`: the rate at which the backlog drains,
#      and the CPU the idle server used with the backlog before the retry (30 s).
# Prints the figures and the ratio of the backlog's drain rate to the empty queue's.
#
# Environment (all optional): BACKLOG_N=20000 (or the first argument), SESSIONS=20, SIZE=1024,
# POSTERN_OUT_CONN=20, SKIP_BUILD=1, KEEP=1, PERF=1 (perf record -g of the restart and of the
# drain, reports in the work dir: perf-restart.txt, perf.txt), SAVE_DATA=DIR (a copy of the
# configuration and of the data directory with the N queued, made before the restart: restart
# other builds with that backlog, `postern --config DIR/postern.ron --data-dir DIR/data serve`).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

N="${1:-${BACKLOG_N:-20000}}"
M=$((N / 4 < 1000 ? 1000 : N / 4))
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-1024}"

need_tools cargo awk "$PY"
[[ -x /usr/sbin/smtp-source && -x /usr/sbin/smtp-sink ]] || die "smtp-source/smtp-sink missing (apt-get install postfix)"

postern_binary

make_workdir postern-backlog
W="$WORKDIR"
IN=$(free_port); OUT=$(free_port); SINK=$(free_port)
CFG="$W/postern.ron"; DATA="$W/data"; LOG="$W/postern.log"
POSTERN_RESEND_DELAY=1h postern_config "$CFG" "$IN" "$OUT" "$SINK"
say "work dir $W (N=$N, empty-queue run M=$M, sessions=$SESSIONS, size=$SIZE)"

send() {
    /usr/sbin/smtp-source -s "$SESSIONS" -l "$SIZE" -m "$1" -f bench@client.test -t rcpt@far.test \
        -M client.test "127.0.0.1:$OUT" >"$W/source.log" 2>&1 || { cat "$W/source.log" >&2; die "smtp-source failed"; }
}

queued() { "$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" queue list 2>/dev/null | grep -c '^[0-9A-F]\{16\} ' || true; }
ticks() { awk '{print $14 + $15}' "/proc/$POSTERN_PID/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

start_postern "$CFG" "$DATA" "$LOG" "$OUT"

say "1. empty queue: $M mails through"
counting_sink "$SINK" "$M" empty
t0=$(now_ns); send "$M"
t1="$(wait_done empty 600)" || die "the sink did not get $M mails"
EMPTY_RATE="$(awk -v n="$M" -v d=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (d / 1e9)}')"
say "   delivered $EMPTY_RATE mails/s"

say "2. the relay host is down: $N mails accepted and left waiting"
t0=$(now_ns); send "$N"; t1=$(now_ns)
ACCEPT_RATE="$(awk -v n="$N" -v d=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (d / 1e9)}')"
deadline=$((SECONDS + 120))
while (( $(queued) < N )) && ((SECONDS < deadline)); do sleep 1; done
Q="$(queued)"
sleep 2
ACCEPTED_RSS_MIB="$(awk '{printf "%.0f", $1 / 1024}' <<<"$(rss_kib "$POSTERN_PID")")"
say "   accepted $ACCEPT_RATE mails/s; $Q in the queue; RSS $ACCEPTED_RSS_MIB MiB"

say "3. restart with $Q queued"
kill "$POSTERN_PID"; wait "$POSTERN_PID" 2>/dev/null || true; untrack_pid "$POSTERN_PID"
if [[ -n "${SAVE_DATA:-}" ]]; then
    mkdir -p "$SAVE_DATA" && cp -a "$CFG" "$DATA" "$SAVE_DATA/"
    say "   a copy of the configuration and the data directory: $SAVE_DATA"
fi
if [[ "${PERF:-0}" == 1 ]]; then
    # The same restart under perf (slower: the timed one follows), profiled up to listening.
    "$PY" "$LIB_DIR/startup.py" "$OUT" "$LOG" perf record -g -o "$W/perf-restart.data" -- \
        "$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" serve >/dev/null \
        || die "postern did not start under perf (log: $LOG)"
    sleep 1
    perf report -i "$W/perf-restart.data" --no-children --percent-limit 1 --stdio 2>/dev/null \
        >"$W/perf-restart.txt" || true
    say "   restart profile: $W/perf-restart.txt"
fi
t="$("$PY" "$LIB_DIR/startup.py" "$OUT" "$LOG" "$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" serve)" \
    || die "postern did not start (log: $LOG)"
START_MS="$(awk '{print $2}' <<<"$t")"
start_postern "$CFG" "$DATA" "$LOG" "$OUT"
sleep 2
c0="$(ticks)"; sleep 30; c1="$(ticks)"
IDLE_CPU="$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", c * 100 / hz / 30}')"
RSS_MIB="$(awk '{printf "%.0f", $1 / 1024}' <<<"$(rss_kib "$POSTERN_PID")")"
say "   listening after $START_MS ms; RSS $RSS_MIB MiB; idle with the backlog: $IDLE_CPU % of a core"

say "4. the relay host is back: queue retry --all"
counting_sink "$SINK" "$Q" drain
if [[ "${PERF:-0}" == 1 ]]; then
    perf record -g -o "$W/perf.data" -p "$POSTERN_PID" >/dev/null 2>&1 &
    PERF_PID=$!
fi
c0="$(ticks)"; t0=$(now_ns)
"$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" queue retry --all >/dev/null
t1="$(wait_done drain 1800)" || die "the backlog did not drain within 30 min"
c1="$(ticks)"
if [[ -n "${PERF_PID:-}" ]]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true
    perf report -i "$W/perf.data" --no-children --percent-limit 1 --stdio 2>/dev/null >"$W/perf.txt" || true
    say "   profile: $W/perf.txt"
fi
DRAIN_RATE="$(awk -v n="$Q" -v d=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (d / 1e9)}')"
DRAIN_CPU="$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$Q" 'BEGIN {printf "%.3f", c * 1000 / hz / n}')"
say "   drained $DRAIN_RATE mails/s ($DRAIN_CPU ms of CPU per mail)"

echo
printf '%-52s %s\n' "empty queue, delivered mails/s" "$EMPTY_RATE"
printf '%-52s %s\n' "accepted with the relay host down, mails/s" "$ACCEPT_RATE"
printf '%-52s %s\n' "queued" "$Q"
printf '%-52s %s\n' "RSS with the backlog as accepted, MiB" "$ACCEPTED_RSS_MIB"
printf '%-52s %s\n' "restart with the backlog: listening after, ms" "$START_MS"
printf '%-52s %s\n' "RSS with the backlog, MiB" "$RSS_MIB"
printf '%-52s %s\n' "idle with the backlog, % of a core" "$IDLE_CPU"
printf '%-52s %s\n' "backlog drained, mails/s" "$DRAIN_RATE"
printf '%-52s %s\n' "drain rate / empty-queue rate" "$(awk -v a="$DRAIN_RATE" -v b="$EMPTY_RATE" 'BEGIN {printf "%.2f", a / b}')"
