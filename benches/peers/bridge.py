"""The bridge benchmark (issue 16): `mcp-oauth proxy` against mcp-remote, each a stdio MCP
server in front of one embedded authorization server + MCP endpoint (`examples/bench_server.rs`,
loopback), with a cached token. `benches/peers/run.sh` runs it; standard library only.

    bridge.py --server BIN --ours BIN --remote NODE PROXY_JS --work DIR --out RESULTS.json [--runs 9]

Each bridge first logs in once (a warm-up process whose browser step this script completes by
following the authorization URL the bridge prints). Then, in rounds (ours, mcp-remote, ours, ...),
one process per run is started and driven over its stdin and stdout as a stdio client would:
`initialize`, `notifications/initialized`, `tools/list`, `tools/call echo`, then stdin closed.
Measured per process: the time from just before the start to the `tools/call` answer, to its
exit, and its peak RSS once the answers are in (VmHWM). Medians are reported with the ratios.

Then, once per bridge, a pipelined run: after `initialize`, 1,000 `tools/call echo` requests
written at once, as a busy client does; the server's log tells how many TCP connections carried
them (the connections opened per 1,000 pipelined requests), and the run's time and peak RSS
are reported beside.
"""

import argparse
import json
import os
import re
import select
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import Server  # noqa: E402

TIMEOUT_S = 60
PIPELINED = 1000
MESSAGES = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
     "params": {"name": "echo", "arguments": {"text": "hi"}}},
]


class Lines:
    """A bridge's stdout, one line at a time, each wait bounded. Reads the pipe itself: a
    buffered reader may hold lines the pipe no longer signals, and a select() on the pipe would
    then wait for lines already read."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buffer = b""

    def next(self, deadline):
        """The next line (text), "" at the end of the stream, None at the deadline."""
        while b"\n" not in self.buffer:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode() + "\n"


def follow_logins(stream):
    """Reads a bridge's stderr; opens every authorization URL it prints, as a browser would."""
    for line in iter(stream.readline, ""):
        for url in re.findall(r"https?://\S+/authorize\?\S+", line):
            threading.Thread(target=lambda u=url: urllib.request.urlopen(u, timeout=30).read(),
                             daemon=True).start()


def run_once(argv, env, login=False):
    """One bridge process driven through the messages; (to answer s, to exit s, peak RSS KiB)."""
    started = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE if login else subprocess.DEVNULL, text=True)
    if login:
        threading.Thread(target=follow_logins, args=(p.stderr,), daemon=True).start()
    answered = None
    deadline = started + TIMEOUT_S
    lines = Lines(p.stdout)
    for message in MESSAGES:
        p.stdin.write(json.dumps(message) + "\n")
        p.stdin.flush()
        if "id" not in message:
            continue
        while True:
            line = lines.next(deadline)
            if line is None:
                p.kill()
                raise SystemExit(f"{argv[0]}: no answer to {message['method']} in time")
            if not line:
                raise SystemExit(f"{argv[0]}: stdout closed before answering {message['method']}")
            reply = json.loads(line)
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise SystemExit(f"{argv[0]}: {message['method']}: {reply['error']}")
                break
    answered = time.perf_counter() - started
    peak = peak_rss_kib(p.pid)
    p.stdin.close()
    status = p.wait(timeout=TIMEOUT_S)
    exited = time.perf_counter() - started
    if status != 0:
        print(f"{argv[0]} exited with status {status}", file=sys.stderr)
    return answered, exited, peak


def pipelined(argv, env, server):
    """One bridge process: initialize, then PIPELINED tools/call requests written at once;
    (seconds from the first call to the last answer, TCP connections the calls came on, peak
    RSS KiB)."""
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    deadline = time.perf_counter() + TIMEOUT_S
    lines = Lines(p.stdout)

    def answer(wanted):
        while True:
            line = lines.next(deadline)
            if line is None:
                p.kill()
                raise SystemExit(f"{argv[0]}: the pipelined run did not finish in time")
            if not line:
                raise SystemExit(f"{argv[0]}: stdout closed in the pipelined run")
            reply = json.loads(line)
            if "error" in reply:
                raise SystemExit(f"{argv[0]}: pipelined: {reply['error']}")
            if reply.get("id") in wanted:
                wanted.discard(reply["id"])
                if not wanted:
                    return

    for message in MESSAGES[:2]:
        p.stdin.write(json.dumps(message) + "\n")
    p.stdin.flush()
    answer({1})
    server.take()
    started = time.perf_counter()
    calls = "".join(json.dumps({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                                "params": {"name": "echo", "arguments": {"text": f"n{i}"}}}) + "\n"
                    for i in range(PIPELINED))
    writer = threading.Thread(target=lambda: (p.stdin.write(calls), p.stdin.flush()), daemon=True)
    writer.start()
    answer(set(range(100, 100 + PIPELINED)))
    seconds = time.perf_counter() - started
    peak = peak_rss_kib(p.pid)
    writer.join(timeout=10)
    p.stdin.close()
    p.wait(timeout=TIMEOUT_S)
    log = server.take()
    connections = {r["connection"] for r in log if r["rpc"] == "tools/call"}
    return seconds, len(connections), peak


