#!/usr/bin/env bash
# get_jobserver.sh flink|spark — print the path of a cached Beam job-server jar for the
# portable FlinkRunner or SparkRunner, fetching it through Maven the first time.
#
# stdout: the jar's path, and nothing else. Progress goes to stderr; a failure is one line on
# stderr and exit 1. Idempotent: a second call prints the cached path without touching the
# network. Concurrent calls wait for each other (flock). Never hangs: the whole fetch has a
# deadline (NEWSBEAM_FETCH_TIMEOUT seconds, default 900).
#
# Where the jar comes from:
#   1. official: org.apache.beam:beam-runners-flink-<minor>-job-server:<beam version>, with
#      <minor> the newest Flink that the installed Python FlinkRunner supports, or
#      org.apache.beam:beam-runners-spark-3-job-server:<beam version>. <beam version> is the
#      installed apache_beam's (NEWSBEAM_BEAM_VERSION overrides it; fallback 2.77.0).
#   2. assembled, when the official jar is not served (a partial Maven mirror): the runner's
#      own Maven artifacts at a Beam version the mirror serves whole (Flink 1.19 / Spark 3.5,
#      Beam NEWSBEAM_ASSEMBLED_BEAM_VERSION, default 2.62.0) copied into a lib/ folder, plus
#      a small launcher jar whose manifest names the job-server main class and the lib/ jars
#      (Class-Path), so Beam's `java -jar <jar>` starts it like the official one. Such a jar
#      works for a local job server only (not for --flink_submit_uber_jar or
#      --spark_submit_uber_jar, which ship the jar itself to a cluster).
#   NEWSBEAM_JOBSERVER_SOURCE=auto (default: 1, then 2) | official | assembled.
#
# Cache: ${NEWSBEAM_CACHE:-$HOME/.cache/newsbeam}/jars/. Maven's own repository (~/.m2 or
# MAVEN_OPTS=-Dmaven.repo.local=...) also keeps what it downloaded.
set -euo pipefail

PROG=get_jobserver.sh
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
ASSEMBLED_BEAM="${NEWSBEAM_ASSEMBLED_BEAM_VERSION:-2.62.0}"
ASSEMBLED_FLINK_MINOR=1.19
ASSEMBLED_SPARK=3.5.4        # Spark 3.5 for Scala 2.12, as Beam's own Spark 3 job server
ASSEMBLED_SPARK_SLF4J=2.0.7  # the slf4j-api that Spark 3.5 logs through (log4j2)
ASSEMBLED_FLINK_SLF4J=1.7.30 # Beam 2.62's slf4j-api, with slf4j-simple as the binding
UNAVAILABLE_TTL_DAYS=7       # how long "the official jar is not served" is remembered

die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "$PROG: $*" >&2; }

[ $# -eq 1 ] || die "usage: $PROG flink|spark"
RUNNER="$1"
case "$RUNNER" in flink|spark) ;; *) die "unknown runner '$RUNNER' (expected flink or spark)";; esac
SOURCE="${NEWSBEAM_JOBSERVER_SOURCE:-auto}"
case "$SOURCE" in auto|official|assembled) ;;
  *) die "NEWSBEAM_JOBSERVER_SOURCE must be auto, official or assembled (got '$SOURCE')";; esac

TIMEOUT="${NEWSBEAM_FETCH_TIMEOUT:-900}"
if ! [[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]]; then
  die "NEWSBEAM_FETCH_TIMEOUT must be a positive number of seconds (got '$TIMEOUT')"
fi
DEADLINE=$((SECONDS + TIMEOUT))
remaining() { local r=$((DEADLINE - SECONDS)); [ "$r" -gt 0 ] && echo "$r" || echo 1; }

CACHE="${NEWSBEAM_CACHE:-$HOME/.cache/newsbeam}"
JARS="$CACHE/jars"
mkdir -p "$JARS" || die "cannot create the cache folder $JARS (set NEWSBEAM_CACHE)"

# The Python that has apache_beam: the caller's (NEWSBEAM_PYTHON), the repo's .venv, python3.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${NEWSBEAM_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$HERE/../.venv/bin/python" ]; then PYTHON="$HERE/../.venv/bin/python"; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "no Python found (set NEWSBEAM_PYTHON)"

beam_facts() {  # prints "<beam version> <newest Flink minor of the Python FlinkRunner>"
  # Read without importing apache_beam (about 1.5 s): the version from the package metadata,
  # the Flink versions from the source of FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS.
  "$PYTHON" - <<'PY' 2>/dev/null || echo "2.77.0 2.2"
import ast, importlib.metadata, importlib.util, os, re
spec = importlib.util.find_spec("apache_beam")
src = os.path.join(os.path.dirname(spec.origin), "options", "pipeline_options.py")
with open(src, encoding="utf-8") as fh:
    found = re.search(r"PUBLISHED_FLINK_VERSIONS\s*=\s*(\[[^\]]*\])", fh.read())
print(importlib.metadata.version("apache-beam"), ast.literal_eval(found.group(1))[-1])
PY
}
read -r BEAM_VERSION FLINK_MINOR <<<"$(beam_facts)"
BEAM_VERSION="${NEWSBEAM_BEAM_VERSION:-$BEAM_VERSION}"

