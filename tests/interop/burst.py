"""A stdio MCP client in a hurry: writes initialize, notifications/initialized and tools/list
to ``mcp-oauth proxy`` in one write, as fast clients do, then reads the two answers. Servers on
mcp 1.x refuse a request that overtakes ``notifications/initialized`` (JSON-RPC -32602), so the
bridge must send them one at a time, in order. Standard library only.

Usage: ``python3 burst.py RUNS -- COMMAND...`` (COMMAND: the proxy, e.g. ``mcp-oauth proxy URL
--no-login --cache-dir DIR``). Each run starts COMMAND, writes the three messages, waits at most
30 s for both answers, closes its standard input and waits at most 10 s for it to end (then kills
it). Prints one line per failed run and ``RUNS runs, N failed`` last; exits 1 when one failed.
The proxy's standard error goes to the file named by BURST_STDERR (default: discarded).
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time

PROTOCOL = "2025-06-18"


def messages():
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "interop burst", "version": "1"},
        },
    }
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    return "".join(json.dumps(m) + "\n" for m in (initialize, initialized, tools)).encode()


def read_lines(stream, out):
    for line in stream:
        out.put(line)
    out.put(None)


def one_run(command, stderr):
    """None when both answers came and are results, else why not."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
    lines = queue.Queue()
    threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True).start()
    answers = {}
    why = None
    try:
        proc.stdin.write(messages())
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while len(answers) < 2:
            left = deadline - time.monotonic()
            if left <= 0:
                why = f"no answer to {sorted({1, 2} - answers.keys())} within 30 s"
                break
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                why = f"the proxy closed its output (exit {proc.poll()}) after answers {sorted(answers)}"
                break
            try:
                message = json.loads(line)
            except ValueError:
                why = f"not JSON: {line[:200]!r}"
                break
            if message.get("id") in (1, 2) and ("result" in message or "error" in message):
                answers[message["id"]] = message
        if why is None:
            for key, name in ((1, "initialize"), (2, "tools/list")):
                if "error" in answers[key]:
                    why = f"{name} answered error {json.dumps(answers[key]['error'])[:300]}"
                    break
        if why is None and not answers[2]["result"].get("tools"):
            why = f"tools/list listed no tools: {json.dumps(answers[2]['result'])[:300]}"
    except OSError as e:
        why = f"writing to the proxy failed: {e}"
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            why = why or "the proxy did not end within 10 s of its input closing"
    return why


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit("usage: python3 burst.py RUNS -- COMMAND...")
    runs = int(sys.argv[1])
    command = sys.argv[3:]
    err_path = os.environ.get("BURST_STDERR")
    stderr = open(err_path, "ab") if err_path else subprocess.DEVNULL
    failed = 0
    started = time.monotonic()
    for n in range(1, runs + 1):
        why = one_run(command, stderr)
        if why:
            failed += 1
            print(f"run {n}: {why}", flush=True)
    print(f"{runs} runs, {failed} failed ({time.monotonic() - started:.1f} s)", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
