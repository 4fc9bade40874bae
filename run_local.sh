#!/usr/bin/env bash
# newsbeam on a fresh machine:
#   ./run_local.sh          create .venv if missing, install, run the pipeline on samples/ into ./out
#   ./run_local.sh test     the same set-up, then the test suite (extra args go to pytest)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${NEWSBEAM_VENV:-.venv}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  echo "run_local.sh: error: Python 3.10 or newer is needed (found: $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Install only when pyproject.toml changed since the last install (a stamp file records it).
STAMP="$VENV/.newsbeam-installed"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "==> installing newsbeam and its dependencies into $VENV"
  LOG="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
         "$VENV/bin/python" -m pip install -e ".[test]"; } >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "run_local.sh: error: installing dependencies failed (full log: $LOG)" >&2
    exit 1
  fi
  touch "$STAMP"
fi

case "${1:-run}" in
  test)
    shift || true
    # `newsbeam stream` runs on Beam's Prism runner: built once from the Go module proxy and
    # cached (~60 s the first time); without Go the streaming tests say why they fail
    NEWSBEAM_PYTHON="$VENV/bin/python" scripts/get_prism.sh >/dev/null || echo "run_local.sh: warning: no Prism runner (see above)" >&2
    set +e
    "$VENV/bin/python" -m pytest "$@"
    code=$?
    set -e
    if [ "$code" -eq 5 ]; then
      echo "run_local.sh: error: pytest collected no tests" >&2
      exit 1
    fi
    exit "$code"
    ;;
  run)
    OUT="${OUT:-out}"
    echo "==> newsbeam run samples --output $OUT"
    "$VENV/bin/newsbeam" run samples --output "$OUT"
    "$VENV/bin/python" - "$OUT" <<'PY'
import sys

import pandas as pd

out = sys.argv[1]
df = pd.read_parquet(f"{out}/articles")
print(f"\n{len(df)} articles in {out}/articles; a few titles:")
for row in df.sort_values("published_at", na_position="last").head(5).itertuples():
    when = row.published_at.date() if not pd.isna(row.published_at) else "undated"
    source = row.source if isinstance(row.source, str) else "no source"
    print(f"  {when}  {row.title}  ({source})")
print(f'\nopen it: pandas.read_parquet("{out}/articles")')
PY
    ;;
  *)
    echo "usage: ./run_local.sh [test [pytest args...]]" >&2
    exit 2
    ;;
esac
