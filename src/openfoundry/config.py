"""Settings: the YAML file plus FOUNDRY_* environment variables, validated once at start.

This is the only module that reads the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from openfoundry.agents.egress import parse_entry

ProviderType = Literal[
    "openai",
    "xai",
    "anthropic",
    "gemini",
    "azure-ai",
    "azure-openai",
    "mistral",
    "deepseek",
    "groq",
    "openrouter",
    "openai-compatible",
    "llamacpp",
    "vllm",
    "sglang",
]

# The standard credential variable of each provider type: with no config file, a set variable
# makes that provider available and deploys its catalog models under their own names.
CREDENTIAL_ENV: dict[str, str] = {
    "xai": "XAI_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "groq": "GROQ_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    admin_key: SecretStr | None = None
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger ones get 413."""
    grpc_port: int | None = Field(None, ge=1, le=65535)
    """Port of xAI's gRPC API (plaintext, on `host`); unset: not served."""


class StorageSettings(Strict):
    database: str = "sqlite:///~/.openfoundry/foundry.db"
    redis: str | None = None
    """Shared limits across gateway processes; without it each process keeps its own."""
    redis_policy: Literal["fail-open", "fail-closed"] = "fail-open"
    """When Redis cannot be reached: serve without limits (logged and counted), or refuse with 503."""
    spool_dir: str = "~/.openfoundry/spool"
    """Where each process spools usage records before they reach the database (one subfolder per database)."""

    @field_validator("database")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError("must be a sqlite:/// path or a postgresql:// URL")
        return value


class Timeouts(Strict):
    connect: float = Field(10.0, gt=0)
    read: float = Field(600.0, gt=0)
    """Longest wait for the next byte from the upstream."""


class EngineSettings(Strict):
    """How the embedded llama.cpp engine runs one GGUF model (see engines/)."""

    model_path: str | None = None
    """A GGUF file; unset: the bundled Gemma 3 270M, assembled once into `models_dir`."""
    models_dir: str = "~/.openfoundry/models"
    n_ctx: int = Field(4096, ge=64)
    """Context window in tokens (prompt plus answer)."""
    n_threads: int | None = Field(None, ge=1)
    """CPU threads per replica; unset: llama.cpp's default."""
    n_batch: int = Field(512, ge=1)
    replicas: int = Field(1, ge=1, le=64)
    """Worker processes, each holding the model; a dead one is restarted."""
    max_concurrency: int = Field(1, ge=1, le=64)
    """Calls each replica runs at once (one llama context each)."""
    max_queue: int = Field(64, ge=0)
    """Calls that may wait for a free slot; past that, 429 with Retry-After."""
    queue_timeout: float = Field(30.0, gt=0)
    """Seconds a call may wait for a slot before it gets 429."""


class LaunchSettings(Strict):
    """A GPU inference server (vLLM, SGLang) the gateway runs as a child process (see engines/supervised.py)."""

    model: str
    """A local model directory (the machines are offline) or whatever the server accepts."""
    served_model_name: str | None = None
    """The name the server answers to; calls are renamed to it. Unset: `model`."""
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)
    """Unset: a free port picked at start."""
    tensor_parallel_size: int = Field(1, ge=1)
    extra_args: list[str] = Field(default_factory=list)
    """Appended to the command line as they are (e.g. ["--max-model-len", "32768"])."""
    command: list[str] | None = None
    """The program to run instead of `vllm serve` / `python -m sglang.launch_server` (a venv's, or a stand-in)."""
    env: dict[str, str] = Field(default_factory=dict)
    ready_timeout: float = Field(1800.0, gt=0)
    """Seconds to wait for the server to answer GET /v1/models before it is restarted."""
    stop_timeout: float = Field(30.0, gt=0)
    """Seconds between SIGTERM and SIGKILL at shutdown."""


