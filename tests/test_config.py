"""Configuration: the YAML file, ${VAR} interpolation, FOUNDRY_* overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfoundry.config import ConfigError, load_settings
from tests.harness import run_cli

GOOD = """
server:
  port: 8181
  admin_key: ${ADMIN}
storage:
  database: sqlite:///${DATA_DIR:-/tmp}/f.db
providers:
  xai: {type: xai, api_key: ${XAI_API_KEY}}
  gpu1: {type: openai-compatible, base_url: http://127.0.0.1:8000/v1}
deployments:
  grok-4:
    model: xai/grok-4
    backends:
      - {provider: xai}
      - {provider: gpu1, upstream_model: grok-4, priority: 2}
    limits: {rpm: 600, tpm: 2000000}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "foundry.yaml"
    path.write_text(text)
    return path


def test_file_with_interpolation(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), {"ADMIN": "s3cret", "XAI_API_KEY": "xai-1"})
    assert settings.server.port == 8181
    assert settings.server.admin_key is not None and settings.server.admin_key.get_secret_value() == "s3cret"
    assert settings.storage.database == "sqlite:////tmp/f.db"
    assert settings.providers["xai"].api_key.get_secret_value() == "xai-1"  # type: ignore[union-attr]
    backends = settings.deployments["grok-4"].backends
    assert [(b.provider, b.priority) for b in backends] == [("xai", 1), ("gpu1", 2)]
    assert "s3cret" not in repr(settings)


def test_unset_variable_is_null(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), {})
    assert settings.server.admin_key is None
    assert settings.providers["xai"].api_key is None


def test_environment_overrides_every_key(tmp_path: Path) -> None:
    env = {
        "FOUNDRY_SERVER__PORT": "9000",
        "FOUNDRY_STORAGE__REDIS": "redis://127.0.0.1:6379/0",
        "FOUNDRY_PROVIDERS__GPU1__BASE_URL": "http://127.0.0.1:9999/v1",
        "FOUNDRY_PROVIDERS__GPU1__TIMEOUT__READ": "5",
    }
    settings = load_settings(write(tmp_path, GOOD), env)
    assert settings.server.port == 9000
    assert settings.storage.redis == "redis://127.0.0.1:6379/0"
    assert settings.providers["gpu1"].base_url == "http://127.0.0.1:9999/v1"
    assert settings.providers["gpu1"].timeout.read == 5.0


def test_config_path_from_environment_and_admin_key_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "server: {port: 8282}\n")
    settings = load_settings(None, {"FOUNDRY_CONFIG": str(path), "FOUNDRY_ADMIN_KEY": "k"})
    assert settings.server.port == 8282 and not settings.zero_config
    assert settings.server.admin_key is not None and settings.server.admin_key.get_secret_value() == "k"


def test_zero_config_takes_providers_from_credential_variables() -> None:
    settings = load_settings(None, {"XAI_API_KEY": "x", "ANTHROPIC_API_KEY": "a"})
    assert settings.zero_config
    assert {name: p.type for name, p in settings.providers.items()} == {
        "xai": "xai",
        "anthropic": "anthropic",
        "local": "llamacpp",  # the embedded engine with the bundled model
    }


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("server: {port: eighty}\n", {}, "server.port"),
        ("server: {port: 70000}\n", {}, "server.port"),
        ("server: {prot: 80}\n", {}, "server.prot"),
        ("storage: {database: mysql://x}\n", {}, "storage.database"),
        ("providers: {p: {type: nonsense}}\n", {}, "providers.p.type"),
        (
            "deployments: {d: {model: xai/grok-4, backends: [{provider: ghost}]}}\n",
            {},
            "deployments.d.backends.0.provider",
        ),
        ("server: {port: 80}\n", {"FOUNDRY_SERVER__PORT": "x"}, "server.port"),
        ("- just\n- a list\n", {}, "top level"),
        ("server: {port: [\n", {}, "not valid YAML"),
        ("server: {host: 0.0.0.0}\n", {}, "server.admin_key"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, text: str, env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env)
    assert names in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_settings(tmp_path / "absent.yaml", {})


def test_serve_stops_on_a_bad_file_with_the_message(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", str(write(tmp_path, "server: {port: eighty}\n")))
    assert result.returncode == 1
    assert "server.port" in result.stderr and "valid integer" in result.stderr


def test_serve_stops_on_a_deployment_the_catalog_does_not_know(tmp_path: Path) -> None:
    text = (
        "providers: {p: {type: openai, api_key: k}}\ndeployments: {d: {model: acme/none, backends: [{provider: p}]}}\n"
    )
    result = run_cli("serve", "--config", str(write(tmp_path, text)))
    assert result.returncode == 1
    assert "deployments.d" in result.stderr and "not in the catalog" in result.stderr
