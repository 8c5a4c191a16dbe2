#!/usr/bin/env bash
# Postern against Postfix on this machine, side by side, both relaying to Postfix's smtp-sink.
#
#   scripts/bench.sh [N]
#
# Measures, for both servers:
#   - mails/s accepted: `smtp-source -s 20 -l 1024 -m N` wall time (250 after DATA means synced
#     to disk for both: Postern's journal fsync, Postfix's queue file fsync);
#   - mails/s delivered: from the start of smtp-source until the sink has received all N;
#   - end of DATA -> 250 latency, median and p99, over LAT_N messages on one session;
#   - memory with IDLE_N idle sessions open (Postern: RSS of its one process; Postfix: all its
#     processes, PSS so shared pages count once);
#   - time from start to listening (to a 220 greeting).
#   - the floor of a relay's CPU per mail on this machine: what Postfix's minimal tools spend on
#     the network work alone, smtp-sink receiving (no disk, queue or log) plus smtp-source -d
#     sending over kept connections.
# Prints a table at the end. Everything it starts is stopped on exit.
#
# Environment (all optional):
#   BENCH_N=5000      messages per throughput run (or the first argument)
#   ROUNDS=3          throughput runs per server, alternating; the median is reported
#   WARMUP=200        messages sent (and delivered) before the measured runs
#   SESSIONS=20       smtp-source sessions;  SIZE=1024  payload octets
#   SOURCE_OPTS=      extra smtp-source flags, e.g. "-d" to send every message of a session over
#                     one connection (by default each message has its own connection)
#   LAT_N=500         messages in the latency run
#   IDLE_N=1000       idle sessions in the memory run
#   STARTS=5          Postern starts timed (the median is reported; the first is cold)
#   POSTERN_OUT_CONN=20  Postern's outbound connections (overall and per destination; Postfix's
#                     default destination concurrency is 20)
#   MATRIX=1          also the cost curve: MATRIX_SIZES (1024 102400 10000000 octets) x
#                     MATRIX_SESSIONS (1 20 100), one run each, fewer mails as they grow
#   PERF=1            one more Postern run under `perf record -g`: the top of its profile in
#                     the temp dir (perf.txt) and, with inferno installed (`cargo install
#                     inferno`), a flame graph (postern-flame.svg; FLAME_OUT=path copies it)
#   SKIP_BUILD=1      use the binary already built;  KEEP=1  keep the temp dir
#   TMPDIR            where the spools live (both servers use the same file system)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

N="${1:-${BENCH_N:-5000}}"
ROUNDS="${ROUNDS:-3}"
WARMUP="${WARMUP:-200}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-1024}"
LAT_N="${LAT_N:-500}"
IDLE_N="${IDLE_N:-1000}"
STARTS="${STARTS:-5}"

need_tools cargo postfix postconf awk "$PY"
[[ "$(id -u)" == 0 ]] || die "run as root: the private Postfix instance is started with 'postfix -c DIR start'"
[[ -x /usr/sbin/smtp-source && -x /usr/sbin/smtp-sink ]] || die "smtp-source/smtp-sink missing (apt-get install postfix)"
[[ "$(ulimit -n)" -ge $((IDLE_N + 200)) ]] || ulimit -n $((IDLE_N + 1000)) 2>/dev/null \
    || warn "cannot raise the open-files limit to $((IDLE_N + 1000)); the idle-session run may fall short"

postern_binary

make_workdir postern-bench
W="$WORKDIR"
say "work dir $W (N=$N, rounds=$ROUNDS, sessions=$SESSIONS, size=$SIZE)"

PT_IN=$(free_port); PT_OUT=$(free_port); PT_SINK=$(free_port)
PF_PORT=$(free_port); PF_SINK=$(free_port)
PT_CFG="$W/postern.ron"; PT_DATA="$W/postern-data"; PT_LOG="$W/postern.log"
postern_config "$PT_CFG" "$PT_IN" "$PT_OUT" "$PT_SINK"

# ---------------------------------------------------------------------------------------------
# Start to listening.

