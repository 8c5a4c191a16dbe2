# Shared helpers for the bench-*.sh, crash-test.sh and other scripts (sourced, not run).
# Everything started through `track_pid` is killed by `cleanup_all` (installed as the EXIT trap
# by the scripts); a private Postfix instance set up by `postfix_setup` is stopped there too.

LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$LIB_DIR/../.." && pwd)"
PY="${PYTHON:-python3}"

_TRACKED_PIDS=()
_POSTFIX_DIRS=()
_WORK_DIRS=()

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

now_ns() { date +%s%N; }

# track_pid PID: remember a process to kill at exit.
track_pid() { _TRACKED_PIDS+=("$1"); }

# untrack_pid PID: forget it (it was stopped on purpose).
untrack_pid() {
    local keep=() p
    for p in "${_TRACKED_PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
    _TRACKED_PIDS=("${keep[@]}")
}

# make_workdir PREFIX: a fresh temp dir (removed at exit unless KEEP=1) in WORKDIR. Not in a
# $(...) subshell: the list of dirs to remove lives in this shell.
make_workdir() {
    WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    # Postfix daemons (user postfix) must be able to traverse it.
    chmod 755 "$WORKDIR"
    _WORK_DIRS+=("$WORKDIR")
}

cleanup_all() {
    local rc=$? p d
    set +e
    for p in "${_TRACKED_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    sleep 0.3
    for p in "${_TRACKED_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for d in "${_POSTFIX_DIRS[@]}"; do
        postfix -c "$d" stop >/dev/null 2>&1 || true
        # `postfix stop` returns before every child has gone; wait a little for the master.
        local pidf
        pidf="$(postconf -c "$d" -h queue_directory 2>/dev/null)/pid/master.pid"
        for _ in $(seq 50); do
            [[ -f "$pidf" ]] && kill -0 "$(tr -d ' ' <"$pidf")" 2>/dev/null || break
            sleep 0.1
        done
    done
    if [[ "${KEEP:-0}" != 1 ]]; then
        for d in "${_WORK_DIRS[@]}"; do rm -rf "$d"; done
    else
        for d in "${_WORK_DIRS[@]}"; do say "kept $d"; done
    fi
    return $rc
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [TIMEOUT_S] [PID]: wait until 127.0.0.1:PORT answers with a 220 greeting.
# With PID, give up as soon as that process has exited.
wait_port() {
    "$PY" "$LIB_DIR/wait_smtp.py" "$1" "${2:-30}" "${3:-0}"
}

# need_tools: the commands these scripts use.
need_tools() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    if ((${#missing[@]})); then
        die "missing commands: ${missing[*]} (apt-get install postfix python3 procps)"
    fi
}

# build_postern: `cargo build --release --no-default-features`; sets POSTERN_BIN.
build_postern() {
    say "building the headless release binary (cargo build --release --no-default-features)"
    (cd "$ROOT_DIR" && cargo build --release --no-default-features --quiet) || die "build failed"
    local target="${CARGO_TARGET_DIR:-$ROOT_DIR/target}"
    POSTERN_BIN="$target/release/postern"
    [[ -x "$POSTERN_BIN" ]] || die "no binary at $POSTERN_BIN"
}

# postern_binary: sets POSTERN_BIN, the release binary as built already (SKIP_BUILD=1) or built
# now.
postern_binary() {
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        POSTERN_BIN="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/postern"
        [[ -x "$POSTERN_BIN" ]] || die "SKIP_BUILD=1 but no $POSTERN_BIN"
    else
        build_postern
    fi
}

# need_packages PACKAGE...: installs the Debian packages that are not installed yet (as root,
# with apt-get), or stops, naming them.
need_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ "$(id -u)" == 0 ]] || die "missing packages: ${missing[*]} (apt-get install ${missing[*]})"
    say "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}

# postern_mailbox_serve DIR MAILDIR SECTION PORT: `postern serve` with data in DIR/data and
# the configuration DIR/postern.ron: the account alice@example.test (password "secret") whose
# INBOX is a copy of MAILDIR, and one mailbox service, SECTION (pop3 or imap), on
# 127.0.0.1:PORT without implicit TLS (plaintext logins from loopback are the default: TLS would
# measure the cipher); the other mailbox service is off. Waits for the SMTP greeting; sets
# POSTERN_PID, and ALICE_HASH to her argon2id hash (so a Dovecot beside pays the same per login).
postern_mailbox_serve() {
    local dir="$1" maildir="$2" section="$3" port="$4" other smtp
    case "$section" in
        pop3) other=imap ;;
        imap) other=pop3 ;;
        *) die "postern_mailbox_serve: no mailbox service $section" ;;
    esac
    smtp="$(free_port)"
    cat >"$dir/postern.ron" <<RON
