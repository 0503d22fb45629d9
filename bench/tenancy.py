"""The tenancy benchmark (issue 4, point 6): requests/s with auth + limits + metering on vs. off.

It starts, all on 127.0.0.1 and each in its own process, the fake upstream (bench/upstream.py) and one
Openfoundry per storage backend (bench/gateway.py's `start_openfoundry`):
- `sqlite`: SQLite in a temp dir, limits in the process's memory;
- `postgres`: PostgreSQL (--postgres, default postgresql://postgres@127.0.0.1:5432/test_bench, dropped
  and created afresh: its name must start with `test_bench`) and Redis (--redis, default
  redis://127.0.0.1:6379/13; that db, and only it, is flushed), so limits go through Redis scripts.
Each gateway serves two deployments at the same upstream:
- `bench`, without limits, called with the admin key: "off" (no key lookup, no limit or budget check);
- "on", called with a project key (`POST /admin/projects`, `POST /admin/keys`), with limits and budgets
  far above what the run uses, so nothing is refused but every check runs. `--on every` (the default):
  `bench-limited`, with rpm/tpm/concurrency limits, and a project and a key (bound to `bench-limited`)
  with the same and a budget each: every limit kind on all three scopes, the most a call can meet.
  `--on typical`: `bench` itself, with a key (bound to it) that has rpm and tpm limits, on a project
  with a monthly budget.
The gateway meters every call either way (usage spool -> database): there is no switch to turn metering
off, so "off" still pays for it and the on/off difference is auth + limits + budgets (+ the key and
project columns of the usage record).

Per round, for each scenario (non-streaming at concurrency 1 and 64, streaming at 64) and each backend,
off and on are driven back to back by bench/load.py (their order alternating between rounds), for --rounds
rounds; requests/s are reported as medians of rounds, and the on/off ratio is the median of the per-round
ratios. Target (the issue's): on at most 10% slower in requests/s. At concurrency 1 the table also shows
the p50 latency the gateway adds over the upstream alone (measured in the same round), off and on: a
stricter reading, since it leaves out the client and the upstream.
It also reads the gateway's CPU time (/proc/PID/stat) around each run: ≈ CPU per call, which, unlike
requests/s, does not move when other processes on this shared machine take CPU from the gateway.

It prints a Markdown table and writes bench/results/tenancy-<timestamp>.json (every run's numbers).

Usage: .venv/bin/python bench/tenancy.py [--on every|typical] [--duration S] [--rounds N] [--quick]
       [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway as gw  # bench/gateway.py: services, load.py runs, medians, formatting

MAX_SLOWDOWN = 0.10
"""Issue 4: with auth + limits + metering on, at most 10% slower."""
LIMITED = "bench-limited"
PROJECT = "bench-tenant"
HIGH = {"rpm": 10_000_000, "tpm": 10_000_000_000, "concurrency": 1000}
"""Limits no run comes near (a 3-s run makes ~10,000 calls of ~40 estimated tokens), so none is refused."""
BUDGET_USD = 1_000_000_000.0
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test_bench"
REDIS = "redis://127.0.0.1:6379/13"
BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL + Redis"}
PROFILES = {
    "every": "every limit kind on the key, the project and the deployment, and a budget on the key and the project",
    "typical": "rpm and tpm on the key, a monthly budget on the project, no deployment limits",
}
"""What "on" calls meet (--on)."""

SCENARIOS = [gw.Scenario("non-streaming", False, 1), gw.Scenario("non-streaming", False, 64),
             gw.Scenario("streaming", True, 64)]  # fmt: skip

_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def limits_build() -> str:
    """How the installed limits' hot path runs: compiled by setup.py, or as Python after `make pure`."""
    spec = importlib.util.find_spec("openfoundry.limits.store")
    compiled = spec is not None and spec.origin is not None and spec.origin.endswith(".so")
    return "limits compiled (mypyc)" if compiled else "limits as plain Python"