say "timing $STARTS Postern starts (start -> 220 on the outgoing port)"
PT_STARTS=()
for i in $(seq "$STARTS"); do
    t="$("$PY" "$LIB_DIR/startup.py" "$PT_OUT" "$PT_LOG" "$POSTERN_BIN" --config "$PT_CFG" --data-dir "$PT_DATA" serve)" \
        || die "postern did not start (log: $PT_LOG)"
    PT_STARTS+=("$(awk '{print $2}' <<<"$t")")
    say "  start $i: ${PT_STARTS[-1]} ms$([[ $i == 1 ]] && echo ' (cold: creates the data dir and certificate)')"
done
PT_START_MS="$(printf '%s\n' "${PT_STARTS[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"

say "setting up a private Postfix instance in $W/postfix"
postfix_setup "$W/postfix" "$PF_PORT" "$PF_SINK"
say "timing the Postfix start (postfix -c DIR start -> 220)"
t="$("$PY" "$LIB_DIR/startup.py" "$PF_PORT" "$W/postfix/start.log" postfix -c "$POSTFIX_CONF" start)" \
    || { cat "$W/postfix/start.log" "$W/postfix/maillog" >&2 2>/dev/null; die "postfix did not start"; }
PF_START_MS="$(awk '{print $2}' <<<"$t")"
say "  postfix: $PF_START_MS ms"
PF_MASTER="$(tr -d ' ' <"$W/postfix/queue/pid/master.pid")"

start_postern "$PT_CFG" "$PT_DATA" "$PT_LOG" "$PT_OUT"

# ---------------------------------------------------------------------------------------------
# Throughput.

# cpu_ticks NAME: CPU time (user+system, clock ticks) used so far by that server. Postern: its
# one process. Postfix: the master, its live children, and the children it has reaped.
cpu_ticks() {
    local p total=0
    if [[ $1 == postern ]]; then
        awk '{print $14 + $15}' "/proc/$POSTERN_PID/stat"
        return
    fi
    total="$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PF_MASTER/stat")"
    for p in $(pgrep -P "$PF_MASTER"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
CLK_TCK="$(getconf CLK_TCK)"

# throughput NAME PORT SINKPORT COUNT: sets TP_A and TP_D, the seconds until everything was
# accepted and until everything was delivered.
throughput() {
    local name="$1" port="$2" sink="$3" count="$4" tag="$1.$RANDOM" t0 t1 t2
    counting_sink "$sink" "$count" "$tag"
    local c0 c1
    c0="$(cpu_ticks "$name")"
    t0=$(now_ns)
    /usr/sbin/smtp-source ${SOURCE_OPTS:-} -s "$SESSIONS" -l "$SIZE" -m "$count" -f bench@client.test -t rcpt@far.test \
        -M client.test "127.0.0.1:$port" >"$W/$tag.source.log" 2>&1 \
        || { cat "$W/$tag.source.log" >&2; die "smtp-source against $name failed"; }
    t1=$(now_ns)
    t2="$(wait_done "$tag" 600)" || die "$name: the sink did not receive all $count messages within 600 s"
    kill -0 "$CSINK_WRAPPER" 2>/dev/null && wait "$CSINK_WRAPPER" 2>/dev/null || true
    c1="$(cpu_ticks "$name")"
    # CPU milliseconds per mail, accepting and delivering.
    TP_CPU="$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$count" 'BEGIN {printf "%.3f", c * 1000 / hz / n}')"
    TP_A="$(awk -v a=$((t1 - t0)) 'BEGIN {printf "%.3f", a/1e9}')"
    TP_D="$(awk -v d=$((t2 - t0)) 'BEGIN {printf "%.3f", d/1e9}')"
}

say "warm-up: $WARMUP messages through each server"
throughput postern "$PT_OUT" "$PT_SINK" "$WARMUP"
throughput postfix "$PF_PORT" "$PF_SINK" "$WARMUP"

# ceiling: smtp-source straight into an smtp-sink, no server in between: what the client and
# the sink alone manage on this machine right now. Also the floor of a relay's CPU per mail:
# the sink's (receiving each mail on its own connection, as the servers do here, with no disk,
# queue or log) and, in a second run with -d, the source's over kept connections (sending, as
# the servers do to their sink).
ceiling() {
    local port t0 t1 c0 c1 src
    port=$(free_port)
    start_sink "$port" "$W/ceiling.sink.log"
    c0="$(awk '{print $14 + $15}' "/proc/$SINK_PID/stat")"
    t0=$(now_ns)
    /usr/sbin/smtp-source ${SOURCE_OPTS:-} -s "$SESSIONS" -l "$SIZE" -m "$N" -f bench@client.test -t rcpt@far.test \
        -M client.test "127.0.0.1:$port" >"$W/ceiling.source.log" 2>&1 || die "smtp-source -> smtp-sink failed"
    t1=$(now_ns)
    c1="$(awk '{print $14 + $15}' "/proc/$SINK_PID/stat")"
    kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; untrack_pid "$SINK_PID"
    CEIL+=("$(awk -v n="$N" -v t=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (t / 1e9)}')")
    FLOOR_IN+=("$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$N" 'BEGIN {printf "%.3f", c * 1000 / hz / n}')")
    port=$(free_port)
    start_sink "$port" "$W/ceiling.sink.log"
    # The source's own CPU (user + system of the child, from its rusage).
    src="$("$PY" -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' /usr/sbin/smtp-source -d -s "$SESSIONS" -l "$SIZE" -m "$N" \
        -f bench@client.test -t rcpt@far.test -M client.test "127.0.0.1:$port")" || die "smtp-source -d -> smtp-sink failed"
    kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; untrack_pid "$SINK_PID"
    FLOOR_OUT+=("$(awk -v s="$src" -v n="$N" 'BEGIN {printf "%.3f", s * 1000 / n}')")
}

PT_ACC=(); PT_DEL=(); PF_ACC=(); PF_DEL=(); PT_CPU=(); PF_CPU=(); CEIL=(); FLOOR_IN=(); FLOOR_OUT=()
for r in $(seq "$ROUNDS"); do
    ceiling
    say "round $r: smtp-source straight into smtp-sink (the ceiling here): ${CEIL[-1]}/s; CPU per mail: the sink ${FLOOR_IN[-1]} ms, smtp-source -d ${FLOOR_OUT[-1]} ms"
    for who in postern postfix; do
        if [[ $who == postern ]]; then
            throughput postern "$PT_OUT" "$PT_SINK" "$N"; a=$TP_A; d=$TP_D
            PT_ACC+=("$(awk -v n="$N" -v s="$a" 'BEGIN {printf "%.0f", n/s}')")
            PT_DEL+=("$(awk -v n="$N" -v s="$d" 'BEGIN {printf "%.0f", n/s}')")
            PT_CPU+=("$TP_CPU")
            say "round $r postern: $N accepted in ${a}s (${PT_ACC[-1]}/s), delivered in ${d}s (${PT_DEL[-1]}/s), CPU $TP_CPU ms/mail"
        else
            throughput postfix "$PF_PORT" "$PF_SINK" "$N"; a=$TP_A; d=$TP_D
            PF_ACC+=("$(awk -v n="$N" -v s="$a" 'BEGIN {printf "%.0f", n/s}')")
            PF_DEL+=("$(awk -v n="$N" -v s="$d" 'BEGIN {printf "%.0f", n/s}')")
            PF_CPU+=("$TP_CPU")
            say "round $r postfix: $N accepted in ${a}s (${PF_ACC[-1]}/s), delivered in ${d}s (${PF_DEL[-1]}/s), CPU $TP_CPU ms/mail"
        fi
    done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# PERF=1: the profile of one more Postern run (not counted in the figures above).
if [[ "${PERF:-0}" == 1 ]]; then
    need_tools perf
    perf record -g -o "$W/perf.data" -p "$POSTERN_PID" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 1
    throughput postern "$PT_OUT" "$PT_SINK" "$N"
    kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true
    perf report -i "$W/perf.data" --no-children --percent-limit 1 --stdio 2>/dev/null >"$W/perf.txt" || true
    say "profile of one more run: $W/perf.txt"
    if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
        perf script -i "$W/perf.data" 2>/dev/null | inferno-collapse-perf >"$W/postern.folded"
        inferno-flamegraph --title "Postern, smtp-source -s $SESSIONS -l $SIZE -m $N" \
            <"$W/postern.folded" >"$W/postern-flame.svg"
        [[ -n "${FLAME_OUT:-}" ]] && cp "$W/postern-flame.svg" "$FLAME_OUT"
        say "flame graph: ${FLAME_OUT:-$W/postern-flame.svg}"
    else
        say "no flame graph: inferno is not installed (cargo install inferno)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# The cost curve (MATRIX=1): message sizes x sessions, one run each per server, with the memory
# each server holds at the end of the run.

MATRIX_ROWS=()
if [[ "${MATRIX:-0}" == 1 ]]; then
    saved_sessions="$SESSIONS"; saved_size="$SIZE"
    for size in ${MATRIX_SIZES:-1024 102400 10000000}; do
        # Fewer mails as they grow, so each run moves a similar amount of data.
        count=$((N * 1024 / size)); ((count > N)) && count=$N; ((count < 50)) && count=50
        for sessions in ${MATRIX_SESSIONS:-1 20 100}; do
            SESSIONS=$sessions; SIZE=$size
            throughput postern "$PT_OUT" "$PT_SINK" "$count"
            pa="$(awk -v n="$count" -v s="$TP_A" 'BEGIN {printf "%.0f", n/s}')"
            pd="$(awk -v n="$count" -v s="$TP_D" 'BEGIN {printf "%.0f", n/s}')"
            pm="$(awk '{printf "%.0f", $1 / 1024}' <<<"$(rss_kib "$POSTERN_PID")")"
            throughput postfix "$PF_PORT" "$PF_SINK" "$count"
            fa="$(awk -v n="$count" -v s="$TP_A" 'BEGIN {printf "%.0f", n/s}')"
            fd="$(awk -v n="$count" -v s="$TP_D" 'BEGIN {printf "%.0f", n/s}')"
            fm=0
            for p in $PF_MASTER $(pgrep -P "$PF_MASTER" | tr '\n' ' '); do
                fm=$((fm + $(pss_kib "$p")))
            done
            fm=$((fm / 1024))
            MATRIX_ROWS+=("$(printf '%-9s %8s %6s %10s %10s %10s %10s %8s %8s' \
                "$size" "$sessions" "$count" "$pa" "$fa" "$pd" "$fd" "$pm" "$fm")")
            say "matrix: size $size, $sessions sessions, $count mails: postern $pa/$pd/s (RSS $pm MiB), postfix $fa/$fd/s (PSS $fm MiB)"
        done
    done
    SESSIONS="$saved_sessions"; SIZE="$saved_size"
fi

# ---------------------------------------------------------------------------------------------
# Latency: end of DATA -> 250 on one session.

start_sink "$PT_SINK" "$W/pt-lat.sink.log"
start_sink "$PF_SINK" "$W/pf-lat.sink.log"
say "latency: $LAT_N messages on one session to Postern"
read -r PT_MED PT_P99 _ _ _ < <("$PY" "$LIB_DIR/latency.py" "$PT_OUT" "$LAT_N" "$SIZE") || die "latency run against postern failed"
say "  postern: median $PT_MED ms, p99 $PT_P99 ms"
say "latency: $LAT_N messages on one session to Postfix"
read -r PF_MED PF_P99 _ _ _ < <("$PY" "$LIB_DIR/latency.py" "$PF_PORT" "$LAT_N" "$SIZE") || die "latency run against postfix failed"
say "  postfix: median $PF_MED ms, p99 $PF_P99 ms"

# ---------------------------------------------------------------------------------------------
# Memory with idle sessions.

# idle_sessions PORT TAG: opens IDLE_N sessions in the background; waits until they are open.
# Sets IDLE_PID and IDLE_OPENED.
idle_sessions() {
    local status="$W/$2.idle"
    "$PY" "$LIB_DIR/idle.py" "$1" "$IDLE_N" "$status" &
    IDLE_PID=$!
    track_pid "$IDLE_PID"
    local deadline=$((SECONDS + 300))
    while [[ ! -s "$status" ]]; do
        ((SECONDS < deadline)) && kill -0 "$IDLE_PID" 2>/dev/null || die "the idle-session client failed"
        sleep 0.2
    done
    IDLE_OPENED="$(awk '{print $2}' "$status")"
    sleep 1 # let the servers settle
}

stop_idle() { kill "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null || true; untrack_pid "$IDLE_PID"; }

# A fresh Postern, so the baseline is not inflated by the throughput runs.
kill -TERM "$POSTERN_PID"; wait "$POSTERN_PID" 2>/dev/null || true; untrack_pid "$POSTERN_PID"
start_postern "$PT_CFG" "$PT_DATA" "$PT_LOG" "$PT_OUT"
sleep 1
PT_RSS0="$(rss_kib "$POSTERN_PID")"
say "memory: Postern at rest: RSS $PT_RSS0 KiB; opening $IDLE_N idle sessions"
idle_sessions "$PT_OUT" postern
PT_OPENED="$IDLE_OPENED"
PT_RSS1="$(rss_kib "$POSTERN_PID")"
say "  $PT_OPENED sessions open: RSS $PT_RSS1 KiB"
stop_idle

# A fresh Postfix too: processes left from the runs above (smtpd, cleanup, smtp wait up to
# max_idle for more work) would blur the baseline and serve some of the new sessions.
say "restarting Postfix for the memory run"
postfix -c "$POSTFIX_CONF" stop >/dev/null 2>&1 || true
for _ in $(seq 100); do kill -0 "$PF_MASTER" 2>/dev/null || break; sleep 0.1; done
postfix -c "$POSTFIX_CONF" start >/dev/null 2>&1 || die "postfix did not restart"
wait_port "$PF_PORT" 30 >/dev/null || die "postfix did not listen again"
PF_MASTER="$(tr -d ' ' <"$W/postfix/queue/pid/master.pid")"
sleep 1

# Postfix: every process of the instance (the master and its children).
postfix_mem() { # prints `rss_kib pss_kib processes smtpd_processes`
    local pids p rss=0 pss=0 n=0 smtpd=0
    pids="$PF_MASTER $(pgrep -P "$PF_MASTER" | tr '\n' ' ')"
    for p in $pids; do
        [[ -r "/proc/$p/status" ]] || continue
        rss=$((rss + $(rss_kib "$p"))); pss=$((pss + $(pss_kib "$p"))); n=$((n + 1))
        [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == smtpd ]] && smtpd=$((smtpd + 1))
    done
    echo "$rss $pss $n $smtpd"
}
read -r PF_RSS0 PF_PSS0 PF_N0 _ < <(postfix_mem)
say "memory: Postfix at rest: $PF_N0 processes, RSS $PF_RSS0 KiB, PSS $PF_PSS0 KiB; opening $IDLE_N idle sessions"
idle_sessions "$PF_PORT" postfix
PF_OPENED="$IDLE_OPENED"
read -r PF_RSS1 PF_PSS1 PF_N1 PF_SMTPD < <(postfix_mem)
say "  $PF_OPENED sessions open: $PF_N1 processes ($PF_SMTPD smtpd), RSS $PF_RSS1 KiB, PSS $PF_PSS1 KiB"
stop_idle

# ---------------------------------------------------------------------------------------------
# The table.

PTA="$(median "${PT_ACC[@]}")"; PFA="$(median "${PF_ACC[@]}")"
PTD="$(median "${PT_DEL[@]}")"; PFD="$(median "${PF_DEL[@]}")"
PTC="$(median "${PT_CPU[@]}")"; PFC="$(median "${PF_CPU[@]}")"; CEILM="$(median "${CEIL[@]}")"
FIN="$(median "${FLOOR_IN[@]}")"; FOUT="$(median "${FLOOR_OUT[@]}")"
FLOOR="$(awk -v a="$FIN" -v b="$FOUT" 'BEGIN {printf "%.3f", a + b}')"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a/b; else print "n/a"}'; }
per_session() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {if (n > 0) printf "%.1f", (b-a)/n; else print "n/a"}'; }
verdict() { if awk "BEGIN {exit !($1)}"; then echo met; else echo MISSED; fi; }

PT_PER="$(per_session "$PT_RSS0" "$PT_RSS1" "$PT_OPENED")"
PF_PER="$(per_session "$PF_PSS0" "$PF_PSS1" "$PF_OPENED")"

echo
echo "Postern vs Postfix $(postconf -h mail_version) — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postern $(git -C "$ROOT_DIR" describe --always --dirty 2>/dev/null || echo '?'), $(uname -sr), spools on $(findmnt -no FSTYPE -T "$W" 2>/dev/null || echo '?')"
echo "N=$N messages x $ROUNDS rounds, smtp-source ${SOURCE_OPTS:+$SOURCE_OPTS }-s $SESSIONS -l $SIZE, warm-up $WARMUP, latency over $LAT_N messages, $IDLE_N idle sessions"
echo
printf '%-44s %12s %12s %10s  %s\n' "figure" "Postern" "Postfix" "ratio" "target"
printf '%-44s %12s %12s %10s  %s\n' "--------------------------------------------" "------------" "------------" "----------" "------"
printf '%-44s %12s %12s %10s  %s\n' "accepted, mails/s (median of rounds)" "$PTA" "$PFA" "$(ratio "$PTA" "$PFA")" \
    ">= 5x: $(verdict "$PTA >= 5 * $PFA")"
printf '%-44s %12s %12s %10s  %s\n' "delivered, mails/s (median of rounds)" "$PTD" "$PFD" "$(ratio "$PTD" "$PFD")" \
    ">= 1x: $(verdict "$PTD >= $PFD")"
printf '%-44s %12s %12s %10s  %s\n' "  smtp-source -> smtp-sink alone, mails/s" "$CEILM" "$CEILM" "" "(the ceiling on this machine now)"
printf '%-44s %12s %12s %10s  %s\n' "CPU per mail, accept + deliver, ms" "$PTC" "$PFC" "$(ratio "$PTC" "$PFC")" "(all processes of each server)"
printf '%-44s %12s %12s %10s  %s\n' "  floor: smtp-sink receiving + smtp-source -d" "$FLOOR" "$FLOOR" "" "($FIN + $FOUT: the network work of a relay alone)"
printf '%-44s %12s %12s %10s  %s\n' "end of DATA -> 250, median ms" "$PT_MED" "$PF_MED" "$(ratio "$PT_MED" "$PF_MED")" \
    "< 10 ms: $(verdict "$PT_MED < 10")"
printf '%-44s %12s %12s %10s  %s\n' "end of DATA -> 250, p99 ms" "$PT_P99" "$PF_P99" "$(ratio "$PT_P99" "$PF_P99")" ""
printf '%-44s %12s %12s %10s  %s\n' "memory at rest, KiB (Postfix: PSS, all procs)" "$PT_RSS0" "$PF_PSS0" "" ""
printf '%-44s %12s %12s %10s  %s\n' "memory with idle sessions, KiB" "$PT_RSS1" "$PF_PSS1" "" \
    "($PT_OPENED / $PF_OPENED sessions open)"
printf '%-44s %12s %12s %10s  %s\n' "  Postfix: sum of RSS over its processes" "" "$PF_RSS1" "" "($PF_N1 processes)"
printf '%-44s %12s %12s %10s  %s\n' "memory per idle session, KiB" "$PT_PER" "$PF_PER" "$(ratio "$PT_PER" "$PF_PER")" \
    "< 30 KiB: $(verdict "$PT_PER < 30")"
printf '%-44s %12s %12s %10s  %s\n' "start to listening, ms" "$PT_START_MS" "$PF_START_MS" "$(ratio "$PT_START_MS" "$PF_START_MS")" \
    "< 200 ms: $(verdict "$PT_START_MS < 200")"
echo
if ((${#MATRIX_ROWS[@]} > 0)); then
    echo "The cost curve (accepted and delivered mails/s; memory at the end of each run, MiB:"
    echo "Postern's RSS, Postfix's PSS over all its processes):"
    printf '%-9s %8s %6s %10s %10s %10s %10s %8s %8s\n' size sessions mails "acc PT" "acc PF" \
        "del PT" "del PF" "mem PT" "mem PF"
    printf '%s\n' "${MATRIX_ROWS[@]}"
    echo
fi
echo "raw: postern accepted/s ${PT_ACC[*]}; delivered/s ${PT_DEL[*]}; CPU ms/mail ${PT_CPU[*]}; starts ms ${PT_STARTS[*]}"
echo "raw: postfix accepted/s ${PF_ACC[*]}; delivered/s ${PF_DEL[*]}; CPU ms/mail ${PF_CPU[*]}; start ms $PF_START_MS"
echo "raw: smtp-source -> smtp-sink alone, mails/s ${CEIL[*]}; CPU ms/mail, the sink ${FLOOR_IN[*]}, smtp-source -d ${FLOOR_OUT[*]}"
echo "Postern's memory is the RSS of its one process (VmRSS); Postfix's is the PSS summed over the"
echo "master and its children (one smtpd per session), so shared pages are counted once."
