#!/usr/bin/env bash
# Floods and slow clients against a real `postern serve` on loopback (issue 6, item 3).
#
#   scripts/flood.sh [--release] [-- extra flood.py options, e.g. --port-flood 5000 --strict]
#
# Starts Postern with a temporary configuration (domain flood.test, account bob@flood.test,
# incoming SMTP on 127.0.0.1 with a per-port limit of $PER_PORT, outgoing SMTP on a second port,
# per-IP limit $PER_IP, command timeout ${COMMAND_TIMEOUT}), then runs scripts/flood/flood.py:
# thousands of connections at once, slow clients, clients that never read, a client pipelining
# NOOPs as fast as it can, and two well-behaved clients delivering a mail a second throughout.
# Prints a summary; exits non-zero if the server died, a well-behaved client failed, a limit
# did not hold or descriptors were not bounded. Takes about two and a half minutes.
#
# Environment: POSTERN_BIN (use this binary, build nothing), PER_PORT, PER_IP,
# COMMAND_TIMEOUT (seconds), DATA_TIMEOUT (seconds), MIN_DATA_RATE (octets/s), KEEP=1 (keep
# the temporary directory and the server's log).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
profile=debug
py_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --) shift; py_args=("$@"); break ;;
        *) echo "usage: $0 [--release] [-- flood.py options]" >&2; exit 2 ;;
    esac
    shift
done

PER_PORT=${PER_PORT:-500}
PER_IP=${PER_IP:-50}
COMMAND_TIMEOUT=${COMMAND_TIMEOUT:-5}
DATA_TIMEOUT=${DATA_TIMEOUT:-10}
MIN_DATA_RATE=${MIN_DATA_RATE:-1024}

command -v python3 >/dev/null || { echo "flood.sh needs python3 (apt-get install python3)" >&2; exit 2; }

if [ -n "${POSTERN_BIN:-}" ]; then
    bin=$POSTERN_BIN
else
    # The same build as `cargo build` (so it reuses what the tests built); debug by default,
    # which is quicker to build on 2 cores. `serve` opens no window either way.
    flags=(--bin postern)
    [ "$profile" = release ] && flags+=(--release)
    (cd "$root" && cargo build "${flags[@]}")
    bin=$root/target/$profile/postern
fi

# Thousands of sockets on both sides: raise the descriptor limit (inherited by the server).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard"
echo "flood: descriptor limit $(ulimit -n)"

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "flood: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

read -r port other < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

cfg=$tmp/postern.ron
data=$tmp/data
p() { "$bin" --config "$cfg" --data-dir "$data" "$@"; }
p domain add flood.test
echo "flood-password" | p account add bob@flood.test --password-stdin
p config set \
    server.hostname=flood.test \
    smtp.incoming.port="$port" smtp.incoming.listen_ip=127.0.0.1 \
    smtp.outgoing.enabled=true smtp.outgoing.port="$other" smtp.outgoing.listen_ip=127.0.0.1 \
    smtp.max_connections_per_port="$PER_PORT" abuse.max_connections_per_ip="$PER_IP" \
    smtp.timeouts.command="${COMMAND_TIMEOUT}s" smtp.timeouts.data="${DATA_TIMEOUT}s" \
    smtp.min_data_rate="$MIN_DATA_RATE" \
    access.allow_own_ips=false
# allow_own_ips=false: loopback is this computer's address, which otherwise overrules every
# limit (the manual's "Allow IPs assigned to this computer").

"$bin" --config "$cfg" --data-dir "$data" serve >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
        break
    fi
    kill -0 "$pid" 2>/dev/null || { echo "flood: postern serve exited:" >&2; cat "$tmp/serve.log" >&2; exit 1; }
    sleep 0.1
done
echo "flood: postern serve (pid $pid, $bin) on 127.0.0.1:$port (flooded) and 127.0.0.1:$other"

status=0
python3 "$here/flood/flood.py" --pid "$pid" --port "$port" --other-port "$other" \
    --per-port "$PER_PORT" --per-ip "$PER_IP" \
    --command-timeout "$COMMAND_TIMEOUT" --data-timeout "$DATA_TIMEOUT" --min-data-rate "$MIN_DATA_RATE" \
    --mailroot "$data/mailboxes" --logdir "$data/logs" "${py_args[@]}" || status=$?

if ! kill -0 "$pid" 2>/dev/null; then
    echo "flood: FAIL: postern serve is gone; the end of its log:" >&2
    tail -20 "$tmp/serve.log" >&2
    status=1
else
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "flood: FAIL: postern serve did not stop within 10 s of SIGTERM" >&2
        status=1
    else
        wait "$pid" || { echo "flood: FAIL: postern serve exited with status $? on SIGTERM" >&2; status=1; }
    fi
    pid=
fi
echo "flood: server log: $(wc -l <"$tmp/serve.log") lines$([ "${KEEP:-0}" = 1 ] && echo " in $tmp/serve.log")"
exit "$status"
