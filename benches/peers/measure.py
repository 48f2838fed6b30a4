"""The measuring part of the peer benchmarks (`benches/peers/run.sh` runs it; standard library
only, any Python 3.9+).

    measure.py run --spawn BIN --server BIN --ours BIN --floor BIN [--fastmcp PYTHON DRIVER]
                   [--ts NODE DRIVER] [--rmcp BIN] --work DIR --out RESULTS.json
                   [--runs 7] [--lifetime 5]
    measure.py report RESULTS.json [SIZES.json [MACHINE.json]]

`run` starts the embedded authorization server + MCP endpoint once (`examples/bench_server.rs`,
loopback) and runs rounds. In each round, client after client (A B C, then A B C in the next
round): empty the client's cache, run its first login, then its cached-token run, each as its own
process (after this crate's cached run, the floor program reads and parses the same token file,
and `/bin/true` shows what starting any process costs here). Then, once every token of the round
has expired (the server issues tokens of `--lifetime` seconds), each client's expired-token run: a
refresh. Each process logs in as far as needed and then sends `initialize` + `tools/list`. The
rmcp program keeps no cache: first logins only. One warm-up round is run first and dropped.

Each process is started by the `spawn` launcher (spawn.c: posix_spawn, wait4, a timeout): wall
time from just before the spawn to the reap, peak RSS and CPU time from the reaped child's rusage.
After each process the server's request log is taken: requests, TCP connections, and their kinds.

`report` prints the tables and the targets of issue 8 as Markdown.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TRUE = "/bin/true"
# A measured process still running after this long is killed and its run counted as failed.
TIMEOUT_S = 60
OAUTH_ROUTES = {"ResourceMetadata", "AuthServerMetadata", "Register", "Token", "Revoke"}
SHORT = {
    "ResourceMetadata": "PRM",
    "AuthServerMetadata": "ASM",
    "Register": "REG",
    "Token": "TOK",
    "Revoke": "REV",
    "Authorize": "AUTHZ",
    None: "other",
}


def is_browser(r):
    """The redirect followers standing in for the browser: ours (`HeadlessBrowser`, ureq's
    default User-Agent) and the peers' (`bench-browser`)."""
    ua = r.get("user_agent") or ""
    return ua == "bench-browser" or ua.startswith("ureq/")


def analyse(requests):
    """Counts of one process's requests, from the server's log."""
    client = [r for r in requests if not is_browser(r)]
    browser = [r for r in requests if is_browser(r)]
    mcp = [r for r in client if r["route"] == "Mcp"]
    oauth = [r for r in client if r["route"] != "Mcp"]
    first_mcp = next((i for i, r in enumerate(client) if r["route"] == "Mcp"), len(client))
    kinds = {}
    for r in oauth:
        k = SHORT.get(r["route"], r["route"])
        if r["route"] == "Token" and r.get("grant_type") == "refresh_token":
            k = "REFRESH"
        kinds[k] = kinds.get(k, 0) + 1
    return {
        "requests": len(requests),
        "oauth": len(oauth),
        "oauth_kinds": kinds,
        "browser": len(browser),
        "mcp": len(mcp),
        "mcp_unauthenticated": sum(1 for r in mcp if not r["authorization"]),
        "mcp_methods": [r["rpc"] or r["method"] for r in mcp],
        "before_first_mcp": first_mcp,
        "connections": len({r["connection"] for r in client}),
        "connections_all": len({r["connection"] for r in requests}),
    }