(
    server: (hostname: "postern.bench.test"),
    smtp: (incoming: (port: $smtp, listen_ip: "127.0.0.1")),
    $section: (enabled: true, port: $port, implicit_ssl: false, listen_ip: "127.0.0.1"),
    $other: (enabled: false),
    logs: (level: Info),
    domains: ["example.test"],
    accounts: [],
)
RON
    local pt=("$POSTERN_BIN" --config "$dir/postern.ron" --data-dir "$dir/data")
    echo secret | "${pt[@]}" account add alice@example.test --password-stdin >/dev/null \
        || die "postern rejects $dir/postern.ron"
    mkdir -p "$dir/data/mailboxes/example.test"
    cp -a "$maildir" "$dir/data/mailboxes/example.test/alice"
    "${pt[@]}" serve 2>"$dir/postern.log" &
    POSTERN_PID=$!
    track_pid "$POSTERN_PID"
    wait_port "$smtp" 30 "$POSTERN_PID" >/dev/null || die "postern did not start (see $dir/postern.log)"
    ALICE_HASH="$(grep -o '\$argon2id[^"]*' "$dir/postern.ron" | head -1)"
    [[ -n "$ALICE_HASH" ]] || die "no argon2id hash in $dir/postern.ron"
}

# dovecot_serve DIR MAILDIR PROTOCOL PORT HASH: a private Dovecot under DIR (own base_dir, no
# system configuration; Debian's dovecot-pop3d or dovecot-imapd, its system service unused)
# serving PROTOCOL (pop3 or imap) plaintext on 127.0.0.1:PORT, with the account
# alice@example.test (argon2id HASH) whose mail is a copy of MAILDIR. Needs root: its mail
# process runs as nobody (Dovecot never gives mail to uid 0). Waits for the port; sets
# DOVECOT_PID.
dovecot_serve() {
    local dir="$1" maildir="$2" proto="$3" port="$4" hash="$5"
    [[ "$(id -u)" == 0 ]] || die "run as root (a private Dovecot with its mail process as nobody)"
    command -v dovecot >/dev/null || die "dovecot missing (apt-get install dovecot-${proto}d)"
    mkdir -p "$dir/run" "$dir/state" "$dir/home"
    printf 'alice@example.test:{ARGON2ID}%s\n' "$hash" >"$dir/passwd"
    cp -a "$maildir" "$dir/mail"
    chown -R nobody:nogroup "$dir/mail" "$dir/home"
    cat >"$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = $proto
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:$dir/mail
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/home
}
service $proto-login {
  inet_listener $proto {
    port = $port
  }
  inet_listener ${proto}s {
    port = 0
  }
}
CONF
    dovecot -F -c "$dir/dovecot.conf" 2>"$dir/stderr" &
    DOVECOT_PID=$!
    track_pid "$DOVECOT_PID"
    local _
    for _ in $(seq 100); do
        "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return 0
        kill -0 "$DOVECOT_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/stderr" >&2
    die "dovecot did not start on $port (see $dir/dovecot.log)"
}

# start_sink PORT LOGFILE [smtp-sink options...]: Postfix's smtp-sink on 127.0.0.1:PORT in the
# background; sets SINK_PID.
start_sink() {
    local port="$1" log="$2"; shift 2
    local user=()
    [[ "$(id -u)" == 0 ]] && user=(-u root)
    /usr/sbin/smtp-sink "${user[@]}" "$@" "127.0.0.1:$port" 1024 >"$log" 2>&1 &
    SINK_PID=$!
    track_pid "$SINK_PID"
    "$PY" "$LIB_DIR/wait_smtp.py" "$port" 10 "$SINK_PID" >/dev/null || die "smtp-sink did not start on $port (see $log)"
}

