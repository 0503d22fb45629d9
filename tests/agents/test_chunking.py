"""Chunking: OpenAI's rules for `chunking_strategy`, the token approximation, and chunk boundaries."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openfoundry.agents.chunking import Chunking, count_tokens, parse_chunking, split
from openfoundry.errors import InvalidRequest


def test_auto_and_absent_mean_800_tokens_with_400_overlap() -> None:
    assert parse_chunking(None) == parse_chunking({"type": "auto"}) == Chunking(800, 400)
    assert Chunking().to_openai() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }


def test_static_sizes_are_taken_within_openais_bounds() -> None:
    static = {"type": "static", "static": {"max_chunk_size_tokens": 4096, "chunk_overlap_tokens": 2048}}
    assert parse_chunking(static) == Chunking(4096, 2048)
    assert parse_chunking({"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}) == (
        Chunking(100, 0)
    )


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
            "max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}},
            "max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800.5, "chunk_overlap_tokens": 0}},
            "max_chunk_size_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401}},
            "chunk_overlap_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": -1}},
            "chunk_overlap_tokens",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": True}},
            "chunk_overlap_tokens",
        ),
        ({"type": "static"}, "static"),
        ({"type": "other"}, "chunking_strategy"),
        ("auto", "chunking_strategy"),
    ],
)
def test_bad_strategies_are_400_naming_the_field(raw: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_chunking(raw)
    assert refused.value.status == 400 and refused.value.param is not None and refused.value.param.endswith(param)


def test_tokens_are_approximated_like_cl100k_on_prose() -> None:
    assert count_tokens("") == 0
    assert count_tokens("the cat sat") == 3
    assert count_tokens("tokenization") == 2  # six letters a token
    assert count_tokens("Hello, world!") == 4  # punctuation is a token of its own
    assert count_tokens("1234567") == 3  # three digits a token
    assert count_tokens("東京都") == 3  # one token per CJK character
    prose = "Photosynthesis turns light, water and carbon dioxide into sugar inside the leaf. "
    assert count_tokens(prose) == 17  # 12 words, two marks


def test_chunks_keep_the_original_text_and_overlap_by_the_given_tokens() -> None:
    text = "  ".join(str(n) for n in range(250))
    chunks = split(text, Chunking(100, 40))
    assert [c.split()[0] for c in chunks] == ["0", "60", "120", "180"]
    assert [c.split()[-1] for c in chunks] == ["99", "159", "219", "249"]
    assert all("  " in c and text.find(c) >= 0 for c in chunks)  # spacing kept, cut from the text itself
    assert split("a short note", Chunking(100, 50)) == ["a short note"]
    assert split("   ", Chunking()) == []


@given(st.text(min_size=1, max_size=3000), st.integers(100, 300), st.data())
def test_every_token_lands_in_a_chunk_and_no_chunk_is_too_long(text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size // 2))
    chunks = split(text, Chunking(size, overlap))
    assert all(count_tokens(chunk) <= size for chunk in chunks)
    assert sum(count_tokens(c) for c in chunks) >= count_tokens(text)
    if count_tokens(text):
        assert text.strip().startswith(chunks[0][:1]) and text.rstrip().endswith(chunks[-1][-1:])