class Server:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.p.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"bench_server did not start: {self.url!r}")

    def command(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def take(self):
        return self.command("take")["requests"]

    def close(self):
        self.p.stdin.close()
        totals = json.loads(self.p.stdout.readline())
        self.p.wait(timeout=10)
        return totals


class Rusage:
    def __init__(self, maxrss, user_us, sys_us):
        self.ru_maxrss = maxrss
        self.ru_utime = user_us / 1e6
        self.ru_stime = sys_us / 1e6


def spawn_measured(spawn, argv, env, out_path):
    """Runs argv to completion under the `spawn` launcher (spawn.c): returns (wall seconds,
    rusage, exit status) as the launcher measured them."""
    line = subprocess.run([spawn, out_path, str(TIMEOUT_S), *argv], env=env, capture_output=True,
                          text=True, check=True).stdout.split()
    wall_ns, maxrss, user_us, sys_us, code = (int(x) for x in line)
    return wall_ns / 1e9, Rusage(maxrss, user_us, sys_us), code


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args):
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    server = Server([args.server])
    url = server.url
    server.command(f"lifetime {args.lifetime}")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUST_LOG", "MCP_"))}

    clients = []
    ours_cache = os.path.join(work, "cache-ours")
    clients.append({
        "name": "ours",
        "label": "mcp-oauth-client (examples/mcp_client, release)",
        "argv": [os.path.abspath(args.ours), url],
        "env": dict(base_env, MCP_OAUTH_HEADLESS="1", MCP_OAUTH_CACHE_DIR=ours_cache),
        "cache": ours_cache,
    })
    if args.fastmcp:
        cache = os.path.join(work, "cache-fastmcp")
        clients.append({
            "name": "fastmcp",
            "label": "FastMCP Client + OAuth (Python)",
            "argv": [args.fastmcp[0], args.fastmcp[1], url, cache],
            "env": dict(base_env),
            "cache": cache,
        })
    if args.rmcp:
        clients.append({
            "name": "rmcp",
            "label": "rmcp 3.11 auth + streamable HTTP client (Rust, tokio; login only, no cache)",
            "argv": [os.path.abspath(args.rmcp), url],
            "env": dict(base_env, RMCP_HEADLESS="1"),
            "cache": os.path.join(work, "cache-rmcp"),
            "cases": ["first"],
        })
    if args.ts:
        cache = os.path.join(work, "cache-ts")
        port = free_port()
        clients.append({
            "name": "ts",
            "label": "MCP TypeScript SDK client (Node.js)",
            "argv": [args.ts[0], args.ts[1], url, cache, str(port)],
            "env": dict(base_env),
            "cache": cache,
        })

    def token_file():
        names = [n for n in os.listdir(ours_cache) if n.endswith("_tokens.json")]
        if len(names) != 1:
            raise SystemExit(f"expected one token file in {ours_cache}, found {names}")
        return os.path.join(ours_cache, names[0])

    records = []
    failures = []
    log_path = os.path.join(work, "last-output.txt")

    def measure(client, case, it, argv=None, env=None):
        argv = argv or client["argv"]
        wall, ru, code = spawn_measured(args.spawn, argv, env or client["env"], log_path)
        with open(log_path, errors="replace") as f:
            output = f.read()
        requests = server.take()
        ok = code == 0
        if client == "floor":
            ok = ok and output.startswith("parsed")
        elif client == "true":
            pass
        elif "tools:" not in output or "echo" not in output:
            ok = False
        name = client if isinstance(client, str) else client["name"]
        rec = {
            "client": name,
            "case": case,
            "iteration": it,
            "wall_ms": wall * 1000,
            "maxrss_kib": ru.ru_maxrss,
            "user_ms": ru.ru_utime * 1000,
            "sys_ms": ru.ru_stime * 1000,
            "exit": code,
            "ok": ok,
            **analyse(requests),
        }
        if not ok:
            failures.append({**rec, "output": output[-2000:]})
            print(f"  FAILED: {name} {case} #{it} exit {code}: {output[-500:]}", file=sys.stderr)
        if it > 0:
            records.append(rec)
        return rec

    rounds = args.runs + 1
    started = time.monotonic()
    for it in range(rounds):
        tag = "warm-up" if it == 0 else f"run {it}/{args.runs}"
        print(f"round {tag}", file=sys.stderr)
        for c in clients:
            subprocess.run(["rm", "-rf", c["cache"]], check=True)
            measure(c, "first", it)
            if "cached" not in c.get("cases", ["cached"]):
                continue
            measure(c, "cached", it)
            if c["name"] == "ours":
                measure("floor", "cached", it, argv=[os.path.abspath(args.floor), token_file()],
                        env=dict(base_env))
                measure("true", "cached", it, argv=[TRUE], env=dict(base_env))
        # Every token of this round has the server's short lifetime: wait until they are all
        # expired, at the server and at each client, then refresh.
        time.sleep(args.lifetime + 1.2)
        for c in clients:
            if "expired" in c.get("cases", ["expired"]):
                measure(c, "expired", it)
    totals = server.close()
    result = {
        "server_url": url,
        "runs": args.runs,
        "token_lifetime_s": args.lifetime,
        "elapsed_s": time.monotonic() - started,
        "clients": {c["name"]: c["label"] for c in clients},
        "client_argv": {c["name"]: c["argv"][:2] for c in clients},
        "server_totals": totals,
        "records": records,
        "failures": failures,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{len(records)} runs recorded, {len(failures)} failed, "
          f"{result['elapsed_s']:.0f} s", file=sys.stderr)
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------
# Report


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_ms(x):
    if x != x:
        return "n/a"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def fmt_ratio(x):
    if x != x:
        return "n/a"
    if x >= 100:
        return f"{x:.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def spread(values):
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def kinds_text(recs):
    texts = {", ".join(f"{k} {v}" for k, v in sorted(r["oauth_kinds"].items())) or "none"
             for r in recs}
    return " / ".join(sorted(texts))


