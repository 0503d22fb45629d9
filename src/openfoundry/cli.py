"""The `foundry` command line."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from openfoundry import __version__

cli = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Openfoundry: an open, self-hosted AI model platform."
)
catalog_cli = typer.Typer(no_args_is_help=True, help="Browse the model catalog.")
deployments_cli = typer.Typer(no_args_is_help=True, help="Manage deployments on a running server.")
cli.add_typer(catalog_cli, name="catalog")
cli.add_typer(deployments_cli, name="deployments")
projects_cli = typer.Typer(no_args_is_help=True, help="Manage projects on a running server.")
keys_cli = typer.Typer(no_args_is_help=True, help="Manage project API keys on a running server.")
cli.add_typer(projects_cli, name="projects")
cli.add_typer(keys_cli, name="keys")
console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (or FOUNDRY_CONFIG).")]
UrlOption = Annotated[str, typer.Option("--url", envvar="FOUNDRY_URL", help="Server URL.")]
AdminKeyOption = Annotated[str | None, typer.Option("--admin-key", envvar="FOUNDRY_ADMIN_KEY", help="Admin key.")]
DEFAULT_URL = "http://127.0.0.1:8080"


def fail(message: str) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


@cli.command()
def version() -> None:
    """Print the version."""
    console.print(f"openfoundry {__version__}")


@cli.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Gateway processes sharing the port.")] = 1,
) -> None:
    """Run the gateway."""
    import uvicorn

    from openfoundry.app import create_app
    from openfoundry.catalog import CatalogError
    from openfoundry.config import ConfigError, load_settings

    if config is not None:
        os.environ["FOUNDRY_CONFIG"] = config
    if host is not None:
        os.environ["FOUNDRY_SERVER__HOST"] = host
    if port is not None:
        os.environ["FOUNDRY_SERVER__PORT"] = str(port)
    try:
        settings = load_settings()
        app = create_app(settings)
    except (ConfigError, CatalogError) as exc:
        fail(str(exc))
        return
    if settings.server.admin_key is None:
        console.print("[yellow]no admin key set: running open on loopback (set FOUNDRY_ADMIN_KEY to require keys)")
    uvicorn.run(
        app if workers == 1 else "openfoundry.app:app_from_environment",
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


@catalog_cli.command("list")
def catalog_list(publisher: Annotated[str | None, typer.Option(help="Only this publisher.")] = None) -> None:
    """List the models in the catalog."""
    from openfoundry.catalog import Catalog

    table = Table("id", "name", "kind", "context", "in $/M", "out $/M", "hosts")
    for card in Catalog.load():
        if publisher and card.publisher != publisher:
            continue
        table.add_row(
            card.id,
            card.name,
            card.kind,
            f"{card.context_window:,}",
            _price(card.pricing.input),
            _price(card.pricing.output),
            ", ".join(card.hosts),
        )
    console.print(table)


@catalog_cli.command("show")
def catalog_show(model_id: str) -> None:
    """Show one model card."""
    import yaml

    from openfoundry.catalog import Catalog

    card = Catalog.load().get(model_id)
    if card is None:
        fail(f"{model_id!r} is not in the catalog (try `foundry catalog list`)")
        return
    console.print(
        yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False), highlight=False, markup=False, soft_wrap=True
    )
    supervised: tuple[Literal["vllm", "sglang"], ...] = ("vllm", "sglang")
    engines = [engine for engine in supervised if engine in card.recipes]
    if engines:
        # The recipes as config, to copy: nothing is started from the card itself.
        providers = {engine: {"type": engine, "launch": card.launch_block(engine)} for engine in engines}
        console.print(
            "# a recipe as a provider (point launch.model at your local copy of the weights):\n"
            + yaml.safe_dump({"providers": providers}, sort_keys=False, default_flow_style=None, width=120),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _admin(method: str, url: str, path: str, admin_key: str | None, body: Any = None) -> Any:
    """Call the admin API of a running server; an error answer ends the command with its message."""
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if admin_key:
        headers["Authorization"] = f"Bearer {admin_key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        fail(f"{exc.code}: {message}")
    except OSError as exc:
        fail(f"cannot reach {url}: {exc}")


@deployments_cli.command("list")
def deployments_list(url: UrlOption = DEFAULT_URL, admin_key: AdminKeyOption = None) -> None:
    """List deployments."""
    table = Table("name", "model", "backends", "source")
    for item in _admin("GET", url, "/admin/deployments", admin_key)["data"]:
        backends = ", ".join(f"{b['provider']}:{b['upstream_model']} (p{b['priority']})" for b in item["backends"])
        table.add_row(item["name"], item["model"], backends, item["source"])
    console.print(table)


@deployments_cli.command("create")
def deployments_create(
    name: str,
    model: Annotated[str, typer.Option(help="Catalog id, e.g. xai/grok-4.")],
    provider: Annotated[list[str], typer.Option(help="Backend as PROVIDER[:UPSTREAM_MODEL]; repeat for more.")],
    url: UrlOption = DEFAULT_URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Create a deployment on a running server."""
    backends = []
    for priority, item in enumerate(provider, start=1):
        name_part, _, upstream = item.partition(":")
        backends.append(
            {"provider": name_part, "priority": priority, **({"upstream_model": upstream} if upstream else {})}
        )
    created = _admin("POST", url, "/admin/deployments", admin_key, {"name": name, "model": model, "backends": backends})
    console.print(f"created deployment [bold]{created['name']}[/bold] -> {created['model']}")