class ProviderSettings(Strict):
    type: ProviderType
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    """Azure only: the api-version query parameter."""
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(1024, ge=1)
    engine: EngineSettings | None = None
    """llamacpp only: the model file and how the embedded engine runs it."""
    launch: LaunchSettings | None = None
    """vllm and sglang only (required there): the server the gateway starts and supervises."""

    @model_validator(mode="after")
    def _engine_only_for_engines(self) -> ProviderSettings:
        if self.engine is not None and self.type != "llamacpp":
            raise ValueError(f"engine: only for type 'llamacpp', not {self.type!r}")
        supervised = self.type in ("vllm", "sglang")
        if supervised and self.launch is None:
            raise ValueError(f"launch: required for type {self.type!r} (at least launch.model)")
        if self.launch is not None and not supervised:
            raise ValueError(f"launch: only for types 'vllm' and 'sglang', not {self.type!r}")
        return self


class BackendSettings(Strict):
    provider: str
    upstream_model: str | None = None
    priority: int = Field(1, ge=1)
    weight: float = Field(1.0, gt=0)
    price: float | None = Field(None, ge=0)
    """USD per million tokens (input + output) on this host, for the `cost` strategy; the catalog's otherwise."""


class RetrySettings(Strict):
    attempts: int = Field(3, ge=1, le=10)
    """Calls made for one request, the first included."""
    deadline: float = Field(60.0, gt=0)
    """Seconds all attempts together may take (a stream's counts until its first byte)."""
    backoff: float = Field(0.05, ge=0)
    """Base of the exponential backoff between attempts on the same backend, in seconds (full jitter)."""
    backoff_max: float = Field(2.0, ge=0)


class BreakerSettings(Strict):
    failures: int = Field(5, ge=1)
    """Consecutive failures that open the breaker."""
    rate: float = Field(0.5, gt=0, le=1)
    """Failure share of the last `window` calls that opens it."""
    window: int = Field(20, ge=1)
    cooldown: float = Field(10.0, gt=0)
    """Seconds open before a probe is let through."""
    probes: int = Field(1, ge=1)


FallbackCondition = Literal["context_length_exceeded", "content_filter", "unavailable"]
Strategy = Literal["weighted", "least-inflight", "latency", "cost"]


class LimitSettings(Strict):
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    concurrency: int | None = Field(None, ge=1)


class DeploymentSettings(Strict):
    model: str
    backends: list[BackendSettings] = Field(min_length=1)
    limits: LimitSettings | None = None
    strategy: Strategy = "weighted"
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    fallbacks: list[str] = Field(default_factory=list)
    """Deployments to try, in order, when this one fails for a reason in `fallback_on`."""
    fallback_on: list[FallbackCondition] = Field(default=["context_length_exceeded", "content_filter", "unavailable"])
    hedge_after: float | None = Field(None, gt=0)
    """Seconds after which a second backend is asked too; the first answer wins (off when unset)."""