def call(url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], Any]:
    """One JSON request (POST when there is a body): status, headers (lower-case), parsed answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {key}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _http.open(request, timeout=10) as answer:
            status, headers, raw = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw) if raw else None


# ---- the stores -------------------------------------------------------------------------------------------


def reset_postgres(url: str) -> str | None:
    """Drop and create the bench database; None when done, else why not."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("test_bench"):
        return f"--postgres must name a database called test_bench* (it is dropped and created), not {name!r}"
    maintenance = urlunsplit(parts._replace(path="/postgres"))

    async def reset() -> None:
        import asyncpg

        connection = await asyncpg.connect(maintenance, timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    try:
        asyncio.run(reset())
    except Exception as exc:
        return f"PostgreSQL at {parts.hostname}:{parts.port} not usable ({exc.__class__.__name__}: {exc})"
    return None


def flush_redis(url: str) -> str | None:
    """Empty the bench's Redis db (only that one); None when done, else why not."""
    db = urlsplit(url).path.lstrip("/")
    if not db.isdigit() or db == "0":
        return f"--redis must name a dedicated db other than 0 (it is flushed), e.g. {REDIS}; got {url!r}"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        return f"Redis at {url} not usable ({exc.__class__.__name__}: {exc})"
    return None


# ---- tenants ----------------------------------------------------------------------------------------------


def make_tenant(service: gw.Service, profile: str) -> tuple[str, str, list[str]]:
    """Create the project and its key through the admin API, as `profile` (see PROFILES) says; check that
    "on" calls pass the limit layers and that the key is bound to its deployment. Returns the key's secret,
    the deployment "on" calls, and what the checks saw."""
    base = service.url.rsplit("/v1/", 1)[0]
    if profile == "every":
        model, other = LIMITED, gw.MODEL
        limits: dict[str, Any] = {"limits": HIGH, "budget_usd": BUDGET_USD}
        project = {"name": PROJECT, **limits, "budget_period": "month"}
        key = {"deployments": [model], **limits, "budget_period": "day"}
    else:
        model, other = gw.MODEL, LIMITED
        project = {"name": PROJECT, "budget_usd": BUDGET_USD, "budget_period": "month"}
        key = {"deployments": [model], "limits": {"rpm": HIGH["rpm"], "tpm": HIGH["tpm"]}}
    status, _, answer = call(base + "/admin/projects", gw.ADMIN_KEY, project)
    if status != 201:
        raise RuntimeError(f"POST /admin/projects answered {status}: {answer}")
    status, _, answer = call(base + "/admin/keys", gw.ADMIN_KEY, {"project": PROJECT, "name": "bench", **key})
    if status != 201:
        raise RuntimeError(f"POST /admin/keys answered {status}: {answer}")
    secret = str(answer["key"])
    ask = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    status, headers, answer = call(service.url, secret, ask)
    if status != 200 or headers.get("x-ratelimit-limit-requests") != str(HIGH["rpm"]):
        raise RuntimeError(f"a project-key call answered {status} with headers {headers}: {answer}")
    checks = [f"project-key call: 200, x-ratelimit-limit-requests {headers['x-ratelimit-limit-requests']}, "
              f"x-ratelimit-limit-tokens {headers.get('x-ratelimit-limit-tokens')}"]  # fmt: skip
    status, _, _ = call(service.url, secret, ask | {"model": other})
    checks.append(f"project key on deployment {other!r} (not bound): {status}")
    if status != 403:
        raise RuntimeError(f"the key bound to {model!r} got {status} from {other!r}, not 403")
    return secret, model, checks


class Unmeasurable(RuntimeError):
    """A backend whose storage cannot be set up on this machine."""


def start_gateway(bench: gw.Bench, upstream: gw.Service, tmp: Path, backend: str, profile: str,
                  postgres: str = POSTGRES, redis: str = REDIS) -> tuple[dict[str, gw.Service], list[str]]:  # fmt: skip
    """One gateway on `backend`'s storage serving this bench's tenant (`make_tenant`): its "off" and "on"
    sides, and what the tenant's checks saw."""
    storage: dict[str, Any] = {"database": f"sqlite:///{tmp}/{backend}.db"}
    if backend == "postgres":
        problem = reset_postgres(postgres) or flush_redis(redis)
        if problem:
            raise Unmeasurable(problem)
        storage = {"database": postgres, "redis": redis}
    off = gw.start_openfoundry(bench, upstream, name=f"openfoundry-{backend}", storage=storage,
                               deployments={LIMITED: {"limits": HIGH}})  # fmt: skip
    secret, model, checks = make_tenant(off, profile)
    return {"off": off, "on": dataclasses.replace(off, name=f"{backend}-on", key=secret, model=model)}, checks


@dataclasses.dataclass
class GatewayBench(gw.Bench):
    """Starts the gateway with `env`, its command behind `wrapper` (valgrind, say), the rest as
    bench/gateway.py does. For bench/callgrind.py and bench/opcodes.py."""

    env: dict[str, str] = dataclasses.field(default_factory=gw.child_env)
    wrapper: list[str] = dataclasses.field(default_factory=list)
    timeout: float = 60
    """Seconds the gateway may take to come up."""

    def start(self, name: str, command: list[str], url: str, health: str, **options: Any) -> gw.Service:
        if name.startswith("openfoundry"):
            command = [*self.wrapper, *command]
            options |= {"timeout": self.timeout, "env": self.env}
        return super().start(name, command, url, health, **options)


def start_sides(bench: gw.Bench, tmp: Path, backend: str, profile: str) -> dict[str, gw.Service]:
    """`start_gateway` with an upstream of its own, each side warmed up by 300 calls at concurrency 64. For
    bench/callgrind.py and bench/opcodes.py."""
    sides, _ = start_gateway(bench, gw.start_upstream(bench, "raw"), tmp, backend, profile)
    for side in sides.values():
        drive(side, 64, 300)
    return sides


def drive(service: gw.Service, concurrency: int, calls: int) -> dict[str, Any]:
    """`calls` calls through bench/load.py, however long they take; its JSON result."""
    command = [sys.executable, str(gw.BENCH / "load.py"), "--url", service.url, "-c", str(concurrency),
               "--requests", str(calls), "--warmup", "0", "--duration", "1e9", "--model", service.model,
               "--key", str(service.key), "--timeout", "600"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=gw.child_env())
    return dict(json.loads(done.stdout))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_call_us(result: dict[str, Any], warmup: float) -> float | None:
    """≈ the gateway's CPU per call: its CPU over the run / (requests/s x (warm-up + window)). Unlike
    requests/s, this does not move when other processes take CPU from the gateway."""
    calls = result["rps"] * (warmup + result["duration_s"])
    return None if "gateway_cpu_s" not in result or not calls else result["gateway_cpu_s"] / calls * 1e6


def metered(service: gw.Service) -> dict[str, int]:
    """Calls in the usage table per deployment (the spool reaches the database every 0.5 s)."""
    base = service.url.rsplit("/v1/", 1)[0]
    status, _, answer = call(base + "/admin/usage?group_by=deployment", gw.ADMIN_KEY)
    if status != 200:
        return {}
    return {str(row["deployment"]): int(row["requests"]) for row in answer["data"]}


# ---- report -----------------------------------------------------------------------------------------------


def summarize(runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]], warmup: float) -> list[dict[str, Any]]:
    """One row per backend and scenario: requests/s off and on (medians of rounds) and on/off (median of
    per-round ratios), judged against the issue's target; at concurrency 1 also the p50 latency the gateway
    adds over the upstream alone (paired per round), a stricter reading shown beside it."""
    rows = []
    for backend, scenarios in runs.items():
        for scenario in SCENARIOS:
            of = scenarios[scenario.key]
            pairs = list(zip(of["on"], of["off"], strict=True))
            per_round = [a["rps"] / b["rps"] if b["rps"] else None for a, b in pairs]
            ratio = gw.median(per_round)
            added: dict[str, Any] | None = None
            if scenario.concurrency == 1:
                p50 = [
                    [gw.metric(r, "p50") or 0.0 for r in (a, b, u)]
                    for (a, b), u in zip(pairs, of["upstream"], strict=True)
                ]
                added = {
                    "off_ms": gw.paired_added(of["off"], of["upstream"], "p50"),
                    "on_ms": gw.paired_added(of["on"], of["upstream"], "p50"),
                    "ratio": gw.median([(a - u) / (b - u) if b > u else None for a, b, u in p50]),
                    "on_minus_off_ms": gw.median([a - b for a, b, _ in p50]),
                }
            cpu = {side: gw.median([cpu_per_call_us(r, warmup) for r in of[side]]) for side in ("off", "on")}
            errors = {side: sum(r["errors"] for r in of[side]) for side in ("off", "on")}
            errors = {side: n for side, n in errors.items() if n}
            rows.append({"backend": backend, "scenario": scenario.key, "metric": "requests/s",
                         "off": gw.median([gw.metric(r, "rps") for r in of["off"]]),
                         "on": gw.median([gw.metric(r, "rps") for r in of["on"]]), "ratio": ratio,
                         "ratio_per_round": per_round, "p50_added": added, "gateway_cpu_us_per_call": cpu,
                         "pass": ratio is not None and ratio >= 1 - MAX_SLOWDOWN and not errors,
                         "errors": errors})  # fmt: skip
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    head = ["backend", "scenario", "off (admin key)", "on (project key + limits + budgets)", "on/off", "target",
            "result", "p50 added at c1: off, on, on/off"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for row in rows:
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.3f}x"
        result = gw.verdict(row["pass"])
        if row["errors"]:
            result += " (failed requests: " + ", ".join(f"{s} {n}" for s, n in row["errors"].items()) + ")"
        added = row["p50_added"]
        latency = "—"
        if added is not None and added["ratio"] is not None:
            latency = (f"{gw.ms(added['off_ms'], sign=True)}, {gw.ms(added['on_ms'], sign=True)}, "
                       f"{added['ratio']:.2f}x ({gw.ms(added['on_minus_off_ms'], sign=True)})")  # fmt: skip
        lines.append(f"| {BACKENDS[row['backend']]} | {row['scenario']} | {gw.rps(row['off'])} | {gw.rps(row['on'])} | "
                     f"{ratio} | on ≥ {1 - MAX_SLOWDOWN:.2f}x off | {result} | {latency} |")  # fmt: skip
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--on", choices=tuple(PROFILES), default="every", help="which limits 'on' meets")
    parser.add_argument("--duration", type=float, default=2.0, help="measured seconds per run (default 2)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each run")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; medians are reported (default 7)")
    parser.add_argument("--quick", action="store_true", help="one round of 1 s runs: a smoke test")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--postgres", default=POSTGRES, help="database for the postgres backend (recreated)")
    parser.add_argument("--redis", default=REDIS, help="Redis db for the postgres backend (flushed)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/tenancy-TS.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 1.0, 0.3, 1
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown or not args.backends:
        parser.error(f"--backends: among {', '.join(BACKENDS)}; got {args.backends}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="foundry-tenancy-"))
    bench = gw.Bench(tmp, pin=False)
    notes: list[str] = []
    checks: dict[str, list[str]] = {}
    usage: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    load_before = os.getloadavg()
    try:
        upstream = gw.start_upstream(bench, "raw")
        sides: dict[str, dict[str, gw.Service]] = {}
        for backend in args.backends:
            try:
                sides[backend], checks[backend] = start_gateway(bench, upstream, tmp, backend, args.on,
                                                                args.postgres, args.redis)  # fmt: skip
            except Unmeasurable as exc:
                notes.append(f"{BACKENDS[backend]} not measured: {exc}")
                gw.log(notes[-1])
                continue
            runs[backend] = {s.key: {"upstream": [], "off": [], "on": []} for s in SCENARIOS}
        if not sides:
            raise RuntimeError("no backend could be measured: " + "; ".join(notes))
        gw.log(f"warming up {', '.join(f'{b} {side}' for b in sides for side in sides[b])} ...")
        gw.load(upstream, gw.Scenario("warm-up", False, 16), 0.3, 0.0, False)
        for backend in sides:
            for service in sides[backend].values():
                for stream in (False, True):
                    gw.load(service, gw.Scenario("warm-up", stream, 16), 1.0, 0.0, False)
        total = args.rounds * sum(len(sides) * (3 if s.concurrency == 1 else 2) for s in SCENARIOS)
        done = 0
        for round_index in range(args.rounds):
            for scenario in SCENARIOS:
                backends = list(sides)
                backends = backends[round_index % len(backends) :] + backends[: round_index % len(backends)]
                for backend in backends:
                    order = ["upstream", "off", "on"] if scenario.concurrency == 1 else ["off", "on"]
                    shift = round_index % len(order)
                    for side in order[shift:] + order[:shift]:
                        done += 1
                        gw.log(f"[{done}/{total}] round {round_index + 1}: {scenario.key} -> {backend} {side}")
                        service = upstream if side == "upstream" else sides[backend][side]
                        cpu = cpu_seconds(service.process.pid)
                        result = gw.load(service, scenario, args.duration, args.warmup, False)
                        if side != "upstream":  # the gateway's CPU over the whole run (warm-up included)
                            result["gateway_cpu_s"] = round(cpu_seconds(service.process.pid) - cpu, 3)
                        runs[backend][scenario.key][side].append(result)
        time.sleep(1.5)  # let the meters' flushers store the last calls
        for backend, pair in sides.items():
            counted = metered(pair["off"])
            measured = {side: sum(r["requests"] for s in runs[backend].values() for r in s[side]) for side in pair}
            usage[backend] = {"metered_per_deployment": counted, "measured_requests": measured}
            held = ", ".join(f"{n:,} to {name!r}" for name, n in sorted(counted.items()))
            notes.append(
                f"{BACKENDS[backend]}: usage table holds calls: {held}; the measured windows completed "
                f"{measured['off']:,} off and {measured['on']:,} on (the rest are warm-ups and checks)"
            )
        for service in bench.services:
            if service.process.poll() is not None:
                notes.append(f"{service.name} exited early with {service.process.returncode}")
    finally:
        bench.stop_all()
    load_after = os.getloadavg()
    rows = summarize(runs, args.warmup)
    table = render(rows)
    elapsed = time.time() - started
    header = (
        f"Openfoundry tenancy benchmark — {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}, "
        f"{os.cpu_count()} CPUs, {args.rounds} round(s) x {args.duration:g} s per run (+{args.warmup:g} s warm-up), "
        f"medians of rounds; load average {load_before[0]:.2f} → {load_after[0]:.2f}; {elapsed:.0f} s in all; "
        f"on = --on {args.on}: {PROFILES[args.on]}; {limits_build()}"
    )
    print(f"\n{header}\n\n{table}\n")
    for backend, lines in checks.items():
        for line in lines:
            print(f"- {BACKENDS[backend]}: {line}")
    for row in rows:
        cpu = row["gateway_cpu_us_per_call"]
        if None not in cpu.values():
            print(f"- {BACKENDS[row['backend']]}, {row['scenario']}: gateway CPU ≈ {cpu['off']:.0f} µs per call off, "
                  f"{cpu['on']:.0f} µs on ({cpu['on'] - cpu['off']:+.0f} µs)")  # fmt: skip
    for note in notes:
        print(f"- {note}")
    print(
        "- off = admin key, deployment without limits; on = project key bound to its deployment, limits as above. "
        "Both are metered (usage spool -> database): metering has no off switch. p50 added = through the gateway "
        "minus the upstream alone (paired per round); on/off = median of per-round ratios."
    )
    out = args.out or gw.RESULTS / f"tenancy-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "timestamp": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "backends": {b: BACKENDS[b] for b in runs},
            "postgres": args.postgres if "postgres" in runs else None,
            "redis": args.redis if "postgres" in runs else None,
            "on": {"profile": args.on, "limits": PROFILES[args.on]},
            "build": limits_build(),
            "limits": HIGH,
            "budget_usd": BUDGET_USD,
            "max_slowdown": MAX_SLOWDOWN,
        },
        "summary": rows,
        "checks": checks,
        "usage": usage,
        "runs": runs,
        "notes": notes,
        "table": table,
        "elapsed_s": round(elapsed, 1),
    }
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written: {out.relative_to(gw.ROOT) if out.is_relative_to(gw.ROOT) else out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
