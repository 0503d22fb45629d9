"""The gateway benchmark (`make bench`): added latency and requests/s of Openfoundry vs. the upstream alone.

It starts, all on 127.0.0.1 and each in its own process:
- the fake upstream (bench/upstream.py), no artificial delay;
- Openfoundry (`foundry serve`) from a temp config: one `openai-compatible` provider pointing at the
  upstream, one deployment, an admin key, SQLite in a temp dir;
- a bare aiohttp pass-through proxy (bench/clients.py), the reference the requests/s budget is half of;
- with --litellm, LiteLLM's proxy (`litellm --config ... --num_workers 1`) from bench/.litellm-venv.
Then for each scenario (non-streaming and streaming, concurrency 1 and 64) it drives each target with
bench/load.py (a fresh process, keep-alive connections, its own warm-up) for --rounds rounds, the
targets interleaved so that drift on this shared machine hits them alike, and reports per-round
medians: added latency = through the gateway minus the upstream alone (paired per round).
It also reads the idle gateway's RSS (/proc/PID/status VmRSS) right after start and after the load.

It prints a Markdown table and writes bench/results/gateway-<timestamp>.json (every round's numbers).

Usage: .venv/bin/python bench/gateway.py [--duration S] [--rounds N] [--quick] [--litellm] [--pin]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LITELLM_VENV = BENCH / ".litellm-venv"
ADMIN_KEY = "bench-admin-key"
LITELLM_KEY = "sk-bench-master"
MODEL = "bench"

# BLUEPRINT §6 budgets.
ADDED_P50_MS = 0.5
ADDED_TTFT_MS = 1.0
MIN_RPS_64 = 3000
MAX_IDLE_RSS_MB = 150


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def rss_kb(pid: int) -> int:
    """VmRSS of `pid` plus its descendants (LiteLLM serves from a child process), in kB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(current, []))
    return total


@dataclass
class Service:
    """A started process and where to send chat completions to it."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    key: str | None = None
    logfile: Path | None = None
    rss_idle_kb: int = 0
    rss_after_kb: int = 0
    model: str = MODEL
    """The `model` its requests name (bench/tenancy.py drives two deployments of one gateway)."""

    def wait_ready(self, health: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}{self._log_tail()}")
            try:
                with urllib.request.urlopen(health, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready after {timeout:g} s{self._log_tail()}")

    def _log_tail(self) -> str:
        if self.logfile is None or not self.logfile.exists():
            return ""
        return ":\n" + "\n".join(self.logfile.read_text(errors="replace").splitlines()[-25:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        try:  # each service runs in its own session: end the group we started, by its id
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Bench:
    tmp: Path
    pin: bool
    services: list[Service] = field(default_factory=list)

    def spawn(
        self, name: str, command: list[str], env: dict[str, str], cpu: int | None, cwd: Path | None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        logfile = self.tmp / f"{name}.log"
        with logfile.open("ab") as out:
            process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
            )
        if self.pin and cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        return process, logfile

    def start(self, name: str, command: list[str], url: str, health: str, *, key: str | None = None,
              env: dict[str, str] | None = None, cpu: int | None = None, timeout: float = 60,
              cwd: Path | None = None) -> Service:  # fmt: skip
        process, logfile = self.spawn(name, command, env or child_env(), cpu, cwd)
        service = Service(name, process, url, key, logfile)
        self.services.append(service)
        service.wait_ready(health, timeout)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()


# ---- the services -----------------------------------------------------------------------------------------


def start_upstream(bench: Bench, impl: str) -> Service:
    port = free_port()
    command = [sys.executable, str(BENCH / "upstream.py"), "--port", str(port), "--impl", impl]
    base = f"http://127.0.0.1:{port}"
    return bench.start("upstream", command, base + "/v1/chat/completions", base + "/health", cpu=1)


def start_openfoundry(bench: Bench, upstream: Service, *, name: str = "openfoundry",
                      storage: dict[str, Any] | None = None,
                      deployments: dict[str, dict[str, Any]] | None = None) -> Service:  # fmt: skip
    """`foundry serve` with deployment `bench` (plus `deployments`, e.g. with limits) at the upstream;
    `storage` defaults to SQLite in the temp dir. The spool always goes to the temp dir."""
    port = free_port()

    def spec(deployment: str) -> dict[str, Any]:
        """Upstream model = deployment name, so every deployment relays the client's body as it came."""
        backend = {"provider": "upstream", "upstream_model": deployment}
        return {"model": "openai/gpt-4.1-mini", "backends": [backend]}

    config = {
        "server": {"host": "127.0.0.1", "port": port, "admin_key": ADMIN_KEY},
        "storage": (storage or {"database": f"sqlite:///{bench.tmp}/{name}.db"})
        | {"spool_dir": str(bench.tmp / f"{name}-spool")},
        "providers": {"upstream": {"type": "openai-compatible", "base_url": upstream.url.rsplit("/", 2)[0]}},
        "deployments": {MODEL: spec(MODEL)} | {key: spec(key) | extra for key, extra in (deployments or {}).items()},
    }
    path = bench.tmp / f"{name}.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    script = Path(sys.executable).parent / "foundry"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "openfoundry"]
    base = f"http://127.0.0.1:{port}"
    return bench.start(
        name, [*command, "serve", "--config", str(path)], base + "/v1/chat/completions",
        base + "/healthz", key=ADMIN_KEY, cpu=0,
    )  # fmt: skip