def peak_rss_kib(pid):
    """The process's peak RSS so far (VmHWM). Not the reaped child's ru_maxrss: Linux counts in
    it the image exec replaced, here Python's ~16 MiB (see spawn.c), which a stdio-driven child
    cannot avoid. VmHWM belongs to the exec'd program alone; it is read once every answer is in,
    so the shutdown after stdin's end is not counted for either bridge."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmHWM for process {pid}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--remote", nargs=2, metavar=("NODE", "PROXY_JS"))
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()

    server = Server([args.server])
    url = server.url
    ours_cache = os.path.join(args.work, "bridge-ours-cache")
    remote_config = os.path.join(args.work, "bridge-remote-config")
    for d in (ours_cache, remote_config):
        subprocess.run(["rm", "-rf", d], check=True)
        os.makedirs(d)
    env = dict(os.environ, MCP_OAUTH_CACHE_DIR=ours_cache, MCP_REMOTE_CONFIG_DIR=remote_config)
    bridges = {"ours": [args.ours, "proxy", url, "--no-browser"]}
    if args.remote:
        bridges["mcp-remote"] = [*args.remote, url]
    results = {name: [] for name in bridges}
    for name, argv in bridges.items():
        print(f"bridge: {name}: first login (not measured)", file=sys.stderr)
        run_once(argv, env, login=True)
        run_once(argv, env)  # warm-up
    for r in range(args.runs):
        for name, argv in bridges.items():
            answered, exited, rss = run_once(argv, env)
            results[name].append({"answered_s": answered, "exited_s": exited, "rss_kib": rss})
        print(f"bridge: round {r + 1}/{args.runs}", file=sys.stderr)
    server.take()
    piped = {}
    for name, argv in bridges.items():
        seconds, connections, rss = pipelined(argv, env, server)
        piped[name] = {"seconds": seconds, "connections": connections, "rss_kib": rss}
        print(f"bridge: {name}: {PIPELINED} pipelined calls", file=sys.stderr)
    results = {"rounds": results, "pipelined": piped}
    server.close()
    json.dump(results, open(args.out, "w"), indent=1)
    print(report(results))


def report(both):
    results, piped = both["rounds"], both["pipelined"]

    def med(name, key):
        return statistics.median(r[key] for r in results[name])
    lines = ["| bridge | to the tools/call answer (ms) | to exit (ms) | peak RSS (MiB) |",
             "| --- | ---: | ---: | ---: |"]
    for name in results:
        lines.append(f"| {name} | {med(name, 'answered_s') * 1000:.1f} | "
                     f"{med(name, 'exited_s') * 1000:.1f} | {med(name, 'rss_kib') / 1024:.1f} |")
    if "mcp-remote" in results:
        t = med("mcp-remote", "answered_s") / med("ours", "answered_s")
        m = med("mcp-remote", "rss_kib") / med("ours", "rss_kib")
        lines.append("")
        lines.append(f"mcp-remote / ours: {t:.1f}x the time to the answer, {m:.1f}x the peak RSS "
                     f"(targets: 20x and 20x) -> {'met' if t >= 20 and m >= 20 else 'MISSED'}")
    lines += ["", f"| bridge | {PIPELINED} pipelined tools/call (ms) | TCP connections opened | "
              "peak RSS (MiB) |", "| --- | ---: | ---: | ---: |"]
    for name, r in piped.items():
        lines.append(f"| {name} | {r['seconds'] * 1000:.0f} | {r['connections']} | "
                     f"{r['rss_kib'] / 1024:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
