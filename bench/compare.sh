#!/usr/bin/env bash
# Side by side: every workload of the performance issue (and two plan runs, P1 and P2) in our engine and in PyTorch,
# in the same run, at 1 and 2 threads. Prints a table (ratio = PyTorch ms / ours ms, > 1 means we are faster) and
# writes bench/results/latest.json (plus latest.meta.json: when, where, which mode).
#
#   bench/compare.sh            full run (several minutes)
#   bench/compare.sh --quick    fewer iterations, under 3 minutes on an idle machine
#   WORKLOADS="W1 W4" THREADS="1" bench/compare.sh --quick    a subset
#
# The peer is Debian's PyTorch under /usr/bin/python3 (python3-torch, with libopenblas0-pthread so it uses OpenBLAS).
# For the peer's command only, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on these machines, ~45% slower GEMM) are
# unset, and OPENBLAS_NUM_THREADS is set to the thread count: Debian's torch does not tell OpenBLAS its thread count,
# so without it "1 thread" would still run GEMM on every core.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

WORKLOADS="${WORKLOADS:-W1 W2 W3 W4 W5 W6 W7 P1 P2}"
THREADS="${THREADS:-1 2}"
PYTHON=/usr/bin/python3
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
RAW="$RESULTS/run.tmp"
LOG="$RESULTS/log.tmp"
: > "$RAW"
: > "$LOG"

# iterations and warm-up per workload: "iterations warmup-calls warmup-seconds ours-warmup-seconds". Every run first
# makes one checked call (derivatives against closed forms), which also warms up; quick W4 relies on that call alone
# for the peer (one PyTorch call at 10M takes seconds: first-touch page faults on fresh buffers). Ours warms up longer:
# .NET's tiered JIT first runs quick, unoptimised code (and ReadyToRun code without AVX-512) and recompiles hot methods
# in the background after ~30 calls and a 100 ms quiet period; on a loaded machine half a second of warm-up left W1,
# W2 and W6 3-5x slower than their steady state.
settings() {
  if [[ $QUICK == 1 ]]; then
    case "$1" in
      W1) echo "400 20 0.3 3" ;; W2) echo "100 10 0.3 3" ;; W3) echo "20 3 0.2 2" ;; W4) echo "3 0 0 1" ;;
      W5) echo "5 1 0 1" ;; W6) echo "7 2 0 2" ;; W7) echo "20 3 0.2 2" ;; P1|P2) echo "3 1 0 1" ;;
    esac
  else
    case "$1" in
      W1) echo "5000 200 2 5" ;; W2) echo "1000 50 2 5" ;; W3) echo "200 10 1 3" ;; W4) echo "10 2 0 2" ;;
      W5) echo "30 3 0 2" ;; W6) echo "50 5 0.5 3" ;; W7) echo "200 10 1 3" ;; P1|P2) echo "15 2 0 2" ;;
    esac
  fi
}

echo "building bench/Bench (Release)..." >&2
dotnet build bench/Bench/AutogradService.Bench.csproj -c Release -nologo -v q -clp:ErrorsOnly >&2
OURS=(dotnet "$ROOT/bench/Bench/bin/Release/net10.0/AutogradService.Bench.dll")
PEER=("$PYTHON" "$ROOT/bench/peer/torch_workloads.py")

