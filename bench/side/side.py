#!/usr/bin/python3
"""Side by side: our service against the FastAPI + PyTorch peer (../shared/anchors/peer_service/torch_server.py), the
same requests, the same machine, one service at a time, alternating within each cell, answers checked.

  /usr/bin/python3 bench/side/side.py --ours http://127.0.0.1:P=<pid> --peer http://127.0.0.1:Q=<pid> \
      [--workloads C1,W3,W3-b64,W3-bin,healthz] [--conc 1,16] [--warmup 3] [--seconds 10] [--reps 1] [--out f.json]

Workloads and their bodies come from the peer's own workloads.py (identical bytes to both services), plus W3-bin:
W3 as a framed binary body (the binary tensor extension: JSON header, raw float32/int64 bytes) asking for a binary
answer; the peer has no binary form, so W3-bin's ratio is against the peer's faster W3 form (b64) in the same run.
Per cell: a --warmup s wrk run (discarded), a --seconds s wrk run (req/s, p50, p99), the server's CPU per request
(its process tree, /proc), its peak RSS during the run (VmRSS sampled every 50 ms), 'ext' (everyone else's CPU on the
machine), and three answers checked against a float64 PyTorch reference.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ANCHOR = os.environ.get("PEER_DIR", "/work/shared/anchors/peer_service")
sys.path.insert(0, ANCHOR)
import workloads as W  # noqa: E402
from load import busy_jiffies, tree_jiffies, HZ  # noqa: E402

PATHS = {"healthz": "/healthz"}


def binary_body(seed, folder):
    """W3 as a framed body: (path, header length, inputs). Tensors in the header carry binary_data_size; bytes follow."""
    ins = W.w3_inputs(seed)
    path = os.path.join(folder, "W3-bin-%d.bin" % seed)
    header = {"program": W.W3_PROGRAM, "wrt": W.W3_WRT, "parameters": {"binary_data_output": True}, "inputs": {}}
    raw = b""
    for name, a in ins.items():
        dtype = {"float32": "float32", "int64": "int64"}[a.dtype.name]
        data = a.astype("<" + a.dtype.str[1:]).tobytes()
        header["inputs"][name] = {"dtype": dtype, "shape": list(a.shape), "parameters": {"binary_data_size": len(data)}}
        raw += data
    head = json.dumps(header).encode()
    os.makedirs(folder, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head + raw)
    return path, len(head), ins


def binary_answer_as_json(headers, body):
    """A framed answer turned into the JSON form W.check reads (each tensor's bytes as b64, in header order)."""
    n = int(headers["Inference-Header-Content-Length"])
    head, at = json.loads(body[:n]), n
    for group in ("outputs", "gradients"):
        for t in head.get(group, {}).values():
            size = t.pop("parameters")["binary_data_size"]
            t["b64"] = base64.b64encode(body[at:at + size]).decode()
            at += size
    return json.dumps(head).encode()


def wrk(url, body, conc, seconds):
    path, content_type, header_length = body or (None, None, None)
    env = dict(os.environ, BODY_FILE=path or "", CONTENT_TYPE=content_type or "", HEADER_LENGTH=str(header_length or ""))
    cmd = ["wrk", "-t1", "-c%d" % conc, "-d%ds" % seconds, "--timeout", "30s", "-s", os.path.join(HERE, "post.lua"), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def post(url, data, content_type, header_length):
    headers = {"content-type": content_type}
    if header_length:
        headers["Inference-Header-Content-Length"] = str(header_length)
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def rss_kb(root):
    """Resident set of a process tree, in KiB."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                s = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in s.splitlines() if ":" in line)
        pid, ppid = int(d), int(fields.get("PPid", "0"))
        if pid == root or ppid == root:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total


class PeakRss(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.05)


def check(base, workload, samples):
    if workload == "healthz":
        return 0, None
    for (path, content_type, header_length), ins, ref in samples:
        status, headers, resp = post(base + "/v1/gradient", open(path, "rb").read(), content_type, header_length)
        if status != 200:
            return len(samples), "HTTP %d: %s" % (status, resp[:200])
        if workload == "W3-bin":
            resp = binary_answer_as_json(headers, resp)
        problem = W.check(workload.split("-")[0], resp, ins, ref)
        if problem:
            return len(samples), problem
    return len(samples), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True, help="url=pid")
    ap.add_argument("--peer", required=True, help="url=pid")
    ap.add_argument("--before", help="url=pid of an earlier build of ours, driven alongside (no W3-bin)")
    ap.add_argument("--workloads", default="C1,W3,W3-b64,W3-bin,healthz")
    ap.add_argument("--conc", default="1,16")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--bodies", default="/tmp/side-by-side-bodies")
    ap.add_argument("--out")
    a = ap.parse_args()
    services = [("ours",) + tuple(a.ours.rsplit("=", 1)), ("peer",) + tuple(a.peer.rsplit("=", 1))]
    if a.before:
        services.insert(1, ("before",) + tuple(a.before.rsplit("=", 1)))
    services = [(n, u.rstrip("/"), int(p)) for n, u, p in services]
    workloads, concs = a.workloads.split(","), [int(c) for c in a.conc.split(",")]

    bodies, samples = {}, {}
    for wl in workloads:
        if wl == "healthz":
            bodies[wl], samples[wl] = None, []
            continue
        made = []
        for seed in (0, 1, 2):
            if wl == "W3-bin":
                path, n, ins = binary_body(seed, a.bodies)
                made.append(((path, "application/octet-stream", n), ins, W.reference("W3", ins)))
            else:
                path, ins = W.cached_body(wl, seed, a.bodies)
                made.append(((path, "application/json", None), ins, W.reference(wl.split("-")[0], ins)))
        bodies[wl], samples[wl] = made[0][0], made

    def serves(name, wl):
        return not (name in ("peer", "before") and wl == "W3-bin")

    for wl in workloads:  # one pass first, so no JIT tier-up or first-time cost lands in a timed cell
        for name, base, _ in services:
            if serves(name, wl):
                wrk(base + PATHS.get(wl, "/v1/gradient"), bodies[wl], max(concs), a.warmup)

    cells = []
    print("%-7s %-5s %4s %9s %9s %9s %9s %7s %6s %s" % ("work", "svc", "conc", "req/s", "p50 ms", "p99 ms", "cpu us/r",
                                                       "rss MB", "ext", "errors/check"), flush=True)
    for rep in range(a.reps):
        for wl in workloads:
            for conc in concs:
                for name, base, pid in (services if rep % 2 == 0 else services[::-1]):
                    if not serves(name, wl):
                        continue
                    url = base + PATHS.get(wl, "/v1/gradient")
                    wrk(url, bodies[wl], conc, a.warmup)
                    rss = PeakRss(pid)
                    rss.start()
                    b0, s0, t0 = busy_jiffies(), tree_jiffies(pid), time.time()
                    r = wrk(url, bodies[wl], conc, a.seconds)
                    b1, s1, t1 = busy_jiffies(), tree_jiffies(pid), time.time()
                    rss.stop = True
                    rss.join()
                    wall = t1 - t0
                    server = (s1 - s0) / HZ / wall
                    ext = max(0.0, (b1 - b0) / HZ / wall - server - 1.0)  # wrk's one thread counted as a busy core
                    rps = r["requests"] / (r["duration_us"] / 1e6)
                    n, problem = check(base, wl, samples[wl])
                    errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
                    cell = dict(rep=rep, workload=wl, service=name, conc=conc, rps=round(rps, 1),
                                p50_ms=r["p50_us"] / 1e3, p99_ms=r["p99_us"] / 1e3, errors=errors,
                                server_cores=round(server, 3), ext_cores=round(ext, 3),
                                cpu_us_per_req=round(server * wall / max(1, r["requests"]) * 1e6, 1),
                                peak_rss_mb=round(rss.peak / 1024, 1), checked=n, check_problem=problem,
                                time=time.strftime("%H:%M:%S"))
                    cells.append(cell)
                    print("%-7s %-5s %4d %9.1f %9.3f %9.3f %9.1f %7.1f %6.2f %d/%s" % (
                        wl, name, conc, rps, cell["p50_ms"], cell["p99_ms"], cell["cpu_us_per_req"], cell["peak_rss_mb"],
                        ext, errors, "ok(%d)" % n if not problem else "FAIL " + problem), flush=True)

    # The table: mean over reps; ratio = ours / peer in the same run (W3-bin against the peer's W3-b64).
    def mean(wl, svc, conc, key):
        v = [c[key] for c in cells if c["workload"] == wl and c["service"] == svc and c["conc"] == conc]
        return sum(v) / len(v) if v else None

    summary = {}
    print("\n| workload | clients | ours req/s | peer req/s | ours / peer | before req/s | before / peer | ours CPU µs/req | peer CPU µs/req | ours peak RSS MB | peer peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for wl in workloads:
        for conc in concs:
            peer_wl = "W3-b64" if wl == "W3-bin" else wl
            o, p = mean(wl, "ours", conc, "rps"), mean(peer_wl, "peer", conc, "rps")
            ratio = round(o / p, 2) if o and p else None
            b = mean(wl, "before", conc, "rps")
            before_ratio = round(b / p, 2) if b and p else None
            row = dict(ours_rps=o, peer_rps=p, ratio=ratio, peer_workload=peer_wl, before_rps=b, before_ratio=before_ratio,
                       ours_cpu_us=mean(wl, "ours", conc, "cpu_us_per_req"), peer_cpu_us=mean(peer_wl, "peer", conc, "cpu_us_per_req"),
                       ours_rss_mb=mean(wl, "ours", conc, "peak_rss_mb"), peer_rss_mb=mean(peer_wl, "peer", conc, "peak_rss_mb"))
            summary["%s@%d" % (wl, conc)] = row
            fmt = lambda v, f="%.1f": "-" if v is None else f % v  # noqa: E731
            print("| %s | %d | %s | %s%s | %s | %s | %s | %s | %s | %s | %s |" % (
                wl, conc, fmt(o), fmt(p), "" if peer_wl == wl else " (b64)", fmt(ratio, "%.2f"), fmt(b), fmt(before_ratio, "%.2f"),
                fmt(row["ours_cpu_us"], "%.0f"),
                fmt(row["peer_cpu_us"], "%.0f"), fmt(row["ours_rss_mb"]), fmt(row["peer_rss_mb"])))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "summary": summary, "cells": cells}, f, indent=1)


if __name__ == "__main__":
    main()
