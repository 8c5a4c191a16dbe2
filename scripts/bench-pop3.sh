#!/usr/bin/env bash
# Postern's POP3 against Dovecot's on this machine, on copies of one Maildir.
#
#   scripts/bench-pop3.sh [N]
#
# Fills a Maildir with N messages of SIZE octets, gives each server its own copy, and times
# Python's poplib (plaintext on loopback for both: TLS would measure the cipher) logging in,
# listing (STAT, UIDL) and retrieving all N messages with RETR, ROUNDS times per server,
# alternating. The first round of each is the first open of the Maildir (Postern assigns the
# UIDs and moves new/ to cur/; Dovecot builds its index); the median of the others is the warm
# figure. Prints the times and Postern/Dovecot ratios (below 1 = Postern faster).
#
# Environment: BENCH_N=1000 (or the first argument), SIZE=10240, ROUNDS=4,
#   SKIP_BUILD=1 (use target/release/postern as built), KEEP=1 (keep the temp dir).
# Needs root (to start a private Dovecot whose mail process runs as nobody) and
# dovecot-pop3d (installed with apt-get when missing; its system service is not used).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

N="${1:-${BENCH_N:-1000}}"
SIZE="${SIZE:-10240}"
ROUNDS="${ROUNDS:-4}"
need_tools cargo "$PY"
[[ "$(id -u)" == 0 ]] || die "run as root (a private Dovecot with its mail process as nobody)"
need_packages dovecot-pop3d

postern_binary

make_workdir postern-bench-pop3
W="$WORKDIR"
say "work dir $W (N=$N, size=$SIZE, rounds=$ROUNDS)"
"$PY" "$LIB_DIR/make_maildir.py" "$W/maildir" "$N" "$SIZE"

# Each server gets its own copy of the Maildir; Dovecot gets Postern's own argon2id hash of
# the password, so both pay the same for a login.
P_PORT="$(free_port)"
mkdir -p "$W/postern"
postern_mailbox_serve "$W/postern" "$W/maildir" pop3 "$P_PORT"
D_PORT="$(free_port)"
mkdir -p "$W/dovecot"
dovecot_serve "$W/dovecot" "$W/maildir" pop3 "$D_PORT" "$ALICE_HASH"

run() { "$PY" "$LIB_DIR/pop3_retr.py" "$1" alice@example.test secret; }
P_RUNS=(); D_RUNS=()
for r in $(seq "$ROUNDS"); do
    P_RUNS+=("$(run "$P_PORT")")
    D_RUNS+=("$(run "$D_PORT")")
    say "round $r: postern ${P_RUNS[-1]}"
    say "round $r: dovecot ${D_RUNS[-1]}"
done

"$PY" - "$N" "$SIZE" <<PYEOF "${P_RUNS[@]}" -- "${D_RUNS[@]}"
import json, statistics, sys
n, size = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
cut = args.index("--")
p = [json.loads(a) for a in args[:cut]]
d = [json.loads(a) for a in args[cut + 1:]]
assert all(x["messages"] == int(n) for x in p + d), "a server did not list every message"
def warm(runs, key):
    return statistics.median(r[key] for r in runs[1:]) if len(runs) > 1 else runs[0][key]
print(f"POP3, {n} messages of ~{size} octets, poplib over loopback (seconds)")
print(f"{'':28}{'Postern':>10}{'Dovecot':>10}{'ratio':>8}")
for label, key, runs in [("first open (login+UIDL)", "open_s", 0), ("first RETR of all", "retr_s", 0),
                          ("warm open (login+UIDL)", "open_s", 1), ("warm RETR of all", "retr_s", 1)]:
    a = p[0][key] if runs == 0 else warm(p, key)
    b = d[0][key] if runs == 0 else warm(d, key)
    print(f"{label:28}{a:10.3f}{b:10.3f}{a / b:8.2f}")
PYEOF
