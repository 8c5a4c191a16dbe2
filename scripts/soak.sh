#!/usr/bin/env bash
# Sustained load: does delivery keep up, and do memory and log files stay flat?
#
#   scripts/soak.sh [MINUTES]
#
# Postern in Relay mode to Postfix's smtp-sink, with its default outbound limits (20
# connections, 20 per destination) unless POSTERN_OUT_CONN is set; smtp-source sends without
# pause for MINUTES. Every minute it prints: mails accepted and delivered in that minute (the
# engine's own daily counters, as `postern status` prints them: the log files are bounded
# and rotate under this load), the queue length, Postern's RSS and the bytes of its log
# files. Then the load stops and the
# backlog left (if any) drains: its rate is printed.
#
# Environment (all optional): SOAK_MIN=5 (or the first argument), SESSIONS=20, SIZE=4096,
# POSTERN_OUT_CONN (both limits; unset: the defaults), SKIP_BUILD=1, KEEP=1.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

MINUTES="${1:-${SOAK_MIN:-5}}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-4096}"

need_tools cargo awk "$PY"
[[ -x /usr/sbin/smtp-source && -x /usr/sbin/smtp-sink ]] || die "smtp-source/smtp-sink missing (apt-get install postfix)"

postern_binary

make_workdir postern-soak
W="$WORKDIR"
IN=$(free_port); OUT=$(free_port); SINK=$(free_port)
CFG="$W/postern.ron"; DATA="$W/data"; LOG="$W/postern.log"
postern_config "$CFG" "$IN" "$OUT" "$SINK"
say "work dir $W ($MINUTES min, sessions=$SESSIONS, size=$SIZE, outbound: $("$POSTERN_BIN" --config "$CFG" config get outgoing_mails.max_connections) overall, $("$POSTERN_BIN" --config "$CFG" config get outgoing_mails.max_connections_per_domain) per destination)"

start_sink "$SINK" "$W/sink.log"
start_postern "$CFG" "$DATA" "$LOG" "$OUT"

# The engine's counters for today (`today (...): accepted N, sent N, given up N, refused N`):
# mails accepted, and mails delivered to the next hop.
counter() { "$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" status 2>/dev/null \
    | sed -n "s/^today (.*: .*$1 \([0-9]*\).*/\1/p" | head -1; }
accepted() { counter accepted; }
delivered() { counter sent; }
queued() { "$POSTERN_BIN" --config "$CFG" --data-dir "$DATA" queue list 2>/dev/null | grep -c '^[0-9A-F]\{16\} ' || true; }
log_bytes() { du -sb "$DATA/logs" | awk '{print $1}'; }

# The load: smtp-source in rounds of 2,000 mails until told to stop.
(
    while [[ ! -e "$W/stop" ]]; do
        /usr/sbin/smtp-source -s "$SESSIONS" -l "$SIZE" -m 2000 -f bench@client.test -t rcpt@far.test \
            -M client.test "127.0.0.1:$OUT" >>"$W/source.log" 2>&1 || sleep 1
    done
) &
LOAD=$!
track_pid "$LOAD"

printf '%-8s %10s %10s %10s %9s %12s\n' minute accepted delivered queue RSS_MiB log_bytes
a0=0; d0=0
for m in $(seq "$MINUTES"); do
    sleep 60
    a=$(accepted); d=$(delivered)
    printf '%-8s %10s %10s %10s %9s %12s\n' "$m" $((a - a0)) $((d - d0)) "$(queued)" \
        "$(awk '{printf "%.0f", $1 / 1024}' <<<"$(rss_kib "$POSTERN_PID")")" "$(log_bytes)"
    a0=$a; d0=$d
done
touch "$W/stop"
wait "$LOAD" 2>/dev/null || true
untrack_pid "$LOAD"

Q="$(queued)"
say "load stopped: $(accepted) accepted, $(delivered) delivered, $Q left in the queue"
if ((Q > 0)); then
    t0=$(now_ns)
    while (( $(queued) > 0 )); do sleep 1; done
    t1=$(now_ns)
    say "the $Q left drained at $(awk -v n="$Q" -v d=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (d / 1e9)}') mails/s"
fi
