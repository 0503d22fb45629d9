"""What a gateway process loads at start: SDKs that only some deployments use wait until they are used,
so every process stays inside the memory budget (BLUEPRINT: idle RSS ≤ 150 MB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OPTIONAL = ("mcp", "grpc", "xai_sdk")
"""The MCP SDK (first `mcp` tool) and gRPC with xai-sdk (server.grpc_port): ~40 MB together."""

LOADED = (
    "import sys\n"
    "from openfoundry.app import create_app\n"
    "from openfoundry.config import load_settings\n"
    "create_app(load_settings())\n"
    f"print(' '.join(name for name in {OPTIONAL!r} if name in sys.modules))\n"
)


def loaded_at_start(tmp_path: Path, **settings: str) -> set[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FOUNDRY_")}
    env["FOUNDRY_STORAGE__DATABASE"] = f"sqlite:///{tmp_path}/foundry.db"
    env["FOUNDRY_STORAGE__SPOOL_DIR"] = str(tmp_path / "spool")
    env |= settings
    done = subprocess.run([sys.executable, "-c", LOADED], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_optional_sdks_wait_until_used(tmp_path: Path) -> None:
    assert loaded_at_start(tmp_path) == set()
    assert loaded_at_start(tmp_path, FOUNDRY_SERVER__GRPC_PORT="50999") == {"grpc", "xai_sdk"}
