"""With no key configured the server runs open on loopback, and refuses names a rebinding DNS could use."""

from __future__ import annotations

import urllib.request

import pytest

from tests.harness import Server, run_cli


@pytest.fixture(scope="module")
def open_server() -> Server:
    server = Server({}).start()
    yield server  # type: ignore[misc]
    server.stop()


def get(server: Server, headers: dict[str, str]) -> int:
    request = urllib.request.Request(server.url + "/admin/deployments", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_loopback_callers_need_no_key(open_server: Server) -> None:
    assert get(open_server, {}) == 200
    assert get(open_server, {"Host": f"localhost:{open_server.port}"}) == 200
    assert get(open_server, {"Origin": f"http://localhost:{open_server.port}"}) == 200


def test_other_host_names_and_origins_are_refused(open_server: Server) -> None:
    assert get(open_server, {"Host": "attacker.example:8080"}) == 403
    assert get(open_server, {"Origin": "http://attacker.example"}) == 403


def test_no_key_off_loopback_refuses_to_start() -> None:
    result = run_cli(
        "serve", "--host", "0.0.0.0", "--port", "18999", env={"FOUNDRY_STORAGE__DATABASE": "sqlite:////tmp/x.db"}
    )
    assert result.returncode == 1
    assert "server.admin_key" in result.stderr and "required" in result.stderr
