#!/usr/bin/env bash
# The test command (README "Run the tests"): installs what the tests need if it is missing (idempotent),
# starts Azurite on 127.0.0.1 unless one is already listening, runs every test project, prints a summary.
set -euo pipefail
cd "$(dirname "$0")"

# System packages the tests use: sentencepiece (spm_train builds the demo tokenizer in the training smoke test).
missing=()
command -v spm_train >/dev/null 2>&1 || missing+=(sentencepiece)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test.sh: please install: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2; exit 1
  fi
fi

# Azurite, pinned in package.json (the tests would start it themselves; starting it once here saves time).
[ -x node_modules/.bin/azurite ] || npm ci --no-audit --no-fund --loglevel=error
azurite_pid=""
if ! (exec 3<>/dev/tcp/127.0.0.1/10000) 2>/dev/null; then
  mkdir -p .azurite
  node_modules/.bin/azurite --silent --disableTelemetry --skipApiVersionCheck \
    --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
    --location .azurite --debug .azurite/debug.log >/dev/null 2>&1 &
  azurite_pid=$!
  trap '[ -n "$azurite_pid" ] && kill "$azurite_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/10002) 2>/dev/null && break; sleep 0.5; done
fi

rm -rf TestResults
status=0
dotnet test BatchRender.sln -c Release --logger "trx" --logger "console;verbosity=normal" --results-directory TestResults "$@" || status=$?

# One closing line for CI: "N passed, N failed, N skipped".
passed=0; failed=0; skipped=0
for f in TestResults/*.trx; do
  [ -f "$f" ] || continue
  c=$(grep -o '<Counters [^>]*>' "$f" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$c"); passed=$((passed + ${p:-0}))
  x=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$c"); failed=$((failed + ${x:-0}))
  # xunit's skipped tests are counted in total but not in executed.
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$c"); e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$c")
  skipped=$((skipped + ${t:-0} - ${e:-0}))
done
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