if [ "$RUNNER" = flink ]; then
  OFFICIAL_ID="beam-runners-flink-$FLINK_MINOR-job-server"
  ASSEMBLED_NAME="beam-runners-flink-$ASSEMBLED_FLINK_MINOR-job-server-$ASSEMBLED_BEAM-assembled"
else
  OFFICIAL_ID="beam-runners-spark-3-job-server"
  ASSEMBLED_NAME="beam-runners-spark-3-job-server-$ASSEMBLED_BEAM-assembled"
fi
OFFICIAL_JAR="$JARS/$OFFICIAL_ID-$BEAM_VERSION.jar"
OFFICIAL_GAV="org.apache.beam:$OFFICIAL_ID:$BEAM_VERSION"
UNAVAILABLE="$JARS/$OFFICIAL_ID-$BEAM_VERSION.unavailable"
ASSEMBLED_JAR="$JARS/$ASSEMBLED_NAME.jar"

unavailable_is_fresh() {
  [ -f "$UNAVAILABLE" ] && [ -z "$(find "$UNAVAILABLE" -mtime +"$UNAVAILABLE_TTL_DAYS")" ]
}

# Fast path, no lock, no network: a cached jar.
cached() {
  if [ "$SOURCE" != assembled ] && [ -s "$OFFICIAL_JAR" ]; then echo "$OFFICIAL_JAR"; return 0; fi
  if [ "$SOURCE" = assembled ] || { [ "$SOURCE" = auto ] && unavailable_is_fresh; }; then
    if [ -s "$ASSEMBLED_JAR" ]; then echo "$ASSEMBLED_JAR"; return 0; fi
  fi
  return 1
}
if cached; then exit 0; fi

command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is not installed: install it (apt-get install maven) or pass --${RUNNER}_job_server_jar"
command -v timeout >/dev/null 2>&1 || die "coreutils 'timeout' is missing"

exec 9>"$JARS/.lock"
flock -w "$(remaining)" 9 || die "timed out waiting for another $PROG (lock $JARS/.lock)"
if cached; then exit 0; fi   # another call finished it while we waited

WORK="$(mktemp -d "$JARS/.tmp-$RUNNER-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# run_mvn LOG ARGS...: Maven in batch mode under the deadline; its output goes to LOG.
run_mvn() {
  local log="$1"; shift
  local rc=0
  timeout --kill-after=10 "$(remaining)" mvn -B -ntp "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    die "Maven timed out after ${TIMEOUT}s (NEWSBEAM_FETCH_TIMEOUT); log: $(keep_log "$log")"
  fi
  return "$rc"
}
keep_log() { local dst="$JARS/last-fetch-$RUNNER.log"; cp "$1" "$dst" 2>/dev/null; echo "$dst"; }
first_error() {
  grep -m1 -o '\[ERROR\] .*' "$1" | sed -e 's/^\[ERROR\] //' -e 's/ -> \[Help 1\]//' | cut -c1-300
}

fetch_official() {  # 0 fetched; 2 not served (remembered); 1 other failure
  say "fetching $OFFICIAL_GAV through Maven (first time only; about 150-300 MB)"
  local t0=$SECONDS
  if run_mvn "$WORK/official.log" "$DEP_PLUGIN:copy" "-Dartifact=$OFFICIAL_GAV" \
      "-DoutputDirectory=$WORK/official"; then
    mv -f "$WORK/official/$OFFICIAL_ID-$BEAM_VERSION.jar" "$OFFICIAL_JAR" || return 1
    rm -f "$UNAVAILABLE"
    say "cached $OFFICIAL_JAR ($(du -h "$OFFICIAL_JAR" | cut -f1), $((SECONDS - t0))s)"
    return 0
  fi
  if grep -q "Could not find artifact\|was not found in" "$WORK/official.log"; then
    touch "$UNAVAILABLE"
    say "$OFFICIAL_GAV is not served by this Maven repository"
    return 2
  fi
  say "fetching $OFFICIAL_GAV failed: $(first_error "$WORK/official.log")"
  return 1
}

