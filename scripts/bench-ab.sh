#!/usr/bin/env bash
# Two Postern builds on the same load, in alternating rounds: how far a change moved the
# figures, measured side by side (one build's rounds and the other's see the same machine).
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY
#
# Each round starts each build on a fresh data directory, sends WARMUP mails, then N with
# `smtp-source -s 20 -l 1024` relaying to smtp-sink (as scripts/bench.sh does), and stops it.
# Prints, per build, the median over the rounds of: mails accepted per second, mails delivered
# per second, and CPU per mail (user + system of the one process, accept and deliver).
#
# Environment (all optional): BENCH_N=5000 ROUNDS=5 WARMUP=200 SESSIONS=20 SIZE=1024
# POSTERN_OUT_CONN=20 KEEP=1 TMPDIR
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

[[ $# == 2 && -x "$1" && -x "$2" ]] || die "usage: $0 OLD_BINARY NEW_BINARY (both executable)"
BINS=("$1" "$2")
N="${BENCH_N:-5000}"
ROUNDS="${ROUNDS:-5}"
WARMUP="${WARMUP:-200}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-1024}"
need_tools awk smtp-source smtp-sink "$PY"

make_workdir postern-ab
W="$WORKDIR"
CLK_TCK="$(getconf CLK_TCK)"

# run BINARY TAG: one build through the warm-up and the measured load; prints
# "accepted/s delivered/s cpu-ms/mail".
run() {
    local bin="$1" tag="$2" in out sink t0 t1 t2 c0 c1
    in=$(free_port); out=$(free_port); sink=$(free_port)
    POSTERN_BIN="$bin"
    postern_config "$W/$tag.ron" "$in" "$out" "$sink"
    start_postern "$W/$tag.ron" "$W/$tag.data" "$W/$tag.log" "$out"
    for count in "$WARMUP" "$N"; do
        counting_sink "$sink" "$count" "$tag.$count"
        c0="$(awk '{print $14 + $15}' "/proc/$POSTERN_PID/stat")"
        t0=$(now_ns)
        smtp-source -s "$SESSIONS" -l "$SIZE" -m "$count" -f bench@client.test -t rcpt@far.test \
            -M client.test "127.0.0.1:$out" >"$W/$tag.source.log" 2>&1 \
            || { cat "$W/$tag.source.log" >&2; die "smtp-source against $bin failed"; }
        t1=$(now_ns)
        t2="$(wait_done "$tag.$count" 600)" || die "$bin: the sink did not get all $count mails"
        kill -0 "$CSINK_WRAPPER" 2>/dev/null && wait "$CSINK_WRAPPER" 2>/dev/null || true
        c1="$(awk '{print $14 + $15}' "/proc/$POSTERN_PID/stat")"
    done
    kill -TERM "$POSTERN_PID"; wait "$POSTERN_PID" 2>/dev/null || true; untrack_pid "$POSTERN_PID"
    rm -rf "$W/$tag.data"
    awk -v n="$N" -v a=$((t1 - t0)) -v d=$((t2 - t0)) -v c=$((c1 - c0)) -v hz="$CLK_TCK" \
        'BEGIN {printf "%.0f %.0f %.3f\n", n / (a / 1e9), n / (d / 1e9), c * 1000 / hz / n}'
}

declare -A RES
for r in $(seq "$ROUNDS"); do
    for i in 0 1; do
        # The order alternates, so neither build always runs right after the other.
        j=$(( (i + r) % 2 ))
        line="$(run "${BINS[$j]}" "b$j.r$r")"
        RES[$j]+="$line"$'\n'
        say "round $r, build $((j + 1)) (${BINS[$j]}): accepted/s delivered/s CPU-ms/mail = $line"
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%-28s %12s %12s %12s\n' "build ($ROUNDS rounds, N=$N)" "accepted/s" "delivered/s" "CPU ms/mail"
for j in 0 1; do
    col() { printf '%s' "${RES[$j]}" | awk -v c="$1" 'NF {print $c}' | median; }
    printf '%-28s %12s %12s %12s\n' "$((j + 1)): $(basename "$(dirname "$(dirname "${BINS[$j]}")")")" \
        "$(col 1)" "$(col 2)" "$(col 3)"
done
