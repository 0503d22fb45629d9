"""Python opcodes per call through the gateway, tenancy off vs. on, per function: where "on" costs.

bench/tenancy.py's setup (the fake upstream, one gateway, the same project and key), with the gateway
started with a `sitecustomize` that counts every Python opcode the event loop's thread runs while it is
switched on (SIGUSR1 on, SIGUSR2 off and write the counts). For each side it drives N calls through
bench/load.py with counting on, then prints per function the opcodes per call off, on and the
difference, largest first. Unlike time, the counts repeat from run to run; unlike callgrind's, they
name the Python function. C code (uvicorn's parser, regexes, orjson, the kernel) is not counted, and
counting slows the gateway many times over, so work on a timer (Redis batches) is spread over fewer
calls than at full speed. The limits' hot path is compiled (setup.py), so its work is C and not counted;
to see it by function, `make pure` first (README, Development).

Usage: .venv/bin/python bench/opcodes.py [--backend sqlite|postgres] [--on every|typical] [-c 64] [-n 2000]
       [--top 30]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway as gw  # bench/gateway.py: services
import tenancy as tn  # bench/tenancy.py: stores and tenants

SITE = """import collections, json, os, signal, sys
counts = collections.Counter()
def local(frame, event, arg):
    if event == "opcode":
        counts[frame.f_code] += 1
    return local
def start(frame, event, arg):
    frame.f_trace_opcodes = True
    return local
def on(*_):
    counts.clear()
    sys.settrace(start)
def off(*_):
    sys.settrace(None)
    named = collections.Counter()
    for code, n in counts.items():
        named[f"{code.co_filename.split('site-packages/')[-1].split('src/')[-1]}:{code.co_qualname}"] += n
    with open(os.environ["FOUNDRY_BENCH_OPCODES"] + ".tmp", "w") as out:
        json.dump(named, out)
    os.replace(os.environ["FOUNDRY_BENCH_OPCODES"] + ".tmp", os.environ["FOUNDRY_BENCH_OPCODES"])
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
"""


SETTLE_SECONDS = 3.0
"""Counting goes on this long after the last call, so that the usage flusher stores the side's own
records while they are counted (else the next side would pay for them)."""


def counted(pid: int, out: Path, service: gw.Service, concurrency: int, calls: int) -> Counter[str]:
    """Opcodes per function over `calls` calls to `service`."""
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    result = tn.drive(service, concurrency, calls)
    time.sleep(SETTLE_SECONDS)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while not out.exists():  # the gateway writes it on its next turn of the loop
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not write its opcode counts")
        time.sleep(0.05)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} calls failed: {result['error_kinds']}")
    return Counter(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=tuple(tn.BACKENDS), default="sqlite")
    parser.add_argument("--on", choices=tuple(tn.PROFILES), default="every", help="which limits 'on' meets")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-n", "--calls", type=int, default=2000, help="calls counted per side")
    parser.add_argument("--top", type=int, default=30, help="functions shown")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="foundry-opcodes-"))
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(SITE)
    out = tmp / "counts.json"
    env = gw.child_env(PYTHONPATH=str(tmp / "site"), FOUNDRY_BENCH_OPCODES=str(out))
    bench = tn.GatewayBench(tmp, pin=False, env=env)
    try:
        sides = tn.start_sides(bench, tmp, args.backend, args.on)
        pid = sides["off"].process.pid
        counts = {name: counted(pid, out, side, args.concurrency, args.calls) for name, side in sides.items()}
    finally:
        bench.stop_all()
    per_call = {name: {f: n / args.calls for f, n in c.items()} for name, c in counts.items()}
    totals = {name: sum(values.values()) for name, values in per_call.items()}
    print(f"{tn.BACKENDS[args.backend]}, --on {args.on}, {args.calls:,} calls per side at concurrency "
          f"{args.concurrency}: {totals['off']:,.0f} opcodes per call off, {totals['on']:,.0f} on "
          f"({totals['on'] - totals['off']:+,.0f}, {totals['on'] / totals['off']:.3f}x)\n")  # fmt: skip
    print("| off | on | on - off | function |\n| --- | --- | --- | --- |")
    functions = set(per_call["off"]) | set(per_call["on"])
    for function in sorted(functions, key=lambda f: per_call["off"].get(f, 0) - per_call["on"].get(f, 0))[: args.top]:
        off_n, on_n = per_call["off"].get(function, 0.0), per_call["on"].get(function, 0.0)
        print(f"| {off_n:,.1f} | {on_n:,.1f} | {on_n - off_n:+,.1f} | `{function}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
