"""Prompt building and stop sequences of the engine's worker (no model needed)."""

from __future__ import annotations

from openfoundry.engines.worker import _TextOut, gemma_prompt


def test_gemma_turn_format_folds_the_system_prompt_into_the_first_user_turn() -> None:
    prompt = gemma_prompt(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ]
    )
    assert prompt == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_stop_sequences_split_across_tokens_are_held_back_then_cut() -> None:
    out = _TextOut(["END"])
    assert out.feed("abc E") == ("abc ", False)
    assert out.feed("N") == ("", False)
    assert out.feed("Dx") == ("", True)


def test_a_held_back_prefix_that_is_not_a_stop_goes_out() -> None:
    out = _TextOut(["END"])
    assert out.feed("E") == ("", False)
    assert out.feed("ast") == ("East", False)
    assert out.feed("EN") == ("", False)
    assert out.flush("") == "EN"