assembled_pom() {
  local deps
  if [ "$RUNNER" = flink ]; then
    deps="$(dep org.apache.beam "beam-runners-flink-$ASSEMBLED_FLINK_MINOR" "$ASSEMBLED_BEAM")
$(dep org.slf4j slf4j-simple "$ASSEMBLED_FLINK_SLF4J")"
  else
    # Spark is a 'provided' dependency of Beam's Spark runner: name it.
    deps="$(dep org.apache.beam beam-runners-spark-3 "$ASSEMBLED_BEAM")
$(dep org.apache.spark spark-core_2.12 "$ASSEMBLED_SPARK")
$(dep org.apache.spark spark-streaming_2.12 "$ASSEMBLED_SPARK")
$(dep org.slf4j slf4j-api "$ASSEMBLED_SPARK_SLF4J")"
  fi
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>newsbeam</groupId><artifactId>$ASSEMBLED_NAME</artifactId><version>1</version>
  <dependencies>
$deps
  </dependencies>
</project>
EOF
}
dep() { echo "    <dependency><groupId>$1</groupId><artifactId>$2</artifactId><version>$3</version></dependency>"; }

assemble() {
  local main lib_name="$ASSEMBLED_NAME.lib" t0=$SECONDS
  say "assembling a $RUNNER job server from Beam $ASSEMBLED_BEAM's runner artifacts (first time only; about 150-260 MB)"
  assembled_pom >"$WORK/pom.xml"
  if ! run_mvn "$WORK/assemble.log" -f "$WORK/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime "-DoutputDirectory=$WORK/$lib_name"; then
    die "assembling the $RUNNER job server failed: $(first_error "$WORK/assemble.log") (log: $(keep_log "$WORK/assemble.log"))"
  fi
  if [ "$RUNNER" = flink ]; then
    main=org.apache.beam.runners.flink.FlinkJobServerDriver
  else
    main=org.apache.beam.runners.spark.SparkJobServerDriver
  fi
  "$PYTHON" - "$WORK/launcher.jar" "$WORK/$lib_name" "$lib_name" "$main" "$RUNNER" \
      "$ASSEMBLED_NAME" <<'PY' || die "writing the launcher jar failed"
import os, sys, zipfile

out, lib_dir, lib_name, main, runner, title = sys.argv[1:]
jars = sorted(f for f in os.listdir(lib_dir) if f.endswith(".jar"))


def attribute(name, value):
    """One manifest attribute, wrapped at 72 bytes as the JAR spec requires."""
    raw = f"{name}: {value}".encode("utf-8")
    lines = [raw[:72]] + [b" " + raw[i:i + 71] for i in range(72, len(raw), 71)]
    return b"\r\n".join(lines) + b"\r\n"


manifest = b"".join([
    attribute("Manifest-Version", "1.0"),
    attribute("Main-Class", main),
    attribute("Implementation-Title", f"{title} (newsbeam scripts/get_jobserver.sh)"),
    # Spark 3.5 on Java 17 needs these packages open (what spark-submit adds itself).
    attribute("Add-Opens", " ".join(f"java.base/{p}" for p in (
        "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net",
        "java.nio", "java.util", "java.util.concurrent", "java.util.concurrent.atomic",
        "sun.nio.ch", "sun.nio.cs", "sun.security.action", "sun.util.calendar"))),
    attribute("Class-Path", " ".join(f"{lib_name}/{j}" for j in jars)),
]) + b"\r\n"
# Java-side logging at WARN on stderr (Beam relays it), as the official jars are quiet.
simple = b"org.slf4j.simpleLogger.defaultLogLevel=warn\norg.slf4j.simpleLogger.logFile=System.err\n"
log4j2 = b"""rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as jar:
    jar.writestr("META-INF/MANIFEST.MF", manifest)
    jar.writestr("simplelogger.properties" if runner == "flink" else "log4j2.properties",
                 simple if runner == "flink" else log4j2)
PY
  # lib folder first, jar last: a present jar means a complete assembly.
  rm -rf "${JARS:?}/$lib_name"
  mv "$WORK/$lib_name" "$JARS/$lib_name"
  mv -f "$WORK/launcher.jar" "$ASSEMBLED_JAR"
  say "cached $ASSEMBLED_JAR ($(du -sh "$JARS/$lib_name" | cut -f1) in $lib_name, $((SECONDS - t0))s)"
}

rc=0
case "$SOURCE" in
  official)
    fetch_official || die "$OFFICIAL_GAV could not be fetched (try NEWSBEAM_JOBSERVER_SOURCE=auto, or pass --${RUNNER}_job_server_jar)"
    echo "$OFFICIAL_JAR" ;;
  assembled)
    assemble
    echo "$ASSEMBLED_JAR" ;;
  auto)
    if unavailable_is_fresh; then rc=2; else fetch_official || rc=$?; fi
    if [ "$rc" -eq 0 ]; then echo "$OFFICIAL_JAR"; exit 0; fi
    [ "$rc" -eq 2 ] || say "trying to assemble the job server instead"
    assemble
    echo "$ASSEMBLED_JAR" ;;
esac
