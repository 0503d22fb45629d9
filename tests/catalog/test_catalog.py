"""The catalog: every card loads and is consistent; the CLI and zero-config use it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from openfoundry.catalog import Catalog, CatalogError
from openfoundry.config import CREDENTIAL_ENV, ProviderSettings
from openfoundry.deployments import zero_config_deployments
from openfoundry.engines.supervised import command_line
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
    "xai/grok-1",
    "xai/grok-2",
    "qwen/qwen3-8b",
]
PUBLISHERS = {"xai", "openai", "anthropic", "google", "mistral", "deepseek", "meta", "microsoft", "qwen"}
# What the supervisor passes itself (engines/supervised.py): a recipe's args must not repeat it.
SUPERVISOR_FLAGS = {
    "--model", "--model-path", "--host", "--port", "--served-model-name",
    "--tensor-parallel-size", "-tp", "--tp", "--tp-size",
}  # fmt: skip


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


def test_recipes_are_open_weights_and_launchable(catalog: Catalog) -> None:
    with_recipes = [card for card in catalog if card.recipes]
    assert {card.publisher for card in with_recipes} >= {"xai", "meta", "qwen", "openai"}
    for card in with_recipes:
        assert card.license != "proprietary", card.id
        for engine, recipe in card.recipes.items():
            assert engine in card.hosts, (card.id, engine)  # the served name
            assert recipe.weights and recipe.notes, (card.id, engine)
            if recipe.tensor_parallel is not None:
                assert recipe.tensor_parallel >= 1, (card.id, engine)
            if recipe.gpu_memory_gb is not None:
                assert recipe.gpu_memory_gb > 0, (card.id, engine)
            assert not SUPERVISOR_FLAGS & {arg.split("=", 1)[0] for arg in recipe.args}, (card.id, engine)
            if engine == "llamacpp":
                assert recipe.weights.endswith(".gguf") and recipe.tensor_parallel is None, card.id
                continue
            assert recipe.tensor_parallel is not None and recipe.gpu_memory_gb is not None, (card.id, engine)
            provider = ProviderSettings.model_validate({"type": engine, "launch": card.launch_block(engine)})
            assert provider.launch is not None
            argv = command_line(engine, provider.launch, 8000)
            assert recipe.weights in argv and argv[len(argv) - len(recipe.args) :] == list(recipe.args)
            assert str(recipe.tensor_parallel) in argv and card.hosts[engine] in argv


def test_grok_open_weights_and_qwen(catalog: Catalog) -> None:
    grok_1, grok_2 = catalog.get("xai/grok-1"), catalog.get("xai/grok-2")
    assert grok_1 is not None and grok_2 is not None
    assert grok_1.license == "apache-2.0" and grok_2.license == "grok-2-community"
    for grok in (grok_1, grok_2):
        assert set(grok.recipes) == {"vllm", "sglang"} and grok.pricing.input == 0 and grok.pricing.output == 0
        assert grok.hosts == {"vllm": grok.short_name, "sglang": grok.short_name}
        assert all(recipe.tensor_parallel == 8 for recipe in grok.recipes.values())
    sglang = grok_2.recipes["sglang"]  # xAI's documented command: --tp 8 --quantization fp8 --attention-backend triton
    assert sglang.weights == "xai-org/grok-2" and "--tokenizer-path" in sglang.args
    assert sglang.args[sglang.args.index("--quantization") + 1] == "fp8"
    assert sglang.args[sglang.args.index("--attention-backend") + 1] == "triton"
    assert grok_1.context_window == 8192 and grok_2.context_window == 131072
    qwen = [card for card in catalog if card.publisher == "qwen"]
    assert {card.id for card in qwen} >= {"qwen/qwen3-8b", "qwen/qwen3-32b", "qwen/qwen2.5-72b-instruct"}
    assert all(card.recipes.keys() >= {"vllm", "sglang"} for card in qwen)
    for model_id in ("openai/gpt-oss-20b", "openai/gpt-oss-120b", "meta/llama-3.1-8b-instruct", "meta/llama-4-scout"):
        assert catalog.get(model_id).recipes.keys() >= {"vllm", "sglang"}, model_id  # type: ignore[union-attr]


def test_a_recipe_needs_open_weights_and_a_served_name(tmp_path: Path) -> None:
    card = {
        "id": "acme/x", "name": "X", "description": "d", "context_window": 8, "license": "proprietary",
        "modalities": {"input": ["text"], "output": ["text"]}, "capabilities": {}, "pricing": {},
        "hosts": {"vllm": "x"}, "recipes": {"vllm": {"weights": "acme/x", "tensor_parallel": 1}},
    }  # fmt: skip
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump({"publisher": "acme", "models": [card]}))
    with pytest.raises(CatalogError, match="license is proprietary"):
        Catalog.load(tmp_path)
    card |= {"license": "apache-2.0", "hosts": {"openai-compatible": "x"}}
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump({"publisher": "acme", "models": [card]}))
    with pytest.raises(CatalogError, match="recipes for vllm need a hosts entry"):
        Catalog.load(tmp_path)
    card |= {"hosts": {"vllm": "x"}, "recipes": {"vllm": {"weights": "acme/x", "tensor_parallel": 0}}}
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump({"publisher": "acme", "models": [card]}))
    with pytest.raises(CatalogError, match="tensor_parallel"):
        Catalog.load(tmp_path)


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
    grok = run_cli("catalog", "show", "xai/grok-2")
    assert grok.returncode == 0, grok.stderr
    shown_card, _, shown_launch = grok.stdout.partition("# a recipe as a provider")
    recipes = yaml.safe_load(shown_card)["recipes"]
    assert recipes["sglang"]["weights"] == "xai-org/grok-2" and recipes["sglang"]["tensor_parallel"] == 8
    launch = yaml.safe_load(shown_launch.partition("\n")[2])["providers"]["sglang"]
    assert launch == {"type": "sglang", "launch": catalog.get("xai/grok-2").launch_block("sglang")}  # type: ignore[union-attr]
    assert ProviderSettings.model_validate(launch).launch.tensor_parallel_size == 8  # type: ignore[union-attr]
    missing = run_cli("catalog", "show", "acme/none")
    assert missing.returncode == 1 and "not in the catalog" in missing.stderr
    assert run_cli("version").stdout.strip().startswith("openfoundry ")
