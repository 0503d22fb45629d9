"""The catalog: every card loads and is consistent; the CLI and zero-config use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfoundry.catalog import Catalog, CatalogError
from openfoundry.config import CREDENTIAL_ENV, ProviderSettings
from openfoundry.deployments import zero_config_deployments
from tests.harness import run_cli

REQUIRED = [
    "xai/grok-4",
    "xai/grok-4-fast-reasoning",
    "xai/grok-4-fast-non-reasoning",
    "xai/grok-code-fast-1",
    "xai/grok-3",
    "xai/grok-3-mini",
    "xai/grok-2-vision",
    "xai/grok-2-image",
    "openai/gpt-4.1-mini",
    "anthropic/claude-sonnet-4-5",
    "google/gemini-2.5-flash",
    "google/gemma-3-270m",
]
PUBLISHERS = {"xai", "openai", "anthropic", "google", "mistral", "deepseek", "meta", "microsoft"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_required_models_and_publishers(catalog: Catalog) -> None:
    ids = {card.id for card in catalog}
    assert set(REQUIRED) <= ids
    assert {card.publisher for card in catalog} == PUBLISHERS


def test_cards_are_consistent(catalog: Catalog) -> None:
    for card in catalog:
        assert card.hosts, f"{card.id} lists no host"
        if card.max_output_tokens is not None and card.kind == "chat":
            assert card.max_output_tokens <= max(card.context_window, 128_000), card.id
        if card.capabilities.reasoning_effort:
            assert card.capabilities.reasoning, card.id
        if card.capabilities.vision:
            assert "image" in card.modalities.input, card.id
        if card.kind == "embeddings":
            assert card.capabilities.embeddings, card.id


def test_xai_facts(catalog: Catalog) -> None:
    grok_mini = catalog.get("xai/grok-3-mini")
    assert grok_mini is not None and set(grok_mini.capabilities.reasoning_effort) == {"low", "high"}
    grok_4 = catalog.get("xai/grok-4")
    assert grok_4 is not None and grok_4.capabilities.reasoning_effort == ()
    assert catalog.get("xai/grok-2-image").kind == "image"  # type: ignore[union-attr]
    gemma = catalog.get("google/gemma-3-270m")
    assert gemma is not None and gemma.hosts == {"llamacpp": "gemma-3-270m"} and gemma.pricing.input == 0


def test_a_bad_card_names_its_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text("publisher: acme\nmodels:\n  - {id: acme/x, name: X}\n")
    with pytest.raises(CatalogError, match=r"acme.yaml: models\[0\].*description"):
        Catalog.load(tmp_path)
    (tmp_path / "acme.yaml").write_text("publisher: other\nmodels: []\n")
    with pytest.raises(CatalogError, match="publisher must be 'acme'"):
        Catalog.load(tmp_path)


def test_zero_config_deploys_what_a_credential_unlocks(catalog: Catalog) -> None:
    providers = {"xai": ProviderSettings(type="xai")}
    deployed = {d.name: d for d in zero_config_deployments(catalog, providers)}
    assert (
        "grok-4" in deployed and deployed["grok-4"].backends[0].upstream_model == catalog.get("xai/grok-4").hosts["xai"]
    )  # type: ignore[union-attr]
    assert all(d.card.publisher == "xai" for d in deployed.values())
    assert set(CREDENTIAL_ENV) >= {"xai", "openai", "anthropic", "gemini"}


def test_cli_lists_and_shows(catalog: Catalog) -> None:
    listed = run_cli("catalog", "list", "--publisher", "xai")
    assert listed.returncode == 0 and "xai/grok-4" in listed.stdout and "openai/" not in listed.stdout
    shown = run_cli("catalog", "show", "anthropic/claude-sonnet-4-5")
    assert shown.returncode == 0 and "context_window: 200000" in shown.stdout
    missing = run_cli("catalog", "show", "acme/none")
    assert missing.returncode == 1 and "not in the catalog" in missing.stderr
    assert run_cli("version").stdout.strip().startswith("openfoundry ")
