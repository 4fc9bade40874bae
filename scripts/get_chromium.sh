#!/usr/bin/env bash
# Print the path of a headless-capable Chromium (or Chrome), installing Debian's `chromium`
# package with apt-get when none is found. tests/pipeline/test_report.py renders the HTML
# report in it (offline); without one that test skips.
#
#   scripts/get_chromium.sh            -> /usr/bin/chromium
#
# Idempotent: a browser already installed is found and nothing is installed.
# stdout: the binary path and nothing else. Progress and errors: stderr.
# Exit 1 with a one-line message when none is found and it cannot be installed (no apt-get,
# not root and no password-less sudo, or the install failed).
#
# Environment:
#   NEWSBEAM_CHROMIUM     the browser to use (a name on PATH or a path); checked, never
#                         installed over
#   NEWSBEAM_APT_TIMEOUT  seconds allowed for each apt-get call (default: 900)
set -euo pipefail

ME="get_chromium.sh"
NAMES=(chromium chromium-browser google-chrome google-chrome-stable chrome)
APT_TIMEOUT="${NEWSBEAM_APT_TIMEOUT:-900}"

log() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$ME" "$*" >&2; exit 1; }

# A browser that starts: Ubuntu's `chromium-browser` can be a stub that only asks for snap.
works() {
    timeout 60 "$1" --version </dev/null >/dev/null 2>&1
}

find_browser() {
    local name path
    for name in "${NAMES[@]}"; do
        path="$(command -v "$name" 2>/dev/null)" || continue
        if works "$path"; then
            printf '%s\n' "$path"
            return 0
        fi
        log "ignoring $path: '$path --version' fails"
    done
    return 1
}

command -v timeout >/dev/null 2>&1 || die "'timeout' (coreutils) not found"

# --- an explicit choice ---------------------------------------------------------------------
if [[ -n "${NEWSBEAM_CHROMIUM:-}" ]]; then
    path="$(command -v "$NEWSBEAM_CHROMIUM" 2>/dev/null)" \
        || die "NEWSBEAM_CHROMIUM=$NEWSBEAM_CHROMIUM: no such program"
    works "$path" || die "NEWSBEAM_CHROMIUM=$NEWSBEAM_CHROMIUM: '$path --version' fails"
    printf '%s\n' "$path"
    exit 0
fi

# --- fast path: already installed -------------------------------------------------------------
if find_browser; then
    exit 0
fi

# --- install ----------------------------------------------------------------------------------
command -v apt-get >/dev/null 2>&1 \
    || die "no Chromium found and no apt-get to install it: install Chromium or Chrome, or set NEWSBEAM_CHROMIUM"
if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    die "no Chromium found and not root (no password-less sudo): run 'apt-get install chromium' as root"
fi

log_file="$(mktemp "${TMPDIR:-/tmp}/newsbeam-get-chromium.XXXXXX")"
apt() {
    # DPkg::Lock::Timeout: wait for another apt (an unattended upgrade) instead of failing.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        timeout --kill-after=10 "$APT_TIMEOUT" apt-get -q -y -o DPkg::Lock::Timeout=300 "$@" \
        </dev/null >>"$log_file" 2>&1
}

log "no Chromium found: installing Debian's chromium package (about a minute; log: $log_file)"
start=$SECONDS
# Stale or missing package lists ("Unable to locate package"): update once, then retry.
if ! apt install chromium; then
    apt update && apt install chromium || {
        last="$(grep -E '^(E|W):' "$log_file" | tail -n 1 || true)"
        [[ -z "$last" ]] && last="$(grep -v '^[[:space:]]*$' "$log_file" | tail -n 1 || true)"
        die "apt-get install chromium failed: ${last:-no output} (full log: $log_file)"
    }
fi

path="$(find_browser)" || die "chromium installed but no working binary found (log: $log_file)"
log "installed $path in $((SECONDS - start))s"
rm -f "$log_file"
printf '%s\n' "$path"
