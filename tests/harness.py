"""Run `foundry serve` as a real child process for tests, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ADMIN_KEY = "admin-test-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A gateway process started from a config mapping; `restart()` keeps its database."""

    def __init__(self, config: dict[str, Any], env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="foundry-test-"))
        self.port = free_port()
        config = {**config, "server": {"port": self.port, **config.get("server", {})}}
        config["storage"] = {"database": f"sqlite:///{self.dir}/foundry.db", **config.get("storage", {})}
        self.config_path = self.dir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "openfoundry", "serve", "--config", str(self.config_path), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> Server:
        self.stop()
        return self.start()


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_")}
    full_env.update(env or {})
    full_env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "openfoundry", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )
