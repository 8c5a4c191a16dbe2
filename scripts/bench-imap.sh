#!/usr/bin/env bash
# Postern's IMAP against Dovecot's on this machine, on copies of one Maildir.
#
#   scripts/bench-imap.sh [N]
#
# Fills a Maildir with N messages of SIZE octets, gives each server its own copy, and times
# Python's imaplib (plaintext on loopback for both: TLS would measure the cipher): LOGIN and
# SELECT of the folder; FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO
# SUBJECT DATE)]), a client's first look at it; and a UID FETCH of WHOLE messages whole
# (BODY.PEEK[]). ROUNDS times per server, alternating. The first round of each is the first
# open of the Maildir (cold: Postern assigns the UIDs and moves new/ to cur/, Dovecot builds
# its index and cache); the median of the others is the warm figure. Prints the times and
# Postern/Dovecot ratios (below 1 = Postern faster). The times include imaplib's own parsing,
# the same for both servers. When this Postern does not serve IMAP, Dovecot's half is printed
# alone.
#
# Environment: BENCH_N=10000 (or the first argument), SIZE=4096, WHOLE=1000, ROUNDS=4,
#   SKIP_BUILD=1 (use target/release/postern as built), KEEP=1 (keep the temp dir).
# Needs root (to start a private Dovecot whose mail process runs as nobody) and
# dovecot-imapd (installed with apt-get when missing; its system service is not used).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
trap cleanup_all EXIT

N="${1:-${BENCH_N:-10000}}"
SIZE="${SIZE:-4096}"
WHOLE="${WHOLE:-1000}"
ROUNDS="${ROUNDS:-4}"
need_tools cargo "$PY"
[[ "$(id -u)" == 0 ]] || die "run as root (a private Dovecot with its mail process as nobody)"
need_packages dovecot-imapd

postern_binary

make_workdir postern-bench-imap
W="$WORKDIR"
say "work dir $W (N=$N, size=$SIZE, whole=$WHOLE, rounds=$ROUNDS)"
"$PY" "$LIB_DIR/make_maildir.py" "$W/maildir" "$N" "$SIZE"

# Each server gets its own copy of the Maildir; Dovecot gets Postern's own argon2id hash of
# the password, so both pay the same for a login.
P_PORT="$(free_port)"
mkdir -p "$W/postern"
postern_mailbox_serve "$W/postern" "$W/maildir" imap "$P_PORT"
D_PORT="$(free_port)"
mkdir -p "$W/dovecot"
dovecot_serve "$W/dovecot" "$W/maildir" imap "$D_PORT" "$ALICE_HASH"

# Whether Postern answers IMAP (a build from before the IMAP server does not).
P_IMAP=0
if "$PY" - "$P_PORT" <<'PYEOF'; then P_IMAP=1; fi
import socket, sys, time
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1) as s:
            s.settimeout(5)
            sys.exit(0 if s.recv(100).startswith(b"* OK") else 1)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PYEOF
[[ "$P_IMAP" == 1 ]] || warn "this Postern does not serve IMAP (no greeting on $P_PORT): Dovecot alone"

run() { "$PY" "$LIB_DIR/imap_fetch.py" "$1" alice@example.test secret "$WHOLE"; }
P_RUNS=(); D_RUNS=()
for r in $(seq "$ROUNDS"); do
    if [[ "$P_IMAP" == 1 ]]; then
        P_RUNS+=("$(run "$P_PORT")")
        say "round $r: postern ${P_RUNS[-1]}"
    fi
    D_RUNS+=("$(run "$D_PORT")")
    say "round $r: dovecot ${D_RUNS[-1]}"
done

"$PY" - "$N" "$SIZE" "$WHOLE" <<PYEOF "${P_RUNS[@]}" -- "${D_RUNS[@]}"
import json, statistics, sys
n, size, whole = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
args = sys.argv[4:]
cut = args.index("--")
p = [json.loads(a) for a in args[:cut]]
d = [json.loads(a) for a in args[cut + 1:]]
assert all(x["messages"] == n for x in p + d), "a server did not show every message"
assert all(x["fetched"] == min(n, whole) for x in p + d), "a server did not send every message"
if p:
    assert p[0]["octets"] == d[0]["octets"], f"different bodies: {p[0]['octets']} vs {d[0]['octets']} octets"
def cold(runs, key):
    return runs[0][key]
def warm(runs, key):
    return statistics.median(r[key] for r in runs[1:]) if len(runs) > 1 else runs[0][key]
print(f"IMAP, {n} messages of ~{size} octets, imaplib over loopback (seconds)")
print(f"{'':36}{'Postern':>10}{'Dovecot':>10}{'ratio':>8}")
for label, key, pick in [
    ("cold LOGIN+SELECT", "open_s", cold),
    ("cold FETCH 1:* headers", "headers_s", cold),
    (f"cold UID FETCH {min(n, whole)} whole", "whole_s", cold),
    ("warm LOGIN+SELECT", "open_s", warm),
    ("warm FETCH 1:* headers", "headers_s", warm),
    (f"warm UID FETCH {min(n, whole)} whole", "whole_s", warm),
]:
    b = pick(d, key)
    if p:
        a = pick(p, key)
        print(f"{label:36}{a:10.3f}{b:10.3f}{a / b:8.2f}")
    else:
        print(f"{label:36}{'n/a':>10}{b:10.3f}{'n/a':>8}")
PYEOF