def start_bare_proxy(bench: Bench, upstream: Service) -> Service:
    port = free_port()
    command = [sys.executable, str(BENCH / "clients.py"), "serve", "--client", "aiohttp", "--port", str(port)]
    command += ["--upstream", upstream.url.rsplit("/", 2)[0]]
    base = f"http://127.0.0.1:{port}"
    return bench.start("bare-proxy", command, base + "/v1/chat/completions", base + "/health", cpu=0)


def litellm_ready() -> str | None:
    """None when bench/.litellm-venv has LiteLLM's proxy, else why not (after trying bench/litellm.sh)."""
    if (LITELLM_VENV / "bin" / "litellm").exists():
        return None
    log("setting up bench/.litellm-venv with bench/litellm.sh (pip install 'litellm[proxy]') ...")
    try:
        done = subprocess.run(
            ["bash", str(BENCH / "litellm.sh")], capture_output=True, text=True, timeout=900, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return "bench/litellm.sh did not finish in 15 minutes"
    if done.returncode != 0 or not (LITELLM_VENV / "bin" / "litellm").exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        return f"bench/litellm.sh failed (exit {done.returncode}): {tail}"
    return None


def start_litellm(bench: Bench, upstream: Service) -> Service:
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": upstream.url.rsplit("/", 2)[0],
                    "api_key": "sk-upstream",
                },
            }
        ],
        "general_settings": {"master_key": LITELLM_KEY},
        "litellm_settings": {"telemetry": False},
    }
    path = bench.tmp / "litellm.yaml"
    path.write_text(json.dumps(config, indent=2))
    env = child_env(
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch of the remote price map
        LITELLM_TELEMETRY="False",
        DISABLE_SCHEMA_UPDATE="True",
        LITELLM_DONT_SHOW_FEEDBACK_BOX="True",
    )
    home = bench.tmp / "litellm-home"
    home.mkdir(exist_ok=True)
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(path), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    base = f"http://127.0.0.1:{port}"
    return bench.start(
        "litellm", command, base + "/v1/chat/completions", base + "/health/liveliness", key=LITELLM_KEY,
        env=env, cpu=0, timeout=180, cwd=home,
    )  # fmt: skip


# ---- measuring --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    concurrency: int

    @property
    def key(self) -> str:
        return f"{'streaming' if self.stream else 'non-streaming'}-c{self.concurrency}"


