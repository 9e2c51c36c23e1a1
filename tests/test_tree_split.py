"""`SearchTree.split`: exact ids and log-probs are cut at a token boundary or the split is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

import retrosearch
from retrosearch.tree import SearchTree

TOY_TOKENIZER = Path(retrosearch.__file__).parent / "assets" / "toy" / "toy-base" / "tokenizer.json"


@pytest.fixture(scope="module")
def tok():
    """The toy model's byte-level BPE (merges `"\\n\\n"`, `" answer"`, ...)."""
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(TOY_TOKENIZER))


def ids_of(tok, *pieces: str) -> list[int]:
    """Ids of `pieces` tokenized one by one: what a model may write without the merges."""
    return [i for p in pieces for i in tok.encode(p).ids]


def rollout(tree: SearchTree, text: str, ids: list[int], **attrs):
    lps = [-0.1 * (k + 1) for k in range(len(ids))]
    return tree.add(tree.root, text, "rollout", token_ids=ids, logprobs=lps, **attrs)


def test_exact_ids_and_logprobs_are_cut_at_the_token_boundary(tok):
    tree = SearchTree("Q\n", tokenizer=tok)
    ids = ids_of(tok, "A\n", "\nB")  # two newline tokens where BPE would merge them
    node = rollout(tree, "A\n\nB", ids, value=0.81, correct=True, accepted=True, finish_reason="eos")
    child = tree.add(node, " more", "environment")
    lps = list(node.logprobs)
    tail = tree.split(node, 2)
    assert (node.text, tail.text) == ("A\n", "\nB")
    assert node.token_ids + tail.token_ids == ids and node.logprobs + tail.logprobs == lps
    assert node.token_ids == tok.encode("A\n").ids and node.token_count == len(node.token_ids)
    assert node.exact_ids and tail.exact_ids and "retokenized" not in tail.meta
    # Both halves keep what the search knew about the branch; only the tail finished.
    assert (node.value, node.correct, node.accepted) == (tail.value, tail.correct, tail.accepted)
    assert (tail.value, tail.correct, tail.accepted) == (0.81, True, True)
    assert (node.finish_reason, tail.finish_reason) == (None, "eos")
    assert tail.meta["split"] and tree.nodes[child.id].parent == tail.id and node.children == [tail.id]
    assert tree.token_ids(child) == tok.encode("Q\n").ids + ids + tok.encode(" more").ids


def test_a_boundary_between_non_canonical_tokens_is_found_by_decoding(tok):
    tree = SearchTree("Q\n", tokenizer=tok)
    ids = ids_of(tok, "So the", " ", "answer")  # canonical " answer" is one token
    node = rollout(tree, "So the answer", ids)
    tail = tree.split(node, len("So the"))
    assert node.token_ids == tok.encode("So the").ids and tail.token_ids == ids_of(tok, " ", "answer")
    assert len(node.logprobs) == len(node.token_ids) and len(tail.logprobs) == len(tail.token_ids)


def test_no_token_boundary_at_the_offset_is_refused_or_retokenized_on_request(tok):
    tree = SearchTree("Q\n", tokenizer=tok)
    ids = tok.encode("A\n\nB").ids  # one token "\n\n" spans the offset
    node = rollout(tree, "A\n\nB", ids, value=1.0)
    with pytest.raises(ValueError, match="no token boundary at char 2"):
        tree.split(node, 2)
    assert node.text == "A\n\nB" and node.children == []  # untouched
    tail = tree.split(node, 2, retokenize=True)
    assert node.token_ids == tok.encode("A\n").ids and tail.token_ids == tok.encode("\nB").ids
    assert node.logprobs is tail.logprobs is None and not node.exact_ids and not tail.exact_ids
    assert node.meta["retokenized"] and tail.meta["retokenized"] and tail.value == 1.0
    with pytest.raises(ValueError, match="no log-probs"):
        tree.logprobs(tail)


def test_retokenize_keeps_exact_ids_when_the_halves_join_to_them(tok):
    tree = SearchTree("Q\n", tokenizer=tok)
    ids = ids_of(tok, "A\n", "\nB")
    node = rollout(tree, "A\n\nB", ids)
    tail = tree.split(node, 2, retokenize=True)
    assert node.exact_ids and tail.exact_ids and node.logprobs is not None
    assert node.token_ids + tail.token_ids == ids


def test_counting_ids_of_an_input_trace_are_recounted():
    tree = SearchTree("Q: ", tokenizer=lambda s: [ord(c) for c in s])
    node = tree.add(tree.root, "Step one.\n\nWait, two.", "original", meta={"thought": 0})
    tail = tree.split(node, len("Step one."))
    assert node.token_ids == [ord(c) for c in "Step one."] and tail.text == "\n\nWait, two."
    assert (node.step_count, tail.step_count) == (1, 1) and tail.meta == {"thought": 0, "split": True}
    bare = SearchTree("Q: ")
    n = bare.add(bare.root, "one two three", "original")
    t = bare.split(n, 3)
    assert n.token_ids is t.token_ids is None and (n.token_count, t.token_count) == (1, 2)


def test_split_rejects_offsets_outside_the_span():
    tree = SearchTree("Q")
    node = tree.add(tree.root, "abc", "rollout")
    for offset in (0, 3, -1):
        with pytest.raises(ValueError, match="must fall inside"):
            tree.split(node, offset)
