"""Hybrid ranking (BM25 + embeddings by reciprocal rank fusion), attribute filters, and semantic search
through a gateway whose embedding deployment makes vectors that carry meaning."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest
import yaml

from openfoundry.agents.filters import parse_filter
from openfoundry.agents.search import RRF_K, Index, Ranking, fuse, parse_ranking
from openfoundry.errors import InvalidRequest
from openfoundry.store.vector_stores import StoredChunk
from tests.agents.files_support import SEMANTIC_KEY, concept_vector, project_client, semantic_upstream, store_with
from tests.conftest import gateway_config
from tests.fakes.server import FakeServer
from tests.harness import ADMIN_KEY, Server


def chunk(text: str, vector: list[float], **attributes: Any) -> StoredChunk:
    return StoredChunk("file-" + text[:8], text[:8], attributes, text, np.array(vector, dtype=np.float32).tobytes())


DEFAULT = Ranking()


def scores(index: Index, query: str, vector: list[float], ranking: Ranking = DEFAULT) -> list[float]:
    text = index.text_scores(query.lower().split())
    cosine = index.vector_scores(np.array(vector, dtype=np.float32))
    return [round(float(s), 4) for s in fuse(text, cosine, np.ones(len(index), dtype=bool), ranking)]


def test_bm25_prefers_rare_words_and_short_chunks() -> None:
    index = Index(
        [
            chunk("the cat sat on the mat", [1, 0]),
            chunk("the dog sat on the log", [1, 0]),
            chunk("the cat " + "and more words " * 10, [1, 0]),
        ]
    )
    cat = index.text_scores(["cat"])
    assert cat[0] > cat[2] > 0 and cat[1] == 0  # the shorter chunk with the word wins
    the = index.text_scores(["the"])
    assert 0 < the[0] < cat[0]  # a word in every chunk weighs little


def test_a_keyword_match_outranks_any_vector_when_weights_are_equal() -> None:
    index = Index([chunk("zebra crossing", [0, 1]), chunk("unrelated text", [1, 0])])
    fused = scores(index, "zebra", [1, 0])  # the query's vector points at the other chunk
    assert fused[0] > fused[1]
    assert fused[0] == pytest.approx((1 / (RRF_K + 1) + 1 / (RRF_K + 2)) / (2 / (RRF_K + 1)), abs=1e-4)
    assert fused[1] == 0.5  # first by vector alone: half the best possible


def test_hybrid_weights_move_the_balance() -> None:
    index = Index([chunk("zebra crossing", [0, 1]), chunk("unrelated text", [1, 0])])
    assert scores(index, "zebra", [1, 0], Ranking(embedding_weight=1, text_weight=0)) == [
        round((RRF_K + 1) / (RRF_K + 2), 4),
        1.0,
    ]
    assert scores(index, "zebra", [1, 0], Ranking(embedding_weight=0, text_weight=1)) == [1.0, 0.0]


def test_chunks_of_other_models_are_ranked_by_text_only() -> None:
    index = Index([chunk("zebra", [1, 0, 0]), chunk("lion", [0, 1, 0])])
    text = index.text_scores(["lion"])
    cosine = index.vector_scores(np.array([1, 0], dtype=np.float32))  # a 2-wide query vector
    assert np.isnan(cosine).all()
    assert list(fuse(text, cosine, np.ones(2, dtype=bool), Ranking())) == [0.0, 1.0]


def test_ranking_options_are_checked() -> None:
    assert parse_ranking(None) == Ranking()
    assert parse_ranking({"ranker": "auto", "score_threshold": 0.5}) == Ranking(score_threshold=0.5)
    hybrid = {"hybrid_search": {"embedding_weight": 0.3, "text_weight": 0.7}}
    assert parse_ranking(hybrid) == Ranking(0.3, 0.7, 0.0)
    for bad in (
        {"ranker": "best"},
        {"score_threshold": -0.1},
        {"score_threshold": True},
        {"hybrid_search": {"embedding_weight": 0, "text_weight": 0}},
        {"hybrid_search": {"embedding_weight": -1, "text_weight": 2}},
        {"hybrid_search": {"text_weight": 1}},
    ):
        with pytest.raises(InvalidRequest):
            parse_ranking(bad)


def test_filters_compare_as_openai_documents() -> None:
    attributes = {"year": 2024, "team": "red", "public": True, "score": 4.5}

    def matches(raw: dict[str, Any]) -> bool:
        return parse_filter(raw)(attributes)

    assert matches({"type": "eq", "key": "year", "value": 2024.0})
    assert not matches({"type": "eq", "key": "public", "value": 1})  # a boolean is not a number
    assert matches({"type": "gt", "key": "score", "value": 4})
    assert matches({"type": "lte", "key": "team", "value": "red"})
    assert not matches({"type": "gt", "key": "team", "value": 3})  # a string does not compare with a number
    assert matches({"type": "in", "key": "year", "value": [2023, 2024]})
    assert not matches({"type": "ne", "key": "missing", "value": "x"})
    assert not matches({"type": "nin", "key": "missing", "value": ["x"]})
    nested = {"type": "or", "filters": [{"type": "and", "filters": [{"type": "eq", "key": "team", "value": "red"}]}]}
    assert matches(nested)


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ([], "filters"),
        ({"type": "eq", "value": 1}, "filters.key"),
        ({"type": "in", "key": "a", "value": "x"}, "filters.value"),
        ({"type": "eq", "key": "a", "value": {"x": 1}}, "filters.value"),
        ({"type": "and", "filters": []}, "filters.filters"),
        ({"type": "or", "filters": [{"type": "eq", "key": "a"}]}, "filters.filters[0].value"),
    ],
)
def test_bad_filters_are_400_naming_the_field(raw: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_filter(raw)
    assert refused.value.param == param


@pytest.fixture(scope="module")
def semantic(fakes: dict[str, FakeServer]) -> Iterator[Server]:
    """A gateway whose vector stores embed with `meaning`, an upstream whose vectors group concepts."""
    upstream = FakeServer(semantic_upstream()).start()
    config = gateway_config(fakes, server={"admin_key": ADMIN_KEY}, agents={"embedding_deployment": "meaning"})
    config["providers"]["meaning"] = {"type": "openai", "base_url": upstream.url + "/v1", "api_key": SEMANTIC_KEY}
    config["deployments"]["meaning"] = {"model": "openai/text-embedding-3-small", "backends": [{"provider": "meaning"}]}
    server = Server(config).start()
    yield server
    server.stop()
    upstream.stop()


GARAGE = {
    "garage.txt": "The sedan and the truck were parked in the garage; both need new tyres.",
    "kennel.txt": "A puppy learns quickly when the hound next door shows the way on the leash.",
    "bakery.txt": "Knead the flour, then bake the bread in a hot oven, as the recipe says.",
}


def test_a_query_finds_files_by_meaning_without_sharing_a_word(semantic: Server) -> None:
    assert concept_vector("automobile") == concept_vector("sedan")  # what makes this upstream semantic
    client, _ = project_client(semantic)
    store_id = store_with(client, GARAGE)
    for query, expected in (("automobile", "garage.txt"), ("canine", "kennel.txt"), ("cuisine", "bakery.txt")):
        results = client.vector_stores.search(store_id, query=query).data
        assert results[0].filename == expected, (query, [(r.filename, r.score) for r in results])
        assert results[0].score > results[-1].score
    text_only = {"hybrid_search": {"embedding_weight": 0, "text_weight": 1}}
    assert client.vector_stores.search(store_id, query="automobile", ranking_options=text_only).data == []


def test_keywords_still_win_over_meaning_when_a_file_has_the_word(semantic: Server) -> None:
    client, _ = project_client(semantic)
    store_id = store_with(client, {**GARAGE, "notes.txt": "Remember: the word automobile is on the spelling test."})
    assert client.vector_stores.search(store_id, query="automobile").data[0].filename == "notes.txt"
    vectors_only = {"hybrid_search": {"embedding_weight": 1, "text_weight": 0}}
    found = client.vector_stores.search(store_id, query="automobile", ranking_options=vectors_only).data
    assert found[0].filename == "garage.txt"


def test_search_follows_changes_made_by_another_process(semantic: Server) -> None:
    """Each process caches the stores it searched; a change made through another process (same
    database) must show in its next search."""
    client, _ = project_client(semantic)
    config = yaml.safe_load(semantic.config_path.read_text())
    del config["server"]["port"]
    second = Server(config).start()  # the same SQLite file, another process
    try:
        other = openai.OpenAI(base_url=second.url + "/v1", api_key=client.api_key, max_retries=0)
        store_id = store_with(client, {"first.txt": "the sedan"})
        assert [r.filename for r in client.vector_stores.search(store_id, query="sedan").data] == ["first.txt"]
        added = other.vector_stores.files.create_and_poll(
            vector_store_id=store_id,
            file_id=other.files.create(file=("second.txt", b"a sedan"), purpose="assistants").id,
        )
        assert added.status == "completed"
        found = client.vector_stores.search(store_id, query="sedan").data
        assert sorted(r.filename for r in found) == ["first.txt", "second.txt"]
        other.vector_stores.files.delete(found[0].file_id, vector_store_id=store_id)
        assert [r.file_id for r in client.vector_stores.search(store_id, query="sedan").data] == [found[1].file_id]
    finally:
        second.stop()