SCENARIOS = [Scenario("non-streaming", False, 1), Scenario("non-streaming", False, 64),
             Scenario("streaming", True, 1), Scenario("streaming", True, 64)]  # fmt: skip


def load(service: Service, scenario: Scenario, duration: float, warmup: float, pin: bool) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "load.py"), "--url", service.url, "-c", str(scenario.concurrency)]
    command += ["--duration", str(duration), "--warmup", str(warmup), "--model", service.model]
    if scenario.stream:
        command.append("--stream")
    if service.key:
        command += ["--key", service.key]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    if pin:
        os.sched_setaffinity(process.pid, {1})
    try:
        out, err = process.communicate(timeout=duration + warmup + 120)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"load.py failed against {service.name}: {err.decode(errors='replace')[-2000:]}")
    return dict(json.loads(out))


def metric(result: dict[str, Any], name: str) -> float | None:
    """'rps', 'p50', 'p99' (latency) or 'ttft_p50', 'ttft_p99' from one load.py result."""
    if name == "rps":
        return float(result["rps"])
    if name.startswith("ttft_"):
        block = result.get("ttft_ms")
        return None if not block else float(block[name[5:]])
    block = result.get("latency_ms")
    return None if not block else float(block[name])


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def paired_added(gateway: list[dict[str, Any]], base: list[dict[str, Any]], name: str) -> float | None:
    """Median over rounds of (gateway - upstream alone) for one metric."""
    diffs: list[float | None] = []
    for mine, theirs in zip(gateway, base, strict=True):
        a, b = metric(mine, name), metric(theirs, name)
        diffs.append(None if a is None or b is None else a - b)
    return median(diffs)


# ---- report -----------------------------------------------------------------------------------------------