@deployments_cli.command("delete")
def deployments_delete(name: str, url: UrlOption = DEFAULT_URL, admin_key: AdminKeyOption = None) -> None:
    """Delete a deployment created through the API."""
    _admin("DELETE", url, f"/admin/deployments/{name}", admin_key)
    console.print(f"deleted deployment [bold]{name}[/bold]")


@projects_cli.command("create")
def projects_create(
    name: str,
    budget_usd: Annotated[float | None, typer.Option(help="Spending limit in USD.")] = None,
    budget_period: Annotated[str | None, typer.Option(help="day or month.")] = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Create a project."""
    body = {"name": name, "budget_usd": budget_usd, "budget_period": budget_period}
    created = _admin("POST", url, "/admin/projects", admin_key, {k: v for k, v in body.items() if v is not None})
    console.print(f"created project [bold]{created['name']}[/bold]")


@projects_cli.command("list")
def projects_list(url: UrlOption = DEFAULT_URL, admin_key: AdminKeyOption = None) -> None:
    """List projects."""
    table = Table("name", "budget (USD)", "period", "created")
    for item in _admin("GET", url, "/admin/projects", admin_key)["data"]:
        table.add_row(item["name"], _price(item["budget_usd"]), item["budget_period"] or "-", item["created_at"])
    console.print(table)


@keys_cli.command("create")
def keys_create(
    project: str,
    name: str,
    deployment: Annotated[list[str] | None, typer.Option(help="Allow only this deployment; repeat for more.")] = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Create an API key for a project; the key is printed once and never again."""
    body: dict[str, Any] = {"project": project, "name": name}
    if deployment:
        body["deployments"] = deployment
    created = _admin("POST", url, "/admin/keys", admin_key, body)
    errors.print(f"created key {created['id']} for project {project}; store it now, it is not shown again:")
    console.print(created["key"], highlight=False)


@keys_cli.command("list")
def keys_list(
    project: Annotated[str | None, typer.Option(help="Only this project's keys.")] = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """List API keys (never their secrets)."""
    path = "/admin/keys" + (f"?project={project}" if project else "")
    table = Table("id", "project", "name", "prefix", "deployments", "expires", "revoked")
    for item in _admin("GET", url, path, admin_key)["data"]:
        allowed = ", ".join(item["deployments"]) if item["deployments"] is not None else "all"
        table.add_row(
            item["id"],
            item["project"],
            item["name"],
            item["prefix"] + "…",
            allowed,
            item["expires_at"] or "-",
            item["revoked_at"] or "-",
        )
    console.print(table)


@keys_cli.command("revoke")
def keys_revoke(key_id: str, url: UrlOption = DEFAULT_URL, admin_key: AdminKeyOption = None) -> None:
    """Revoke an API key: it stops working at once."""
    _admin("DELETE", url, f"/admin/keys/{key_id}", admin_key)
    console.print(f"revoked key [bold]{key_id}[/bold]")


@cli.command()
def usage(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    key: Annotated[str | None, typer.Option(help="Only this API key id.")] = None,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment.")] = None,
    since: Annotated[str | None, typer.Option(help="From: ISO-8601, epoch seconds, or an age: 30m, 24h, 7d.")] = None,
    until: Annotated[str | None, typer.Option(help="Until (exclusive), in the same forms.")] = None,
    group_by: Annotated[
        list[str] | None, typer.Option("--group-by", help="project, key, deployment or day; repeat for more.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Show usage and cost: one total, or one row per group."""
    import urllib.parse

    query = {"project": project, "key": key, "deployment": deployment, "since": _when(since), "until": _when(until)}
    params = [(k, v) for k, v in query.items() if v is not None] + [("group_by", g) for g in group_by or ()]
    rows = _admin("GET", url, "/admin/usage?" + urllib.parse.urlencode(params), admin_key)["data"]
    asked = {name.strip() for value in group_by or () for name in value.split(",")}
    labels = {"project": "project", "key": "key_id", "deployment": "deployment", "day": "day"}
    groups = [label for name, label in labels.items() if name in asked]
    table = Table(*groups)
    for title in ("requests", "prompt", "completion", "cached", "reasoning", "cost (USD)", "errors"):
        table.add_column(title, justify="right")
    counted = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    for row in rows:
        counts = [f"{row[name]:,}" for name in counted]
        table.add_row(*(row[name] or "-" for name in groups), *counts, f"{row['cost_usd']:.6f}", f"{row['errors']:,}")
    console.print(table)


def _when(value: str | None) -> str | None:
    """An age like 30m, 24h or 7d as epoch seconds; anything else goes to the server as it is."""
    import time

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if value and value[-1] in units and value[:-1].isdigit():
        return str(time.time() - int(value[:-1]) * units[value[-1]])
    return value


@cli.command()
def chat(
    deployment: str,
    url: UrlOption = DEFAULT_URL,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="FOUNDRY_API_KEY", help="Key to call with.")
    ] = None,
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
) -> None:
    """Chat with a deployment, streaming the answers (an empty line or Ctrl-D ends)."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    while True:
        try:
            line = console.input("[bold cyan]you>[/bold cyan] ")
        except EOFError:
            break
        if not line.strip():
            break
        messages.append({"role": "user", "content": line})
        answer = _stream_chat(url, api_key, {"model": deployment, "messages": messages, "stream": True})
        messages.append({"role": "assistant", "content": answer})


def _stream_chat(url: str, api_key: str | None, body: dict[str, Any]) -> str:
    """Send one streamed chat request and print the deltas as they come; returns the whole text."""
    import json
    import urllib.error
    import urllib.request

    from openfoundry.wire import sse

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key or 'none'}"}
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/chat/completions", data=json.dumps(body).encode(), headers=headers
    )
    decoder = sse.Decoder()
    parts: list[str] = []
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            for raw in response:
                for event in decoder.feed(raw):
                    if event.data == b"[DONE]":
                        continue
                    chunk = json.loads(event.data)
                    if "error" in chunk:
                        fail(chunk["error"]["message"])
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        parts.append(text)
                        console.print(text, end="", highlight=False, markup=False)
    except urllib.error.HTTPError as exc:
        fail(f"{exc.code}: {json.loads(exc.read())['error']['message']}")
    except OSError as exc:
        fail(f"cannot reach {url}: {exc}")
    console.print()
    return "".join(parts)


def main() -> None:
    cli()