class AgentSettings(Strict):
    tool_hosts_allowlist: list[str] = Field(default_factory=list)
    """Hosts server-side tools may reach: `host`, `host:port`, `*.domain` (its subdomains) or `*` (any
    public host). Private, loopback and link-local addresses are refused unless their host is listed
    exactly (see agents/egress.py)."""
    max_tool_calls: int = Field(32, ge=1, le=1000)
    """Server-side tool calls one response may make (a request's `max_tool_calls` can only lower it)."""
    tool_timeout: float = Field(30.0, gt=0)
    """Seconds one server-side tool call may take."""
    max_tool_output_bytes: int = Field(64 * 1024, ge=256)
    """A tool's output is cut to this many bytes before the model sees it."""
    embedding_deployment: str | None = None
    """The deployment vector stores embed with; by default the first local embedding deployment."""
    max_file_bytes: int = Field(32 * 1024 * 1024, ge=1024)

    @field_validator("tool_hosts_allowlist")
    @classmethod
    def _valid_hosts(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            parse_entry(entry)
        return entries


class Settings(Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    agents: AgentSettings = Field(default_factory=AgentSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    deployments: dict[str, DeploymentSettings] = Field(default_factory=dict)
    zero_config: bool = False
    """True when no file was given: providers come from credential variables."""

    @property
    def is_loopback(self) -> bool:
        return self.server.host in LOOPBACK_HOSTS or self.server.host.startswith("127.")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MARK = re.compile(r"__foundry_var_(\d+)__")


def parse_yaml(text: str, env: dict[str, str]) -> Any:
    """Parse YAML with ${VAR} (or ${VAR:-default}) replaced from `env`.

    Each reference becomes a plain marker before parsing, so `{api_key: ${KEY}}` is valid YAML and a
    value can never inject YAML syntax; markers are filled in afterwards. A reference that is a whole
    value and is unset (with no default) becomes null.
    """
    references: list[tuple[str, str | None]] = []

    def mark(match: re.Match[str]) -> str:
        references.append((match.group(1), match.group(2)))
        return f"__foundry_var_{len(references) - 1}__"

    return _fill(yaml.safe_load(_VAR.sub(mark, text)), references, env)


def _fill(value: Any, references: list[tuple[str, str | None]], env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, references, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, references, env) for item in value]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        name, default = references[int(match.group(1))]
        return env.get(name) or default or ""

    whole = _MARK.fullmatch(value)
    if whole:
        return lookup(whole) or None
    return _MARK.sub(lookup, value)


def _zero_config_providers(env: dict[str, str]) -> dict[str, Any]:
    providers: dict[str, Any] = {
        kind: {"type": kind, "api_key": env[var]} for kind, var in CREDENTIAL_ENV.items() if env.get(var)
    }
    providers["local"] = {"type": "llamacpp"}  # the embedded engine with the bundled model, offline
    return providers


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read the file (or FOUNDRY_CONFIG) and the environment; raise ConfigError naming the bad key."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("FOUNDRY_CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path).expanduser()
        try:
            loaded = parse_yaml(file.read_text(), env)
        except OSError as exc:
            raise ConfigError(f"config file {file}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {file}: the top level must be a mapping of sections")
        data = loaded or {}
    else:
        data = {"providers": _zero_config_providers(env), "zero_config": True}
    _overlay_environment(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(describe_errors(exc))) from exc
    _check_references(settings)
    return settings


def _overlay_environment(data: dict[str, Any], env: dict[str, str]) -> None:
    """FOUNDRY_<SECTION>__<KEY>[__<KEY>...] overrides the file; FOUNDRY_ADMIN_KEY fills server.admin_key."""
    if env.get("FOUNDRY_ADMIN_KEY"):
        server = data.setdefault("server", {})
        if isinstance(server, dict) and not server.get("admin_key"):
            server["admin_key"] = env["FOUNDRY_ADMIN_KEY"]
    for name, value in sorted(env.items()):
        if not name.startswith("FOUNDRY_") or "__" not in name:
            continue
        path = name[len("FOUNDRY_") :].lower().split("__")
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value


def describe_errors(exc: ValidationError) -> list[str]:
    """One 'dotted.key: problem' line per validation error."""
    return [
        f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}" for error in exc.errors()
    ]


def _check_references(settings: Settings) -> None:
    for name, deployment in settings.deployments.items():
        for index, backend in enumerate(deployment.backends):
            if backend.provider not in settings.providers:
                raise ConfigError(
                    f"invalid configuration:\n  deployments.{name}.backends.{index}.provider: "
                    f"no provider named {backend.provider!r} (configured: {sorted(settings.providers) or 'none'})"
                )
    if not settings.is_loopback and settings.server.admin_key is None:
        raise ConfigError(
            f"invalid configuration:\n  server.admin_key: required when server.host is {settings.server.host!r}; "
            "without a key the server only runs open on a loopback address"
        )