def ms(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "—"
    text = f"{value:+.3f}" if sign else f"{value:.3f}"
    return text + " ms"


def rps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("pass" if ok else "**FAIL**")


def build_rows(runs: dict[str, dict[str, list[dict[str, Any]]]], rss: dict[str, dict[str, int]],
               targets: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """One row per reported number: values per target, added (ms) or ratio per target, budget, verdict."""
    rows: list[dict[str, Any]] = []

    def row(scenario: str, what: str, name: str, kind: str, budget: str = "—", limit: float | None = None) -> None:
        runs_of = runs[scenario]
        base = runs_of["upstream"]
        values = {t: median([metric(r, name) for r in runs_of[t]]) for t in ["upstream", *targets] if t in runs_of}
        added: dict[str, float | None] = {}
        for target in targets:
            if target not in runs_of:
                continue
            if kind == "added":
                added[target] = paired_added(runs_of[target], base, name)
            else:
                up, value = values["upstream"], values[target]
                added[target] = None if not up or value is None else value / up
        ok: bool | None = None
        mine = added.get("openfoundry") if kind == "added" else values.get("openfoundry")
        if limit is not None and mine is not None:
            ok = mine <= limit if kind == "added" else mine >= limit
        errors = {t: sum(r["errors"] for r in runs_of[t]) for t in values}
        errors = {t: n for t, n in errors.items() if n}
        if errors.get("openfoundry"):
            ok = False
        rows.append({"scenario": scenario, "metric": what, "kind": kind, "values": values, "added": added,
                     "budget": budget, "pass": ok, "errors": errors})  # fmt: skip

    row("non-streaming-c1", "latency p50", "p50", "added", f"added ≤ {ADDED_P50_MS} ms", ADDED_P50_MS)
    row("non-streaming-c1", "latency p99", "p99", "added")
    row("non-streaming-c64", "requests/s", "rps", "ratio", f"≥ {MIN_RPS_64:,}/s", MIN_RPS_64)
    row("non-streaming-c64", "latency p50", "p50", "added")
    row("non-streaming-c64", "latency p99", "p99", "added")
    row("streaming-c1", "TTFT p50", "ttft_p50", "added", f"added ≤ {ADDED_TTFT_MS} ms", ADDED_TTFT_MS)
    row("streaming-c1", "TTFT p99", "ttft_p99", "added")
    row("streaming-c1", "total p50", "p50", "added")
    row("streaming-c64", "requests/s", "rps", "ratio")
    row("streaming-c64", "TTFT p50", "ttft_p50", "added")
    row("streaming-c64", "TTFT p99", "ttft_p99", "added")
    if rss:
        mb = {name: max(memory.values()) / 1024 for name, memory in rss.items()}
        ours = mb.get("openfoundry")
        rows.append(
            {"scenario": "idle process", "metric": "RSS (max of after start, after load)", "kind": "rss",
             "values": mb, "rss_kb": rss, "budget": f"≤ {MAX_IDLE_RSS_MB} MB",
             "pass": None if ours is None else ours <= MAX_IDLE_RSS_MB, "errors": {}}
        )  # fmt: skip
    return rows


def ratio(value: float) -> str:
    return f"{value:.2g}x" if value < 0.1 else f"{value:.2f}x"


def render(rows: list[dict[str, Any]], others: list[str], bare: dict[str, float | None]) -> str:
    """The Markdown table: Openfoundry's columns, then each other target's (LiteLLM) side by side."""
    head = ["scenario", "metric", "upstream alone", "Openfoundry", "added / ratio", "target", "result"]
    for other in others:
        label = "LiteLLM" if other == "litellm" else other
        head += [label, f"{label} added / ratio"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]

    def cells(row: dict[str, Any], target: str) -> list[str]:
        value = row["values"].get(target)
        if value is None:
            return ["—", "—"]
        if row["kind"] == "rss":
            memory = row["rss_kb"][target]
            detail = ", ".join(f"{kb / 1024:.0f} MB {when.replace('_', ' ')}" for when, kb in memory.items())
            return [f"{value:.0f} MB", detail]
        added = row["added"].get(target)
        if row["kind"] == "added":
            return [ms(value), ms(added, sign=True)]
        text = "—" if added is None else f"{ratio(added)} upstream"
        bare_rps = bare.get(row["scenario"])
        if target == "openfoundry" and bare_rps:
            text += f", {ratio(value / bare_rps)} bare proxy ({rps(bare_rps)})"
        ours = row["values"].get("openfoundry")
        if target != "openfoundry" and ours:
            text += f", {ratio(value / ours)} Openfoundry"
        return [rps(value), text]

    for row in rows:
        upstream = row["values"].get("upstream")
        base = "—" if row["kind"] == "rss" else ms(upstream) if row["kind"] == "added" else rps(upstream)
        result = verdict(row["pass"])
        if row["errors"]:
            result += " (failed requests: " + ", ".join(f"{t} {n}" for t, n in row["errors"].items()) + ")"
        line = [row["scenario"], row["metric"], base, *cells(row, "openfoundry"), row["budget"], result]
        for other in others:
            line += cells(row, other)
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="one round of 1 s runs: a smoke test")
    parser.add_argument("--litellm", action="store_true", help="also measure LiteLLM's proxy (bench/.litellm-venv)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare aiohttp pass-through reference")
    parser.add_argument("--pin", action="store_true", help="pin servers to CPU 0, upstream and load to CPU 1")
    parser.add_argument("--upstream-impl", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/gateway-TS.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 1.0, 0.3, 1
    if args.pin and (os.cpu_count() or 1) < 2:
        parser.error("--pin needs two CPUs")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="foundry-bench-"))
    bench = Bench(tmp, args.pin)
    notes: list[str] = []
    targets = ["openfoundry"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s.key: {} for s in SCENARIOS}
    rss: dict[str, dict[str, int]] = {}
    litellm_problem: str | None = None
    load_before = os.getloadavg()
    try:
        upstream = start_upstream(bench, args.upstream_impl)
        gateway = start_openfoundry(bench, upstream)
        services = {"upstream": upstream, "openfoundry": gateway}
        if not args.no_bare:
            services["bare-proxy"] = start_bare_proxy(bench, upstream)
            targets.append("bare-proxy")
        if args.litellm:
            litellm_problem = litellm_ready()
            if litellm_problem is None:
                try:
                    services["litellm"] = start_litellm(bench, upstream)
                    targets.append("litellm")
                except RuntimeError as exc:
                    litellm_problem = f"LiteLLM did not start: {exc}"
            if litellm_problem:
                notes.append(f"LiteLLM not measured: {litellm_problem}")
                log(notes[-1])
        time.sleep(1.0)
        for name in ("openfoundry", "litellm"):
            if name in services:
                rss[name] = {"after_start": rss_kb(services[name].process.pid)}
        log(f"warming up {', '.join(services)} ...")
        for name, service in services.items():
            for stream in (False, True):
                load(service, Scenario("warm-up", stream, 16), 1.0 if name != "upstream" else 0.3, 0.0, args.pin)
        total = args.rounds * sum(
            1 + sum(1 for t in targets if t != "bare-proxy" or s.concurrency > 1) for s in SCENARIOS
        )
        done = 0
        for round_index in range(args.rounds):
            for scenario in SCENARIOS:
                order = ["upstream", *targets]
                shift = round_index % len(order)
                for name in order[shift:] + order[:shift]:
                    if name == "bare-proxy" and scenario.concurrency == 1:
                        continue
                    done += 1
                    log(f"[{done}/{total}] round {round_index + 1}: {scenario.key} -> {name}")
                    result = load(services[name], scenario, args.duration, args.warmup, args.pin)
                    runs[scenario.key].setdefault(name, []).append(result)
        time.sleep(1.0)
        for name in rss:
            rss[name]["after_load"] = rss_kb(services[name].process.pid)
        for service in bench.services:
            if service.process.poll() is not None:
                notes.append(f"{service.name} exited early with {service.process.returncode}")
    finally:
        bench.stop_all()
    load_after = os.getloadavg()
    shown = [t for t in targets if t not in ("openfoundry", "bare-proxy")]
    rows = build_rows(runs, rss, targets)
    bare = {
        key: median([metric(r, "rps") for r in runs[key].get("bare-proxy", [])]) for key in runs if key.endswith("c64")
    }
    table = render(rows, shown, bare)
    elapsed = time.time() - started
    header = (
        f"Openfoundry gateway benchmark — {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}, "
        f"{os.cpu_count()} CPUs, "
        f"{args.rounds} round(s) x {args.duration:g} s per run (+{args.warmup:g} s warm-up), medians of rounds; "
        f"load average {load_before[0]:.2f} → {load_after[0]:.2f}; {elapsed:.0f} s in all"
        + ("; pinned: servers on CPU 0, upstream + load on CPU 1" if args.pin else "")
    )
    print(f"\n{header}\n\n{table}\n")
    for note in notes:
        print(f"- {note}")
    print(
        "- added = through the target minus the upstream alone (paired per round, median); TTFT = time to the "
        "first SSE chunk with non-empty content; ratio = target / upstream alone; bare proxy = minimal Starlette + "
        "aiohttp pass-through (bench/clients.py)."
    )
    out = args.out or RESULTS / f"gateway-{stamp}.json"
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
            "pinned": args.pin,
            "upstream_impl": args.upstream_impl,
            "targets": ["upstream", *targets],
        },
        "budgets": {
            "added_p50_ms": ADDED_P50_MS,
            "added_ttft_ms": ADDED_TTFT_MS,
            "min_rps_64": MIN_RPS_64,
            "max_idle_rss_mb": MAX_IDLE_RSS_MB,
        },
        "summary": rows,
        "bare_proxy_rps": bare,
        "rss_kb": rss,
        "runs": runs,
        "notes": notes,
        "table": table,
        "elapsed_s": round(elapsed, 1),
    }
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
