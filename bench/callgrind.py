"""Instructions per call through the gateway, tenancy off vs. on: bench/tenancy.py's setup, counted by callgrind.

On a shared machine requests/s move by ±10% between runs of the same code, more than the difference this
bench looks for; instructions do not. It starts the fake upstream and one gateway under
`valgrind --tool=callgrind` (SQLite with limits in memory, or PostgreSQL + Redis as bench/tenancy.py sets
them up), creates the same project and key, warms both sides up, then for each phase zeroes the counters
(`callgrind_control -z`), drives N calls through bench/load.py at the given concurrency and dumps them
(`callgrind_control -d`): instructions per call = the dump's total / N. Background work (the usage
flusher, the key-ring refresh) counts too, on both sides alike.

Under valgrind the gateway runs ~50x slower while Redis runs at full speed, so a Redis batch would carry a
call or two where at real speed it carries many; `--scale 50` multiplies the Redis store's waits
(UNWAITED_DELAY, FRESH_SECONDS, HEARTBEAT_SECONDS) by 50 so that batches hold about as many calls as at
real speed. Phases run in the order given, e.g. off,on,off,on.

Usage: .venv/bin/python bench/callgrind.py [--backend sqlite|postgres] [--on every|typical] [-c 1] [-n 1000]
       [--phases off,on,off,on] [--scale 0]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway as gw  # bench/gateway.py: services
import tenancy as tn  # bench/tenancy.py: stores and tenants

SITE = """import os
import openfoundry.limits.redis as store
scale = float(os.environ["FOUNDRY_BENCH_SCALE"])
store.UNWAITED_DELAY *= scale
store.FRESH_SECONDS *= scale
store.HEARTBEAT_SECONDS *= scale
"""


def total_instructions(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {dump}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=tuple(tn.BACKENDS), default="sqlite")
    parser.add_argument("--on", choices=tuple(tn.PROFILES), default="every", help="which limits 'on' meets")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--calls", type=int, default=1000, help="calls counted per phase")
    parser.add_argument("--phases", default="off,on,off,on")
    parser.add_argument("--scale", type=float, default=0.0, help="multiply the Redis store's waits (0: leave)")
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    if not set(phases) <= {"off", "on"}:
        parser.error("--phases: off and on, comma-separated")
    tmp = Path(tempfile.mkdtemp(prefix="foundry-callgrind-"))
    env = gw.child_env()
    if args.scale:
        (tmp / "site").mkdir()
        (tmp / "site" / "sitecustomize.py").write_text(SITE)
        env = gw.child_env(PYTHONPATH=str(tmp / "site"), FOUNDRY_BENCH_SCALE=str(args.scale))
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out"]
    bench = tn.GatewayBench(tmp, pin=False, env=env, wrapper=wrapper, timeout=900)
    try:
        sides = tn.start_sides(bench, tmp, args.backend, args.on)
        pid = str(sides["off"].process.pid)
        scaled = f", Redis store's waits x{args.scale:g}" if args.scale else ""
        print(f"{tn.BACKENDS[args.backend]}, {args.calls:,} calls per phase at concurrency {args.concurrency}"
              f"{scaled}, {tn.limits_build()}")  # fmt: skip
        for phase in phases:
            subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=True)
            result = tn.drive(sides[phase], args.concurrency, args.calls)
            subprocess.run(["callgrind_control", "-d", pid], capture_output=True, check=True)
            dump = max(tmp.glob("callgrind.out*"), key=lambda path: path.stat().st_mtime)
            per_call = total_instructions(dump) / args.calls
            dump.unlink()
            print(f"{phase}: {per_call / 1e6:.3f} M instructions per call ({result['errors']} errors)", flush=True)
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