# One measurement; its JSON line (or a failure line) is appended to $RAW tagged with side and threads.
measure() {
  local side="$1" w="$2" t="$3"; shift 3
  local out
  if out="$(timeout 600 "$@" 2>>"$LOG" | tail -n 1)" && [[ "$out" == \{* ]]; then
    echo "{\"side\": \"$side\", \"key\": \"$w@${t}t\", \"result\": $out}" >> "$RAW"
  else
    echo "{\"side\": \"$side\", \"key\": \"$w@${t}t\", \"result\": {\"workload\": \"$w\", \"ms\": null, \"failed\": true}}" >> "$RAW"
    echo "  $side $w at $t threads failed; see $LOG" >&2
  fi
}

START=$(date +%s)
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for w in $WORKLOADS; do
  read -r iters warm warm_s ours_warm_s <<< "$(settings "$w")"
  common=(--workload "$w" --iterations "$iters" --warmup "$warm")
  for t in $THREADS; do
    echo "$w at $t thread(s)..." >&2
    measure ours "$w" "$t" "${OURS[@]}" "${common[@]}" --warmup-seconds "$ours_warm_s" --threads "$t"
    measure peer "$w" "$t" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$t" \
      "${PEER[@]}" "${common[@]}" --warmup-seconds "$warm_s" --threads "$t"
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$(( $(date +%s) - START ))

QUICK=$QUICK ELAPSED=$ELAPSED LOAD_START="$LOAD_START" LOAD_END="$LOAD_END" \
  "$PYTHON" - "$RAW" "$RESULTS" <<'PY'
import json, os, platform, subprocess, sys, datetime

raw_path, results = sys.argv[1], sys.argv[2]
rows = {}
for line in open(raw_path):
    entry = json.loads(line)
    rows.setdefault(entry["key"], {})[entry["side"]] = entry["result"]

def note_of(ours, peer):
    if ours.get("missing"):
        return "n/a (op missing: %s)" % ours["missing"]
    notes = []
    if ours.get("failed"): notes.append("ours failed")
    if peer.get("failed"): notes.append("peer failed")
    if ours.get("variant"): notes.append("ours: " + ours["variant"])
    if peer.get("variant") and peer.get("variant") != ours.get("variant"): notes.append("peer: " + peer["variant"])
    if (ours.get("input_copy_ms") or 0) >= 0.001: notes.append("ours incl. input copy %.3g ms" % ours["input_copy_ms"])
    if ours.get("unfused_ms"): notes.append("ours node by node %.4g ms" % ours["unfused_ms"])
    return "; ".join(notes)

latest, lines = {}, []
for key, sides in rows.items():
    ours, peer = sides.get("ours", {}), sides.get("peer", {})
    o, p = ours.get("ms"), peer.get("ms")
    ratio = round(p / o, 3) if o and p else None
    threads = int(key.split("@")[1].rstrip("t"))
    entry = {"threads": threads, "ours_ms": o, "peer_ms": p, "ratio": ratio}
    note = note_of(ours, peer)
    if note: entry["note"] = note
    latest[key] = entry
    fmt = lambda v: "%.4g" % v if v is not None else "n/a"
    lines.append((key.split("@")[0], str(threads), "n/a (op missing)" if ours.get("missing") else fmt(o), fmt(p),
                  ("%.2f" % ratio) if ratio is not None else "n/a", note))

header = ("workload", "threads", "ours ms", "PyTorch ms", "ratio (peer/ours)", "note")
widths = [max(len(r[i]) for r in lines + [header]) for i in range(5)]
print()
print("| " + " | ".join(h.ljust(widths[i]) if i < 5 else h for i, h in enumerate(header)) + " |")
print("|" + "|".join("-" * (widths[i] + 2) for i in range(5)) + "|---|")
for r in lines:
    print("| " + " | ".join(c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(r)) + " |")

with open(os.path.join(results, "latest.json"), "w") as f:
    json.dump(latest, f, indent=2)
    f.write("\n")

def run(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception: return None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "mode": "quick" if os.environ["QUICK"] == "1" else "full",
    "elapsed_s": int(os.environ["ELAPSED"]),
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
                "loadavg_start": os.environ["LOAD_START"], "loadavg_end": os.environ["LOAD_END"]},
    "ours": {"dotnet": run(["dotnet", "--version"]), "commit": run(["git", "rev-parse", "--short", "HEAD"]),
             "engine_threads": "--threads (EngineThreads.Count)"},
    "peer": {"torch": next((r["result"].get("torch") for r in map(json.loads, open(raw_path)) if r["side"] == "peer" and r["result"].get("torch")), None)},
}
with open(os.path.join(results, "latest.meta.json"), "w") as f:
    json.dump(meta, f, indent=2)
    f.write("\n")
print("\nwrote bench/results/latest.json (%s run, %d s, load average %s -> %s)"
      % (meta["mode"], meta["elapsed_s"], os.environ["LOAD_START"], os.environ["LOAD_END"]))
PY
