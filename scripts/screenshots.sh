#!/usr/bin/env bash
# Screenshots of the real desktop app: builds postern, starts `postern gui --no-tray` under
# Xvfb with a throw-away configuration (loopback ports, one domain and account, a few mails
# delivered so the log and chart have something to show) and saves the main window and each
# dialog into docs/screenshots/ (or the directory given as $1); and the window as a new user
# first sees it (first-run.png: a new data directory, nothing set up but a loopback port).
#
#   scripts/screenshots.sh [OUT_DIR]
#
# Needs xvfb-run, xwininfo, xdotool and ImageMagick's `import` (Debian: xvfb xauth x11-utils
# xdotool imagemagick), installed with apt-get when missing and allowed. The dialogs are opened at
# start through the hidden variable POSTERN_GUI_OPEN_DIALOG (smtp, access, outgoing, abuse,
# domains, dns, pop3, imap, testmail, about, or queue for the Queued Mails pane).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-docs/screenshots}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

need=()
command -v xvfb-run >/dev/null || need+=(xvfb xauth)
command -v xwininfo >/dev/null || need+=(x11-utils)
command -v xdotool >/dev/null || need+=(xdotool)
command -v import >/dev/null || need+=(imagemagick)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    echo "installing: ${need[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

cargo build --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/postern"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cfg="$tmp/postern.ron"
data="$tmp/data"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_in="$(free_port)"
port_out="$(free_port)"
p() { "$bin" --config "$cfg" --data-dir "$data" "$@"; }
# Outgoing mail goes to a relay host that is not there, so one mail stays queued for the
# Queued Mails shot; only loopback may relay.
port_relay="$(free_port)"
# POP3 and IMAP on loopback ports of their own (110 and 143 may be taken on this machine).
p config set smtp.incoming.port="$port_in" smtp.incoming.listen_ip=127.0.0.1 \
    pop3.port="$(free_port)" pop3.ssl_port="$(free_port)" pop3.listen_ip=127.0.0.1 \
    imap.port="$(free_port)" imap.ssl_port="$(free_port)" imap.listen_ip=127.0.0.1 \
    smtp.outgoing.enabled=true smtp.outgoing.port="$port_out" smtp.outgoing.listen_ip=127.0.0.1 \
    server.hostname=mail.example.com \
    access.smtp_auth.enabled=false 'access.ip_range.enabled=true' 'access.ip_range.ranges=["127.0.0.1", "192.168.1.0/24"]' \
    outgoing_mails.mode=Relay outgoing_mails.relay.host=127.0.0.1 outgoing_mails.relay.port="$port_relay" \
    outgoing_mails.relay.tls=None outgoing_mails.resend_delay=1h
# The first-run window: a configuration with only the incoming port chosen (loopback, so the
# shot needs no privilege), a new data directory.
first_cfg="$tmp/first-run.ron"
first_data="$tmp/first-run"
port_first="$(free_port)"
"$bin" --config "$first_cfg" --data-dir "$first_data" config set \
    smtp.incoming.port="$port_first" smtp.incoming.listen_ip=127.0.0.1 \
    pop3.enabled=false imap.enabled=false server.hostname=myhost
p domain add example.com
echo "s3cret-pass" | p account add alice@example.com --password-stdin
echo "s3cret-pass" | p account add bob@example.com --password-stdin

export POSTERN_SHOT_BIN="$bin" POSTERN_SHOT_CFG="$cfg" POSTERN_SHOT_DATA="$data" \
    POSTERN_SHOT_OUT="$out" POSTERN_SHOT_PORT="$port_in" POSTERN_SHOT_TMP="$tmp" \
    POSTERN_SHOT_PORT_OUT="$port_out" POSTERN_SHOT_FIRST_CFG="$first_cfg" \
    POSTERN_SHOT_FIRST_DATA="$first_data" POSTERN_SHOT_FIRST_PORT="$port_first"

# One X server for all shots; the app is started once per shot.
xvfb-run -a -s "-screen 0 1100x740x24" bash -s <<'INNER'
set -euo pipefail
# shot NAME DIALOG MAILS [CONFIG DATA_DIR PORT]: the app over the shared configuration, or
# over the one given.
shot() {
    local name="$1" dialog="$2" mails="$3"
    local cfg="${4:-$POSTERN_SHOT_CFG}" data="${5:-$POSTERN_SHOT_DATA}" port="${6:-$POSTERN_SHOT_PORT}"
    POSTERN_GUI_OPEN_DIALOG="$dialog" "$POSTERN_SHOT_BIN" --config "$cfg" \
        --data-dir "$data" gui --no-tray >"$POSTERN_SHOT_TMP/$name.log" 2>&1 &
    local pid=$! id=""
    for _ in $(seq 1 100); do
        id="$(xwininfo -root -tree 2>/dev/null | awk '/"Postern"/ {print $1; exit}')"
        [ -n "$id" ] && break
        sleep 0.2
    done
    [ -n "$id" ] || { echo "no window for $name:" >&2; cat "$POSTERN_SHOT_TMP/$name.log" >&2; kill "$pid"; exit 1; }
    # Wait until the server answers, then send some mail so the panes have content.
    for _ in $(seq 1 50); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" \
            "$port" 2>/dev/null && break
        sleep 0.2
    done
    if [ "$mails" -gt 0 ]; then
        python3 - "$POSTERN_SHOT_PORT" "$mails" <<'PY'
import smtplib, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.net") as s:
        s.sendmail("carol@example.net", ["alice@example.com", "bob@example.com"],
                   f"Subject: hello {i}\r\nFrom: carol@example.net\r\n\r\nMessage {i}.\r\n")
try:
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail("spam@example.net", ["nobody@example.org"], "Subject: relay?\r\n\r\nx\r\n")
except smtplib.SMTPException:
    pass
PY
    fi
    if [ "$name" = main-window ]; then
        python3 - "$POSTERN_SHOT_PORT_OUT" <<'PY'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("alice@example.com", ["friend@example.org", "team@example.net"],
               "Subject: see you\r\nFrom: alice@example.com\r\n\r\nTomorrow at ten.\r\n")
PY
    fi
    # The pointer off the window's widgets (Xvfb starts it in the middle, on a hover text).
    xdotool mousemove 1099 0
    sleep 3
    import -window "$id" "$POSTERN_SHOT_OUT/$name.png"
    kill "$pid"
    wait "$pid" || true
    echo "saved $POSTERN_SHOT_OUT/$name.png"
}
shot first-run "" 0 "$POSTERN_SHOT_FIRST_CFG" "$POSTERN_SHOT_FIRST_DATA" "$POSTERN_SHOT_FIRST_PORT"
shot main-window "" 6
shot queued-mails queue 0
shot smtp-settings smtp 0
shot access-control access 0
shot outgoing-mails outgoing 0
shot abuse-spam abuse 0
shot domains-accounts domains 0
shot send-test-mail testmail 0
shot pop3-settings pop3 0
shot imap-settings imap 0
shot about about 0
INNER
