#!/usr/bin/env bash
# Postern's whole test command, for a fresh Debian 12 machine (root, or a
# user with sudo): installs what the build and the tests need, then runs
# rustfmt, a GUI-less build, clippy and the full test suite.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "${HOME:-}" ] && [ -d "$HOME/.cargo/bin" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

section() {
    printf '\n==== %s ====\n' "$*"
}

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
else
    SUDO=(sudo)
fi

section "System packages"
# Build deps for the GUI (eframe: X11/Wayland/GL), the third-party SMTP peers
# used by the tests (swaks with TLS support, Python 3, Postfix's
# smtp-source/smtp-sink).
packages=(
    build-essential pkg-config
    # GUI build: eframe (X11/Wayland/GL) and the tray (GTK, appindicator, xdo)
    libx11-dev libxkbcommon-dev libgl1-mesa-dev libwayland-dev
    libxcursor-dev libxrandr-dev libxi-dev
    libgtk-3-dev libxdo-dev libayatana-appindicator3-dev
    # GUI tests: a real window and tray under Xvfb with a private D-Bus
    xvfb xauth dbus-daemon libayatana-appindicator3-1 libgl1-mesa-dri
    # test peers: swaks (with TLS), Python 3, Postfix's smtp-source/smtp-sink, dnsmasq,
    # dkimpy and Mail::DKIM (the third-party DKIM verifiers of tests/dkim.rs; dkimpy's
    # Ed25519 needs python3-nacl; libcryptx-perl is Crypt::PK::Ed25519, for a Mail::DKIM
    # that verifies Ed25519, which Debian 12's 1.20230212 does not yet)
    swaks libnet-ssleay-perl libio-socket-ssl-perl
    python3
    python3-dkim python3-dnspython python3-nacl
    libmail-dkim-perl libcryptx-perl
    # tests/mail_auth.rs: an RSA key for the messages dkimpy signs
    openssl
    postfix
    dnsmasq-base
    # POP3 clients of tests/pop3.rs: curl (pop3://, pop3s://) and fetchmail (STLS)
    curl fetchmail
    # IMAP clients of tests/imap.rs: curl (imap://, imaps://), isync (mbsync over IMAPS) and
    # mutt (over IMAPS, in a pseudo-terminal from util-linux's `script`)
    isync mutt
    # a server in a network namespace of its own with a non-loopback address on lo
    iproute2 util-linux
    ca-certificates
)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg -s "$p" >/dev/null 2>&1; then
        missing+=("$p")
    fi
done
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3)
fi
if ! command -v smtp-source >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-source ]; then
    case " ${missing[*]-} " in *" postfix "*) ;; *) missing+=(postfix) ;; esac
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    # Postfix must not be configured as a running mail server on port 25:
    # preseed "No configuration" and forbid service starts during install.
    echo "postfix postfix/main_mailer_type select No configuration" \
        | "${SUDO[@]}" debconf-set-selections 2>/dev/null || true
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
    if [ "$created_policy" -eq 1 ]; then
        "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
    fi
else
    echo "all system packages present"
fi
# Whatever happened above, a Postfix daemon is not wanted during the tests.
if command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ]; then
    if "${SUDO[@]}" /usr/sbin/postfix status >/dev/null 2>&1; then
        echo "stopping the system Postfix"
        "${SUDO[@]}" /usr/sbin/postfix stop >/dev/null 2>&1 || true
    fi
fi
export PATH="$PATH:/usr/sbin"

section "Rust toolchain"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
cargo --version
cargo fmt --version
cargo clippy --version

section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo build --no-default-features"
cargo build --no-default-features

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

section "cargo test"
cargo test
