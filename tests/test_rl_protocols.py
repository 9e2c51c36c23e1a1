"""Tag protocols: query extraction, documents blocks, answers, prompts and the rules for edge cases."""

from __future__ import annotations

import pytest

from retrosearch.rl.protocols import (
    DEEPMMSEARCH_R1,
    PROTOCOL_NAMES,
    R1_SEARCHER,
    R1_SEARCHER_PLUS,
    SEARCH_R1,
    QueryTag,
    TagProtocol,
    get_protocol,
)
from retrosearch.rl.retrievers.base import Passage

PASSAGES = [
    Passage("7", "Paris", " Paris is the capital of France."),
    Passage("9", "Lyon", "Lyon is a city."),
]


def test_the_four_protocols_are_registered_by_name() -> None:
    assert PROTOCOL_NAMES == ("r1-searcher", "search-r1", "r1-searcher++", "deepmmsearch-r1")
    assert get_protocol("search-r1") is SEARCH_R1
    assert get_protocol(R1_SEARCHER) is R1_SEARCHER
    with pytest.raises(ValueError, match="unknown tag protocol 'r1'"):
        get_protocol("r1")


def test_r1_searcher_documents_block_is_its_released_format() -> None:
    block = R1_SEARCHER.format_documents(PASSAGES)
    assert block == (
        "\n\n<|begin_of_documents|>\n(1)Title: Paris Text:  Paris is the capital of France.\n"
        "(2)Title: Lyon Text: Lyon is a city.\n<|end_of_documents|>\n\n"
    )
    assert R1_SEARCHER.format_documents([]) == "\n\n<|begin_of_documents|>\nNone<|end_of_documents|>\n\n"


def test_search_r1_information_block() -> None:
    block = SEARCH_R1.format_documents(PASSAGES)
    assert block == (
        "\n\n<information>Doc 1(Title: Paris)  Paris is the capital of France.\n"
        "Doc 2(Title: Lyon) Lyon is a city.</information>\n\n"
    )
    assert SEARCH_R1.format_documents([]) == "\n\n<information></information>\n\n"


def test_query_is_the_text_after_the_last_opening_tag_cleaned_per_protocol() -> None:
    seg = 'Think. <|begin_of_query|> old <|end_of_query|> no. <|begin_of_query|> "Paris"\tcapital ...<|end_of_query|>'
    parsed = R1_SEARCHER.ending_query(seg)
    assert parsed is not None and parsed.query == "Paris capital" and parsed.tag.tool == "retrieve"
    # Search-R1 keeps quotes: only R1-Searcher drops them.
    assert SEARCH_R1.ending_query('<search> "Paris" </search>').query == '"Paris"'


def test_malformed_and_empty_queries_are_told_apart() -> None:
    assert R1_SEARCHER.ending_query("no query here") is None
    empty = R1_SEARCHER.ending_query("<|begin_of_query|> ' ... ' <|end_of_query|>")
    assert empty.query is None and empty.problem == "empty query"
    orphan = R1_SEARCHER.ending_query("I search capital<|end_of_query|>")
    assert orphan.query is None and "no <|begin_of_query|>" in orphan.problem


def test_deepmmsearch_routes_each_tag_to_its_tool() -> None:
    text = DEEPMMSEARCH_R1.ending_query(
        "<reason>look</reason><text_search> Eiffel tower height </text_search>"
    )
    image = DEEPMMSEARCH_R1.ending_query("<img_search>[the tower]</img_search>")
    assert (text.tag.tool, text.query) == ("retrieve", "Eiffel tower height")
    assert (image.tag.tool, image.query, image.tag.max_calls) == ("image_search", "[the tower]", 1)
    assert DEEPMMSEARCH_R1.stops() == ("</text_search>", "</img_search>", "</answer>")


def test_answer_is_the_last_complete_answer() -> None:
    assert R1_SEARCHER.extract_answer("<answer> a </answer> then <answer> Paris </answer>") == "Paris"
    assert R1_SEARCHER.extract_answer("<answer> cut off") is None
    assert R1_SEARCHER.extract_answer(None) is None


def test_prompts_end_as_each_model_expects() -> None:
    r1 = R1_SEARCHER.render_prompt("Who?")
    assert r1.endswith("\n\nUser:Who?\nAssistant: <think>") and "<|begin_of_query|>" in r1
    sr1 = SEARCH_R1.render_prompt("Who?")
    assert sr1.endswith("Question: Who?\n") and "<search>" in sr1
    chat = R1_SEARCHER_PLUS.render_prompt("Who?", chat=lambda m: f"<user>{m[0]['content']}</user><bot>")
    assert chat.endswith("Question: Who?</user><bot><think>") and "<internal>" in chat
    assert R1_SEARCHER.render_prompt("Who?", instructions="Just answer.").startswith(
        "Just answer.\n\nUser:Who?"
    )


def test_fallback_rules_are_data() -> None:
    assert (R1_SEARCHER.on_invalid_query, R1_SEARCHER.on_max_retrievals) == ("stop", "stop")
    assert R1_SEARCHER.fallback_answer == "I don't know."
    assert SEARCH_R1.on_invalid_query == "retry" and "<search>" in SEARCH_R1.invalid_query_message
    # The note after one search too many is itself a documents block, so tag counts stay balanced.
    note = R1_SEARCHER_PLUS.max_retrievals_message
    assert note.count(R1_SEARCHER_PLUS.docs_open) == note.count(R1_SEARCHER_PLUS.docs_close) == 1


def test_a_protocol_is_validated_when_built() -> None:
    tag = QueryTag("retrieve", "<q>", "</q>")
    kw = {
        "docs_open": "<d>",
        "docs_close": "</d>",
        "docs_prefix": "",
        "docs_suffix": "",
        "doc_template": "{text}",
    }
    with pytest.raises(ValueError, match="on_max_retrievals must be one of"):
        TagProtocol("x", (tag,), instructions="", on_max_retrievals="retry", **kw)
    with pytest.raises(ValueError, match="at least one query tag"):
        TagProtocol("x", (), instructions="", **kw)
