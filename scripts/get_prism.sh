#!/usr/bin/env bash
# Print the path of a cached Apache Beam Prism runner binary, building it from the
# Go module proxy if needed (Beam's PrismRunner would otherwise download it from
# GitHub, which is unreachable offline).
#
#   scripts/get_prism.sh            -> /root/.cache/newsbeam/prism/v2.77.0/bin/prism
#   python -m pipeline.main ... --runner=PrismRunner --prism_location="$(scripts/get_prism.sh)"
#
# stdout: the binary path and nothing else. Progress and errors: stderr.
# Exit 1 with a one-line message if `go` is missing or the build fails.
#
# Environment:
#   NEWSBEAM_CACHE          cache root (default: $HOME/.cache/newsbeam)
#   NEWSBEAM_PRISM_VERSION  Beam version to pin, e.g. 2.77.0 (default: installed apache_beam)
#   NEWSBEAM_PYTHON         python used to read the installed apache_beam version
#                           (default: <repo>/.venv/bin/python, then python3)
#   NEWSBEAM_GO             go binary (default: `go` on PATH, then /usr/local/go/bin/go)
#   NEWSBEAM_PRISM_BUILD_TIMEOUT  seconds allowed for `go install` (default: 600)
set -euo pipefail

FALLBACK_VERSION="2.77.0"
PRISM_PKG="github.com/apache/beam/sdks/v2/go/cmd/prism"
ME="get_prism.sh"

log() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$ME" "$*" >&2; exit 1; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"

# --- which Beam version to pin -------------------------------------------------
beam_version() {
    if [[ -n "${NEWSBEAM_PRISM_VERSION:-}" ]]; then
        printf '%s\n' "${NEWSBEAM_PRISM_VERSION#v}"
        return
    fi
    local py v=""
    for py in "${NEWSBEAM_PYTHON:-}" "$repo_dir/.venv/bin/python" python3; do
        [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 || continue
        # importlib.metadata: no `import apache_beam` (slow, noisy).
        command -v timeout >/dev/null 2>&1 || break
        v="$(timeout 30 "$py" -c \
            'import importlib.metadata as m; print(m.version("apache-beam"))' \
            2>/dev/null || true)"
        [[ -n "$v" ]] && break
    done
    if [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        printf '%s\n' "$v"
    else
        # Not installed, or a dev/rc build with no matching Go module tag.
        [[ -n "$v" ]] && log "apache_beam version '$v' has no release tag; using $FALLBACK_VERSION"
        printf '%s\n' "$FALLBACK_VERSION"
    fi
}

version="$(beam_version)"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "invalid Beam version '$version'"
cache_root="${NEWSBEAM_CACHE:-$HOME/.cache/newsbeam}"
bin_dir="$cache_root/prism/v$version/bin"
binary="$bin_dir/prism"

# --- fast path: already built ---------------------------------------------------
if [[ -x "$binary" && -s "$binary" ]]; then
    printf '%s\n' "$binary"
    exit 0
fi

# --- build ------------------------------------------------------------------------
go_bin="${NEWSBEAM_GO:-}"
if [[ -z "$go_bin" ]]; then
    go_bin="$(command -v go 2>/dev/null || true)"
    [[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
fi
[[ -n "$go_bin" ]] && command -v "$go_bin" >/dev/null 2>&1 \
    || die "'go' not found (install Go or set NEWSBEAM_GO) - cannot build prism v$version"

command -v timeout >/dev/null 2>&1 || die "'timeout' (coreutils) not found - refusing to run an unbounded build"
mkdir -p "$bin_dir" || die "cannot create $bin_dir"

# Serialise concurrent builds (two `newsbeam stream` starting at once).
exec 9>"$bin_dir/.lock"
if command -v flock >/dev/null 2>&1; then
    flock -w "${NEWSBEAM_PRISM_BUILD_TIMEOUT:-600}" 9 || die "timed out waiting for lock $bin_dir/.lock"
fi
if [[ -x "$binary" && -s "$binary" ]]; then   # built by another process meanwhile
    printf '%s\n' "$binary"
    exit 0
fi

tmp_bin="$(mktemp -d "$bin_dir/.build.XXXXXX")"
build_log="$bin_dir/build.log"
trap 'rm -rf "$tmp_bin"' EXIT

log "building prism v$version with $go_bin (first time only, ~1 min; log: $build_log)"
start=$SECONDS
rc=0
# cd / : keep any go.mod/go.work in the caller's directory out of the way.
# GOFLAGS=-mod=mod: ignore an inherited -mod=vendor/readonly setting.
(
    cd / && GOBIN="$tmp_bin" GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
        timeout --kill-after=10 "${NEWSBEAM_PRISM_BUILD_TIMEOUT:-600}" \
        "$go_bin" install "$PRISM_PKG@v$version"
) </dev/null >"$build_log" 2>&1 || rc=$?

if [[ $rc -ne 0 || ! -s "$tmp_bin/prism" ]]; then
    last="$(grep -v '^[[:space:]]*$' "$build_log" 2>/dev/null | tail -n 1 | sed 's/^[[:space:]]*//' || true)"
    [[ $rc -eq 124 || $rc -eq 137 ]] && last="timed out after ${NEWSBEAM_PRISM_BUILD_TIMEOUT:-600}s"
    die "go install $PRISM_PKG@v$version failed (exit $rc): ${last:-no output} (full log: $build_log)"
fi

chmod +x "$tmp_bin/prism"
mv -f "$tmp_bin/prism" "$binary"   # atomic within the same directory tree
log "built $binary in $((SECONDS - start))s"
printf '%s\n' "$binary"
