#!/usr/bin/env bash
# Crash test: Postern relaying to Postfix's smtp-sink is killed with SIGKILL at random moments
# while 20 sessions send it mail, and restarted each time on the same data directory. At the
# end every mail that got a 250 must have reached the sink at least once.
#
#   scripts/crash-test.sh [N]
#
# The sender (scripts/lib/crash_sender.py) numbers every mail (X-Crash-Id, Message-ID) and
# records each number that got its 250; the sink dumps every mail to a file; the check
# (scripts/lib/crash_check.py) compares the two and also counts duplicates (allowed: a mail
# delivered just before a kill is sent again after the restart) and mails that arrived though
# their 250 was never seen (allowed: the kill came between the sync and the reply).
# Exits non-zero on any loss, or when a delivered copy is incomplete.
#
# Environment (all optional):
#   CRASH_N=5000   mails that must get a 250 (or the first argument)
#   KILLS=5        SIGKILLs, at random points while the mails are being sent
#   SESSIONS=20    concurrent sending sessions
#   SEND_S=600     how long the sender may take in all
#   DRAIN_S=300    how long to wait for the queue to drain after the last restart
#   SKIP_BUILD=1   use the binary already built;  KEEP=1  keep the temp dir
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

N="${1:-${CRASH_N:-5000}}"
KILLS="${KILLS:-5}"
SESSIONS="${SESSIONS:-20}"
DRAIN_S="${DRAIN_S:-300}"

need_tools cargo awk "$PY"
[[ -x /usr/sbin/smtp-sink ]] || die "smtp-sink missing (apt-get install postfix)"

if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
    POSTERN_BIN="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/postern"
    [[ -x "$POSTERN_BIN" ]] || die "SKIP_BUILD=1 but no $POSTERN_BIN"
else
    build_postern
fi

make_workdir postern-crash
W="$WORKDIR"
say "work dir $W: $N mails over $SESSIONS sessions, $KILLS kills"
IN=$(free_port); OUT=$(free_port); SINK=$(free_port)
CFG="$W/postern.ron"; DATA="$W/data"; LOG="$W/postern.log"; ACK="$W/acked"
: >"$ACK"
mkdir -p "$W/sink"

start_sink "$SINK" "$W/sink.log" -d "$W/sink/%M."
POSTERN_RESEND_DELAY=2s postern_config "$CFG" "$IN" "$OUT" "$SINK"
start_postern "$CFG" "$DATA" "$LOG" "$OUT"
say "postern $POSTERN_PID relays port $OUT -> smtp-sink on $SINK"

"$PY" "$LIB_DIR/crash_sender.py" "$OUT" "$N" "$SESSIONS" "$ACK" >"$W/sender.out" 2>&1 &
SENDER=$!
track_pid "$SENDER"

# Kill points: KILLS random counts of acknowledged mails between 5% and 95% of N.
mapfile -t POINTS < <("$PY" -c "
import random, sys
n, k = int(sys.argv[1]), int(sys.argv[2])
print('\n'.join(str(x) for x in sorted(random.randint(n // 20, n * 19 // 20) for _ in range(k))))
" "$N" "$KILLS")

acked() { wc -l <"$ACK" | tr -d ' '; }

kill_no=0
for point in "${POINTS[@]}"; do
    while (($(acked) < point)); do
        kill -0 "$SENDER" 2>/dev/null || break
        sleep 0.01
    done
    # A random extra delay of 0-30 ms, so the kill does not always follow a reply.
    sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.3f", (r % 30) / 1000}')"
    kill_no=$((kill_no + 1))
    before="$(acked)"
    kill -KILL "$POSTERN_PID"
    wait "$POSTERN_PID" 2>/dev/null || true
    untrack_pid "$POSTERN_PID"
    delivered="$(find "$W/sink" -type f | wc -l)"
    phase="while sending"
    kill -0 "$SENDER" 2>/dev/null && [[ -z "$(awk '$3 == "Z"' "/proc/$SENDER/stat" 2>/dev/null)" ]] || phase="after sending, while delivering"
    say "kill $kill_no ($phase): SIGKILL with $before mails acknowledged, $delivered files at the sink; restarting"
    t0=$(now_ns)
    start_postern "$CFG" "$DATA" "$LOG" "$OUT"
    say "  restarted as $POSTERN_PID, listening after $((($(now_ns) - t0) / 1000000)) ms"
done

say "waiting for the sender to reach $N acknowledged mails"
deadline=$((SECONDS + ${SEND_S:-600}))
while kill -0 "$SENDER" 2>/dev/null && [[ -z "$(awk '$3 == "Z"' "/proc/$SENDER/stat" 2>/dev/null)" ]]; do
    ((SECONDS < deadline)) || die "the sender did not finish within ${SEND_S:-600} s ($(acked) acknowledged; postern log: $LOG)"
    sleep 0.5
done
wait "$SENDER" || die "the sender failed: $(cat "$W/sender.out")"
untrack_pid "$SENDER"
cat "$W/sender.out" >&2

"$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" queue retry --all >/dev/null 2>&1 || true
say "waiting up to $DRAIN_S s for every acknowledged mail to reach the sink"
deadline=$((SECONDS + DRAIN_S))
while :; do
    read -r ACKED UNIQUE MISSING DUPS UNACKED TORN < <("$PY" "$LIB_DIR/crash_check.py" "$ACK" "$W/sink")
    ((MISSING == 0)) && break
    ((SECONDS < deadline)) || break
    sleep 2
done
# Let anything still in flight land, then count once more (duplicates can still arrive).
sleep 2
read -r ACKED UNIQUE MISSING DUPS UNACKED TORN < <("$PY" "$LIB_DIR/crash_check.py" "$ACK" "$W/sink" --missing)
QUEUED="$("$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" queue list 2>/dev/null | grep -cE '^[0-9A-F]{16}' || true)"
DAMAGED="$(grep -c 'torn record' "$LOG" || true)"

echo
echo "crash test: $KILLS SIGKILLs of postern during $N acknowledged mails ($SESSIONS sessions)"
printf '  %-52s %s\n' \
    "mails acknowledged with 250" "$ACKED" \
    "distinct mails at the sink" "$UNIQUE" \
    "acknowledged but never delivered (loss)" "$MISSING" \
    "duplicate copies at the sink" "$DUPS" \
    "delivered without a 250 seen by the client" "$UNACKED" \
    "sink files not a complete mail (aborted transfers)" "$TORN" \
    "still in postern's queue" "$QUEUED" \
    "restarts that reported a torn journal tail" "$DAMAGED"
if ((MISSING > 0)); then
    echo "FAIL: $MISSING acknowledged mail(s) lost (postern log: $LOG)"
    exit 1
fi
echo "PASS: no acknowledged mail was lost"
