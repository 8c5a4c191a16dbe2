#!/usr/bin/env bash
# Runs the Postern desktop app on a fresh Debian/Ubuntu machine: installs the system packages
# the GUI needs (GTK for the tray, X11/Wayland/GL for the window) when they are missing,
# builds the release binary, and starts it. Arguments are passed to `postern`
# (e.g. `scripts/run.sh serve` for the headless server, `scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -n "${HOME:-}" ] && [ -d "$HOME/.cargo/bin" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

packages=(
    build-essential pkg-config
    libx11-dev libxkbcommon-dev libgl1-mesa-dev libwayland-dev libxcursor-dev libxrandr-dev libxi-dev
    libgtk-3-dev libxdo-dev libayatana-appindicator3-dev
)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust 1.95 or newer (https://rustup.rs) and run this again" >&2
    exit 1
fi
cargo build --release
exec target/release/postern "$@"
