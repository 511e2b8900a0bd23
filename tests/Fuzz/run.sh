#!/usr/bin/env bash
# Fuzzes every decoder of the service with AFL++ through SharpFuzz (docs/RELIABILITY.md, "Fuzzing").
#
#   tests/Fuzz/run.sh --ci                   every target, fixed seed, ~25 s each (about 3-4 minutes); exit 1 on a crash
#   tests/Fuzz/run.sh --long 3600            every target for 3600 s each
#   tests/Fuzz/run.sh --long 600 program proto   only the named targets
#   tests/Fuzz/run.sh [--seconds N] [--seed S] [target...]
#
# It installs Debian's afl++ when afl-fuzz is missing, publishes tests/Fuzz, instruments the service's assemblies
# (Engine, Api, Contracts) with the sharpfuzz tool of .config/dotnet-tools.json, runs afl-fuzz on each target's seed
# corpus (tests/Fuzz/corpus/<target>), and prints executions, corpus growth, crashes and hangs per target. Crashing
# inputs are replayed in-process (their exception is printed) and kept in tests/Fuzz/.work/crashes/<target>/; one that
# reproduces belongs in tests/Fuzz/regressions/<target>/ once fixed (tests/Fuzz/pending/<target>/ until then).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

seconds=60
seed=$RANDOM
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) seconds=22; seed=1 ;;
    --long) seconds="${2:?--long needs seconds}"; shift ;;
    --seconds) seconds="${2:?--seconds needs a number}"; shift ;;
    --seed) seed="${2:?--seed needs a number}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if ! command -v afl-fuzz >/dev/null; then
  echo "installing afl++ (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi

work="${FUZZ_WORK:-$here/.work}"
plain="$work/plain"
bin="$work/bin"
mkdir -p "$work/out"
echo "building into $plain, instrumenting a copy in $bin"
rm -rf "$plain" "$bin"
dotnet tool restore >/dev/null
dotnet publish "$here/AutogradService.Fuzz.csproj" -c Release -o "$plain" -nologo -v quiet >/dev/null
cp -r "$plain" "$bin"
for assembly in Engine Api Contracts; do dotnet sharpfuzz "$bin/AutogradService.$assembly.dll" >/dev/null; done
# Instrumented code writes AFL's shared memory, which only exists under afl-fuzz: replays use the plain build.
fuzzer=(dotnet "$bin/AutogradService.Fuzz.dll")
harness=(dotnet "$plain/AutogradService.Fuzz.dll")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${harness[@]}" list | awk '{ print $1 }')

# dotnet is not an AFL-instrumented binary (the assemblies are); the fuzzed process may use at most 1 GiB of managed
# heap (a decoder that allocates past it dies with OutOfMemoryException: a crash). No CPU pinning on a shared machine.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
export DOTNET_GCHeapHardLimit=0x40000000

stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$2"; }
summary=()
failed=0
for target in "${targets[@]}"; do
  out="$work/out/$target"
  rm -rf "$out"
  dict=()
  case "$target" in
    program) dict=(-x "$here/dictionaries/program.dict") ;;
    *-json) dict=(-x "$here/dictionaries/json.dict") ;;
  esac
  echo "fuzzing $target for ${seconds}s (seed $seed)"
  # Each input runs under the harness's one-second deadline; -t is far above it, so a hang is work that ignored it.
  afl-fuzz -i "$here/corpus/$target" -o "$out" -s "$seed" -V "$seconds" -t 10000 -m none "${dict[@]}" \
    -- "${fuzzer[@]}" fuzz "$target" >"$work/afl-$target.log" 2>&1 || {
      echo "afl-fuzz failed on $target; the end of its log:"; tail -20 "$work/afl-$target.log"; failed=1; continue; }
  stats="$out/default/fuzzer_stats"
  execs=$(stat execs_done "$stats"); rate=$(stat execs_per_sec "$stats"); corpus=$(stat corpus_count "$stats")
  crashes=$(stat saved_crashes "$stats"); hangs=$(stat saved_hangs "$stats"); coverage=$(stat bitmap_cvg "$stats")
  summary+=("$(printf '%-16s %10s %9s %8s %9s %8s %6s' "$target" "$execs" "$rate" "$corpus" "$coverage" "$crashes" "$hangs")")
  if [ "${crashes:-0}" != 0 ]; then
    failed=1
    mkdir -p "$work/crashes/$target"
    cp "$out"/default/crashes/id:* "$work/crashes/$target/" 2>/dev/null || true
    echo "crashes of $target (replayed in-process):"
    "${harness[@]}" replay "$target" "$out/default/crashes" | grep -v '^   at ' | head -60 || true
  fi
  if [ "${hangs:-0}" != 0 ]; then
    mkdir -p "$work/hangs/$target"
    cp "$out"/default/hangs/id:* "$work/hangs/$target/" 2>/dev/null || true
    echo "hangs of $target kept in $work/hangs/$target"
  fi
done

echo
printf '%-16s %10s %9s %8s %9s %8s %6s\n' target execs execs/s corpus coverage crashes hangs
printf '%s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
  echo "fuzzing found crashes: reproduce one with"
  echo "  dotnet run --project tests/Fuzz -c Release -- replay <target> tests/Fuzz/.work/crashes/<target>/<file>"
fi
exit "$failed"