# postern_config FILE IN_PORT OUT_PORT SINK_PORT: a relay-mode configuration: outgoing SMTP on
# OUT_PORT for 127.0.0.0/8 without AUTH, every outbound mail to the smtp-sink on SINK_PORT.
postern_config() {
    local file="$1" in_port="$2" out_port="$3" sink_port="$4"
    cat >"$file" <<RON
(
    server: (hostname: "postern.bench.test"),
    smtp: (
        incoming: (port: $in_port, listen_ip: "127.0.0.1"),
        outgoing: (enabled: true, port: $out_port, listen_ip: "127.0.0.1"),
        max_connections_per_port: ${POSTERN_MAX_CONN:-2000},
    ),
    access: (
        smtp_auth: (enabled: false),
        ip_range: (enabled: true, ranges: ["127.0.0.0/8"]),
    ),
    abuse: (max_connections_per_ip: 0),
    outgoing_mails: (
        mode: Relay,
        relay: (host: "127.0.0.1", port: $sink_port, tls: None),
        outbound_tls: None,
        resend_delay: "${POSTERN_RESEND_DELAY:-5m}",
        max_connections: ${POSTERN_OUT_CONN:-20},
        max_connections_per_domain: ${POSTERN_OUT_CONN:-20},
    ),
    domains: ["postern.bench.test"],
)
RON
    "$POSTERN_BIN" --config "$file" config check >/dev/null || die "postern rejects the generated config $file"
}

# counting_sink PORT COUNT TAG: an smtp-sink that exits after COUNT messages and then writes the
# time (ns) into $W/TAG.done (W: the calling script's work dir). Sets CSINK_WRAPPER.
counting_sink() {
    local port="$1" count="$2" tag="$3" user=()
    [[ "$(id -u)" == 0 ]] && user=(-u root)
    rm -f "$W/$tag.done"
    (
        /usr/sbin/smtp-sink "${user[@]}" -M "$count" "127.0.0.1:$port" 1024 >"$W/$tag.sink.log" 2>&1 &
        echo $! >"$W/$tag.sinkpid"
        wait $! || true
        date +%s%N >"$W/$tag.done"
    ) &
    CSINK_WRAPPER=$!
    track_pid "$CSINK_WRAPPER"
    wait_port "$port" 10 "$CSINK_WRAPPER" >/dev/null || die "smtp-sink did not start on $port"
    track_pid "$(cat "$W/$tag.sinkpid")"
}

# wait_done TAG TIMEOUT_S: wait for $W/TAG.done; prints its time, or fails.
wait_done() {
    local deadline=$((SECONDS + $2))
    while [[ ! -s "$W/$1.done" ]]; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    cat "$W/$1.done"
}

# start_postern CONFIG DATA_DIR LOG PORT: `postern serve` in the background, waits for its 220;
# sets POSTERN_PID.
start_postern() {
    local cfg="$1" data="$2" log="$3" port="$4"
    "$POSTERN_BIN" --config "$cfg" --data-dir "$data" serve >>"$log" 2>&1 &
    POSTERN_PID=$!
    track_pid "$POSTERN_PID"
    wait_port "$port" 30 "$POSTERN_PID" >/dev/null || { tail -20 "$log" >&2; die "postern did not start (log: $log)"; }
}

# postfix_setup DIR SMTPD_PORT SINK_PORT: a private Postfix instance under DIR (config in
# DIR/etc, queue in DIR/queue, data in DIR/data, log in DIR/maillog) that listens on
# 127.0.0.1:SMTPD_PORT, relays everything to [127.0.0.1]:SINK_PORT and trusts 127.0.0.0/8.
# Not started. Sets POSTFIX_CONF.
postfix_setup() {
    local dir="$1" port="$2" sink="$3"
    getent passwd postfix >/dev/null && getent group postdrop >/dev/null \
        || die "the postfix user and postdrop group are missing (apt-get install postfix creates them)"
    POSTFIX_CONF="$dir/etc"
    mkdir -p "$POSTFIX_CONF" "$dir/queue" "$dir/data"
    chown postfix:postfix "$dir/data"
    cat >"$POSTFIX_CONF/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$sink
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
biff = no
default_process_limit = ${POSTFIX_PROCS:-100}
CF
    # chroot off everywhere: nothing needs copying into the queue directory.
    cat >"$POSTFIX_CONF/master.cf" <<CF
127.0.0.1:$port inet n - n - ${POSTFIX_SMTPD_PROCS:-1100} smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
    _POSTFIX_DIRS+=("$POSTFIX_CONF")
    postfix -c "$POSTFIX_CONF" check >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "postfix check failed"; }
}

# rss_kib PID: resident set size in KiB (VmRSS).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# pss_kib PID: proportional set size in KiB (shared pages split between sharers).
pss_kib() { awk '/^Pss:/ {print $2; exit}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
