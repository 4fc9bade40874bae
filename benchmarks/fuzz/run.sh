#!/usr/bin/env bash
# A bounded fuzzing campaign: ./benchmarks/fuzz/run.sh [SECONDS]  (default 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TOTAL="${1:-300}"
CORPUS="$(mktemp -d)"
find samples -type f -exec cp {} "$CORPUS"/ \;
if [ -d ../shared/data/feeds/realworld ]; then
  find ../shared/data/feeds/realworld -name '*.xml' -size -64k -exec cp {} "$CORPUS"/ \;
fi
mkdir -p benchmarks/fuzz/crashes
.venv/bin/python benchmarks/fuzz/fuzz_parse.py -max_total_time="$SECONDS_TOTAL" \
  -rss_limit_mb=4096 -timeout=20 -artifact_prefix=benchmarks/fuzz/crashes/ "$CORPUS"