def report(args):
    res = json.load(open(args.results))
    sizes = json.load(open(args.sizes)) if args.sizes and os.path.exists(args.sizes) else {}
    machine = json.load(open(args.machine)) if args.machine and os.path.exists(args.machine) else {}
    recs = [r for r in res["records"] if r["ok"]]
    by = {}
    for r in recs:
        by.setdefault((r["client"], r["case"]), []).append(r)
    labels = dict(res["clients"], floor="floor: read + parse the token file (Rust, serde_json)",
                  true="baseline: /bin/true (process start and exit only)")
    out = []
    p = out.append
    p(f"Runs: {res['runs']} per client and case, interleaved, after one warm-up round; "
      f"medians. Token lifetime at the server: {res['token_lifetime_s']} s. "
      f"Failed runs: {len(res['failures'])}.")
    p("")
    p("### Whole process: wall time and peak RSS (medians)")
    p("")
    p("| case | client | wall ms | peak RSS MiB | user+sys ms | OAuth req (before 1st MCP) "
      "| browser req | MCP req | TCP conns |")
    p("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    order = [c for c in ["ours", "fastmcp", "ts", "rmcp"] if c in res["clients"]]
    for case in ["first", "cached", "expired"]:
        for c in order + (["floor", "true"] if case == "cached" else []):
            rs = by.get((c, case))
            if not rs:
                continue
            oauth = spread([r["oauth"] for r in rs])
            before = spread([r["before_first_mcp"] for r in rs])
            p(f"| {case} | {labels[c]} | {fmt_ms(med([r['wall_ms'] for r in rs]))} "
              f"| {med([r['maxrss_kib'] for r in rs]) / 1024:.1f} "
              f"| {fmt_ms(med([r['user_ms'] + r['sys_ms'] for r in rs]))} "
              + (f"| {oauth}: {kinds_text(rs)} ({before}) " if c in order else "| - ")
              + (f"| {spread([r['browser'] for r in rs])} "
                 f"| {spread([r['mcp'] for r in rs])} "
                 f"| {spread([r['connections'] for r in rs])} |" if c in order else "| - | - | - |"))
    p("")
    p("OAuth requests are the client's own requests other than MCP ones (PRM = resource metadata, "
      "ASM = authorization server metadata, REG = registration, TOK = code exchange, REFRESH = "
      "refresh, AUTHZ = a GET of the authorization URL by the client itself); in brackets, how "
      "many requests the client sent before its first MCP request. Browser requests are the "
      "redirect follower's (its GET of the authorize URL; its GET of the callback goes to the "
      "client's own listener, not to the server). "
      "TCP connections: distinct connections carrying the client's own requests, counted by the "
      "server (the browser's excluded).")
    p("")
    p("MCP requests per process:")
    p("")
    for c in order:
        for case in ["first", "cached", "expired"]:
            rs = by.get((c, case))
            if rs:
                seqs = {" ".join(m for m in r["mcp_methods"]) for r in rs}
                p(f"- {c}, {case}: " + " / ".join(sorted(seqs)))
    p("")
    p("### Ratios (medians of the same run)")
    p("")
    p("| case | pair | wall time | peak RSS | CPU time (user+sys) |")
    p("| --- | --- | ---: | ---: | ---: |")

    def m(c, case, key):
        rs = by.get((c, case))
        if not rs:
            return float("nan")
        if key == "rss":
            return med([r["maxrss_kib"] for r in rs])
        if key == "cpu":
            return med([r["user_ms"] + r["sys_ms"] for r in rs])
        return med([r["wall_ms"] for r in rs])

    ratios = {}
    for case in ["first", "cached", "expired"]:
        for peer in [c for c in order if c != "ours" and (c, case) in by]:
            w = m(peer, case, "wall") / m("ours", case, "wall")
            rss = m(peer, case, "rss") / m("ours", case, "rss")
            cpu = m(peer, case, "cpu") / m("ours", case, "cpu")
            ratios[(peer, case)] = (w, rss)
            p(f"| {case} | {peer} / ours | {fmt_ratio(w)} | {fmt_ratio(rss)} | {fmt_ratio(cpu)} |")
    floor_ratio = m("ours", "cached", "wall") / m("floor", "cached", "wall")
    p(f"| cached | ours / floor | {fmt_ratio(floor_ratio)} | "
      f"{fmt_ratio(m('ours', 'cached', 'rss') / m('floor', 'cached', 'rss'))} | "
      f"{fmt_ratio(m('ours', 'cached', 'cpu') / m('floor', 'cached', 'cpu'))} |")
    p("")

    if sizes:
        p("### Size and weight")
        p("")
        p("| program | stripped binary | opt-level s + LTO | crates (`cargo tree -e normal`) "
          "| clean release build |")
        p("| --- | ---: | ---: | ---: | ---: |")
        for key in ["mcp_oauth", "mcp_client", "rmcp"]:
            s = sizes.get(key)
            if not s:
                continue

            def kib(v):
                return f"{v / 1024:.0f} KiB" if isinstance(v, (int, float)) else "n/a"

            build = s.get("clean_build_s")
            p(f"| {s['label']} | {kib(s.get('stripped'))} | {kib(s.get('small'))} "
              f"| {s.get('crates', 'n/a')} | "
              + (f"{build:.0f} s" if isinstance(build, (int, float)) else "n/a") + " |")
        p("")

    p("### Targets (issue 8)")
    p("")
    p("| target | measured | verdict |")
    p("| --- | --- | --- |")

    def verdict(ok):
        return "met" if ok else "**missed**"

    if ("fastmcp", "cached") in ratios:
        w = ratios[("fastmcp", "cached")][0]
        p(f"| cached token: >= 500x faster than FastMCP | {fmt_ratio(w)} | {verdict(w >= 500)} |")
    p(f"| cached token: within 3x of the floor | {fmt_ratio(floor_ratio)} "
      f"({fmt_ms(m('ours', 'cached', 'wall'))} ms vs {fmt_ms(m('floor', 'cached', 'wall'))} ms) "
      f"| {verdict(floor_ratio <= 3)} |")
    if ("fastmcp", "first") in ratios:
        w = ratios[("fastmcp", "first")][0]
        p(f"| first login: >= 10x faster than FastMCP | {fmt_ratio(w)} | {verdict(w >= 10)} |")
    if ("fastmcp", "cached") in ratios:
        worst = min(ratios[("fastmcp", c)][1] for c in ["first", "cached", "expired"]
                    if ("fastmcp", c) in ratios)
        p(f"| peak RSS <= 1/10 of FastMCP's (every case) | FastMCP uses {fmt_ratio(worst)} "
          f"ours at the closest | {verdict(worst >= 10)} |")
    first = by.get(("ours", "first"), [])
    if first:
        kinds = kinds_text(first)
        n = spread([r["oauth"] for r in first])
        ok = all(r["oauth"] == 4 and r["oauth_kinds"] == {"PRM": 1, "ASM": 1, "REG": 1, "TOK": 1}
                 for r in first)
        p(f"| first login: 4 OAuth requests (+ the browser's authorize GET) | {n}: {kinds}; "
          f"browser {spread([r['browser'] for r in first])} | {verdict(ok)} |")
    cached = by.get(("ours", "cached"), [])
    if cached:
        n = spread([r["before_first_mcp"] for r in cached])
        p(f"| cached token: zero requests before the MCP ones | {n} | "
          f"{verdict(all(r['before_first_mcp'] == 0 for r in cached))} |")
    for case in ["first", "cached", "expired"]:
        rs = by.get(("ours", case), [])
        if rs:
            n = spread([r["connections"] for r in rs])
            p(f"| one TCP connection per origin per process ({case}; AS and MCP share one origin "
              f"here) | {n} | {verdict(all(r['connections'] == 1 for r in rs))} |")
    if sizes.get("mcp_oauth") and sizes.get("rmcp"):
        a, b = sizes["mcp_oauth"], sizes["rmcp"]
        if isinstance(a.get("stripped"), int) and isinstance(b.get("stripped"), int):
            r = a["stripped"] / b["stripped"]
            p(f"| stripped `mcp-oauth` <= 1/3 of the rmcp program's | {r:.2f} "
              f"({a['stripped'] // 1024} / {b['stripped'] // 1024} KiB) | {verdict(r <= 1 / 3)} |")
            if isinstance(a.get("small"), int) and isinstance(b.get("small"), int):
                r2 = a["small"] / b["small"]
                p(f"| same, both opt-level s + LTO | {r2:.2f} | {verdict(r2 <= 1 / 3)} |")
        if isinstance(a.get("crates"), int) and isinstance(b.get("crates"), int):
            r = a["crates"] / b["crates"]
            p(f"| crates <= 60% of the rmcp program's | {r:.0%} ({a['crates']} / {b['crates']}) "
              f"| {verdict(r <= 0.6)} |")
    p("")
    if machine:
        p("Machine: " + ", ".join(f"{k}: {v}" for k, v in machine.items()))
    print("\n".join(out))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--spawn", required=True)
    r.add_argument("--server", required=True)
    r.add_argument("--ours", required=True)
    r.add_argument("--floor", required=True)
    r.add_argument("--fastmcp", nargs=2, metavar=("PYTHON", "DRIVER"))
    r.add_argument("--ts", nargs=2, metavar=("NODE", "DRIVER"))
    r.add_argument("--rmcp", metavar="BIN")
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--runs", type=int, default=7)
    r.add_argument("--lifetime", type=int, default=5)
    rp = sub.add_parser("report")
    rp.add_argument("results")
    rp.add_argument("sizes", nargs="?")
    rp.add_argument("machine", nargs="?")
    args = ap.parse_args()
    sys.exit(run(args) if args.cmd == "run" else report(args))


if __name__ == "__main__":
    main()
