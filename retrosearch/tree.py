"""The search tree: one node type for every user (Retro-Search rollouts, RL tool calls, analysis).

Exact ids. A node's `token_ids` are *exact* (`Node.exact_ids`) when they are the very tokens the model reads or
wrote for its span: the ids a backend sampled (rollouts), or the ids of a span tokenized on its own on purpose
(the prompt, environment spans, any span a program adds). A path whose nodes all have exact ids is sent to the
model as those ids, joined (never the joined text re-tokenized: tokenizers merge across span boundaries, e.g.
`"\n" + "\n"`). Two kinds of ids are for counting only: spans of an input trace (origin `"original"`, tokenized
one by one, while the model would read the trace as one text) and spans re-tokenized from text
(`meta["retokenized"]`: a completion without ids, or a split that found no token boundary); a path holding one
is sent as text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrosearch.text import Tokenizer, count_steps, count_tokens, encode, token_cut
from retrosearch.types import ORIGINS, ImagePart, Origin

if TYPE_CHECKING:
    import networkx as nx


SCHEMA_VERSION = 1


@dataclass(eq=False)
class Node:
    """A span of text in the tree: the prompt (root), part of an original trace, a rollout, or tool output.

    Attributes:
        id: Index of the node in its tree (`tree.nodes[id] is node`).
        parent: Id of the parent node, `None` for the root.
        text: The span's text; the full context of a node is the concatenation of its path from the root.
        origin: `"prompt"`, `"original"` (from the input trace), `"rollout"` (generated) or `"environment"`
            (tool output appended by a program; masked out of RL losses).
        token_count: Tokens in `text` (`len(token_ids)` when ids are known).
        step_count: Blank-line separated steps in `text`.
        token_ids: Token ids of the span when known: sampled by the model, or the span tokenized on its own with
            the tree's tokenizer (see the module docstring for when they are exact).
        logprobs: Per-token log-probabilities of generated spans when requested, `len == len(token_ids)`.
        value: The value a search assigned to this branch (e.g. `gamma ** steps * reward`).
        correct: Whether the answer reached through this node is correct (`None`: not graded).
        finish_reason: How generation of this span ended (`"stop"`, `"eos"`, `"length"`, `"error"`).
        accepted: Whether a search accepted this branch (Retro-Search: at its switch; a rollout accepted and
            then cut short at a later switch keeps the flag and gets `meta["superseded"] = True`).
        meta: Free-form annotations (boundary index, phase, tool name, ...). Must be JSON-serialisable.
        children: Ids of the children, in the order they were added.
        image: The image this span stands for (`text` is then its placeholder); JSON keeps it by `path`.
    """

    id: int
    parent: int | None
    text: str
    origin: str
    token_count: int
    step_count: int
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    value: float | None = None
    correct: bool | None = None
    finish_reason: str | None = None
    accepted: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    children: list[int] = field(default_factory=list)
    image: ImagePart | None = None
    tree: SearchTree | None = field(default=None, repr=False)

    # Serialised by `to_dict` (plus `image` on image spans).
    _FIELDS = (
        "id",
        "parent",
        "text",
        "origin",
        "token_count",
        "step_count",
        "token_ids",
        "logprobs",
        "value",
    )
    _FIELDS += ("correct", "finish_reason", "accepted", "meta", "children")

    @property
    def exact_ids(self) -> bool:
        """Whether `token_ids` are the tokens the model reads for this span (see the module docstring)."""
        return self.token_ids is not None and self.origin != "original" and not self.meta.get("retokenized")

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self._FIELDS}
        if self.image is not None:  # only image spans carry the key, so text-only trees read as before
            if self.image.path is None:
                raise ValueError(
                    f"node {self.id} holds an in-memory image: give its ImagePart a path to write the tree"
                )
            d["image"] = {"placeholder": self.image.placeholder, "path": str(self.image.path)}
        return d


class SearchTree:
    """A tree of text spans rooted at a prompt.

    Args:
        prompt: Text of the root node (the prompt as the model sees it).
        tokenizer: Used to count (and, for RL, produce) tokens of spans added without ids: a callable
            `str -> list[int]`, a Hugging Face tokenizer or a `Backend`. Without one, token counts use
            `retrosearch.text.approx_token_count` and no ids are stored.
        prompt_ids: Exact token ids of the prompt, if known.
        meta: Free-form annotations of the whole tree (example id, gold answer, ...).
    """

    def __init__(
        self,
        prompt: str,
        *,
        tokenizer: Tokenizer | None = None,
        prompt_ids: list[int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.meta: dict[str, Any] = dict(meta or {})
        self.nodes: list[Node] = []
        self._add(None, prompt, "prompt", token_ids=prompt_ids)

    # ---------------------------------------------------------------- building
    @property
    def root(self) -> Node:
        return self.nodes[0]

    def tokenize(self, text: str) -> list[int] | None:
        """Token ids of `text` under the tree's tokenizer (`None` without one)."""
        return None if self.tokenizer is None else encode(text, self.tokenizer)

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` under the tree's tokenizer, or the documented approximation without one."""
        ids = self.tokenize(text)
        return len(ids) if ids is not None else count_tokens(text)

    def _add(self, parent: int | None, text: str, origin: str, **attrs: Any) -> Node:
        if origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
        if not isinstance(text, str):
            raise TypeError(f"node text must be a str, got {type(text).__name__}")
        image = attrs.get("image")
        if image is not None:
            if not isinstance(image, ImagePart):
                raise TypeError(f"node image must be an ImagePart, got {type(image).__name__}")
            if text != image.placeholder:
                raise ValueError(
                    f"an image span's text must be its placeholder {image.placeholder!r}, got {text!r}"
                )
        token_ids = attrs.pop("token_ids", None)
        if token_ids is None and self.tokenizer is not None:
            token_ids = self.tokenize(text)
        token_count = attrs.pop("token_count", None)
        if token_count is None:
            token_count = len(token_ids) if token_ids is not None else count_tokens(text)
        node = Node(
            id=len(self.nodes),
            parent=parent,
            text=text,
            origin=origin,
            token_count=token_count,
            step_count=attrs.pop("step_count", None) or count_steps(text),
            token_ids=list(token_ids) if token_ids is not None else None,
            tree=self,
            **attrs,
        )
        if (
            node.logprobs is not None
            and node.token_ids is not None
            and len(node.logprobs) != len(node.token_ids)
        ):
            raise ValueError(
                f"logprobs ({len(node.logprobs)}) and token_ids ({len(node.token_ids)}) differ in length"
            )
        self.nodes.append(node)
        if parent is not None:
            self.nodes[parent].children.append(node.id)
        return node

    def add(self, parent: Node | int, text: str | ImagePart, origin: Origin, **attrs: Any) -> Node:
        """Append a child span under `parent` and return it.

        Without `token_ids`, the span is tokenized on its own with the tree's tokenizer (never together with
        its path): those ids are what a request built from the path sends. An `ImagePart` in place of `text`
        makes an image span (its text is the placeholder; requests from below it carry the image). Keyword
        arguments set `Node` attributes (`token_ids`, `logprobs`, `value`, `correct`, `finish_reason`,
        `accepted`, `meta`, `token_count`).
        """
        pid = parent.id if isinstance(parent, Node) else int(parent)
        if not 0 <= pid < len(self.nodes):
            raise IndexError(f"no node {pid} in a tree of {len(self.nodes)} nodes")
        if isinstance(text, ImagePart):
            text, attrs["image"] = text.placeholder, text
        return self._add(pid, text, origin, **attrs)

    def add_environment(self, parent: Node | int, content: str | ImagePart, **attrs: Any) -> Node:
        """Append what the environment returned (tool output text, or an image) as an `"environment"` span.

        The text is tokenized on its own and its ids are appended to the path's, so the model reads exactly
        these tokens after the path (and RL masks them out with `env_mask`).
        """
        return self.add(parent, content, "environment", **attrs)

    def split(self, node: Node | int, offset: int, *, retokenize: bool = False) -> Node:
        """Cut a span in two at character `offset`: `node` keeps the head and its place, a new node holding the
        tail becomes its only child and takes over its children. Returns the tail node.

        Both halves keep `origin`, `value`, `correct`, `accepted` and `meta` (the tail gets `meta["split"]`);
        the tail takes `finish_reason` (the head did not finish). Ids:

        - Counting ids (an input trace's spans, re-tokenized spans, or none): both halves are re-counted with
          the tree's tokenizer.
        - Exact ids: the ids and log-probs are cut at the token boundary that falls at `offset` (found by
          tokenizing or decoding the halves); where no boundary falls there (a token spans the offset), the
          split is refused with `ValueError`, unless `retokenize`, where both halves are tokenized on their own
          (`meta["retokenized"]`, log-probs dropped: no longer what the model wrote).

        Args:
            retokenize: Re-tokenize both halves on their own as for counting ids (what Retro-Search does, whose
                requests go as text); the halves stay exact when their ids join to the node's.
        """
        node = node if isinstance(node, Node) else self.nodes[node]
        if not 0 < offset < len(node.text):
            raise ValueError(
                f"split offset {offset} must fall inside node {node.id} ({len(node.text)} chars)"
            )
        if node.image is not None:
            raise ValueError(f"node {node.id} is an image span: it cannot be split")
        head, tail = node.text[:offset], node.text[offset:]
        ids, lps, inexact = node.token_ids, node.logprobs, False
        if node.exact_ids and not retokenize:
            cut = None if self.tokenizer is None else token_cut(ids or [], node.text, offset, self.tokenizer)
            if cut is None:
                raise ValueError(
                    f"node {node.id} ({node.origin}) has exact token ids and no token boundary at char "
                    f"{offset} ({head[-10:]!r} | {tail[:10]!r}): split it elsewhere or pass retokenize=True"
                )
        else:
            h, t = self.tokenize(head), self.tokenize(tail)
            cut = len(h) if node.exact_ids and h is not None and h + t == ids else None
            inexact = node.exact_ids and cut is None
        if cut is not None:
            assert ids is not None
            head_ids, tail_ids = ids[:cut], ids[cut:]
            head_lps, tail_lps = (None, None) if lps is None else (lps[:cut], lps[cut:])
        else:
            head_ids, tail_ids, head_lps, tail_lps = h, t, None, None
        meta = dict(node.meta, split=True)
        if inexact:
            meta["retokenized"] = node.meta["retokenized"] = True
        kept = {k: getattr(node, k) for k in ("value", "correct", "accepted", "finish_reason")}
        new = self.add(node, tail, node.origin, token_ids=tail_ids, logprobs=tail_lps, meta=meta, **kept)
        new.children = [c for c in node.children if c != new.id]
        for c in new.children:
            self.nodes[c].parent = new.id
        node.children = [new.id]
        node.text = head
        node.token_ids, node.logprobs = head_ids, head_lps
        node.token_count = len(head_ids) if head_ids is not None else count_tokens(head)
        node.step_count = count_steps(head)
        node.finish_reason = None
        return new

    # ----------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def path(self, node: Node | int) -> list[Node]:
        """Nodes from the root to `node`, both included."""
        n = node if isinstance(node, Node) else self.nodes[node]
        out = [n]
        while n.parent is not None:
            n = self.nodes[n.parent]
            out.append(n)
        return out[::-1]

    def text(self, node: Node | int, *, start: Node | int | None = None) -> str:
        """The text of the path to `node` (from the root, or from just below `start`)."""
        return "".join(n.text for n in self._segment(node, start))

    def _segment(self, node: Node | int, start: Node | int | None) -> list[Node]:
        path = self.path(node)
        if start is None:
            return path
        sid = start.id if isinstance(start, Node) else start
        ids = [n.id for n in path]
        if sid not in ids:
            raise ValueError(f"node {sid} is not an ancestor of node {path[-1].id}")
        return path[ids.index(sid) + 1 :]

    def token_ids(self, node: Node | int, *, start: Node | int | None = None) -> list[int]:
        """Exact token ids of the path (requires ids on every node: a tree with a tokenizer has them)."""
        out: list[int] = []
        for n in self._segment(node, start):
            if n.token_ids is None:
                raise ValueError(
                    f"node {n.id} ({n.origin}) has no token ids: build the tree with a tokenizer"
                )
            out.extend(n.token_ids)
        return out

    def env_mask(self, node: Node | int, *, start: Node | int | None = None) -> list[int]:
        """Per token of the path: 1 for model-written tokens, 0 for environment (tool) tokens."""
        out: list[int] = []
        for n in self._segment(node, start):
            out.extend([0 if n.origin == "environment" else 1] * n.token_count)
        return out

    def logprobs(self, node: Node | int, *, start: Node | int | None = None) -> list[float]:
        """Per token of the path: the sampling log-prob of model-written tokens, 0.0 for prompt and environment
        tokens.

        Raises:
            ValueError: a model-written span (`"rollout"` or `"original"`) on the path has tokens but no
                log-probs (generate with `logprobs=True`; a split with `retokenize` drops them).
        """
        out: list[float] = []
        for n in self._segment(node, start):
            if n.logprobs is not None:
                out.extend(n.logprobs)
            elif n.origin in ("prompt", "environment") or not n.token_count:
                out.extend([0.0] * n.token_count)
            else:
                raise ValueError(
                    f"node {n.id} ({n.origin}, {n.token_count} tokens) has no log-probs: generate with "
                    "logprobs=True"
                )
        return out

    def depth(self, node: Node | int | None = None) -> int:
        """Depth of `node` (root = 0), or of the deepest node when `node` is None."""
        if node is not None:
            return len(self.path(node)) - 1
        depths = [0] * len(self.nodes)
        for n in self.nodes[1:]:  # parents always precede children
            depths[n.id] = depths[n.parent] + 1  # type: ignore[index]
        return max(depths)

    def stats(self) -> dict[str, Any]:
        """Summary numbers: size, depth, branching and tokens by origin."""
        inner = [n for n in self.nodes if n.children]
        branching = [len(n.children) for n in inner]
        tokens = Counter()
        for n in self.nodes:
            tokens[n.origin] += n.token_count
        return {
            "nodes": len(self.nodes),
            "leaves": len(self.nodes) - len(inner),
            "depth": self.depth(),
            "mean_branching": sum(branching) / len(branching) if branching else 0.0,
            "max_branching": max(branching, default=0),
            "tokens_by_origin": {o: tokens.get(o, 0) for o in ORIGINS},
            "nodes_by_origin": dict(Counter(n.origin for n in self.nodes)),
            "accepted": sum(n.accepted for n in self.nodes),
        }

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (`from_dict` reads it back)."""
        return {"version": SCHEMA_VERSION, "meta": self.meta, "nodes": [n.to_dict() for n in self.nodes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, tokenizer: Tokenizer | None = None) -> SearchTree:
        if not isinstance(data, dict) or "nodes" not in data:
            raise ValueError("a SearchTree dict needs a 'nodes' list (as written by SearchTree.to_dict)")
        if data.get("version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError(f"unsupported SearchTree schema version {data.get('version')!r}")
        tree = cls.__new__(cls)
        tree.tokenizer = tokenizer
        tree.meta = dict(data.get("meta", {}))
        tree.nodes = []
        for i, d in enumerate(data["nodes"]):
            missing = {"id", "parent", "text", "origin"} - set(d)
            if missing:
                raise ValueError(f"node {i} lacks field(s) {sorted(missing)}")
            if d["id"] != i:
                raise ValueError(f"node {i} has id {d['id']}: nodes must be listed in id order")
            kw = {k: d[k] for k in Node._FIELDS if k in d}
            if d.get("image") is not None:
                kw["image"] = ImagePart(d["image"]["placeholder"], path=d["image"]["path"])
            kw.setdefault("token_count", count_tokens(d["text"]))
            kw.setdefault("step_count", count_steps(d["text"]))
            tree.nodes.append(Node(tree=tree, **kw))
        return tree

    def to_json(self, path: str | Path | None = None, **kwargs: Any) -> str:
        s = json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)
        if path is not None:
            Path(path).write_text(s, encoding="utf-8")
        return s

    @classmethod
    def from_json(cls, s_or_path: str | Path) -> SearchTree:
        p = Path(s_or_path) if not str(s_or_path).lstrip().startswith("{") else None
        return cls.from_dict(json.loads(p.read_text(encoding="utf-8") if p else str(s_or_path)))

    def to_networkx(self) -> nx.DiGraph:
        """A `networkx.DiGraph` with one vertex per node (all `Node` attributes but ids) and parent->child edges
        carrying `order` (the child's rank among its siblings)."""
        import networkx as nx

        g = nx.DiGraph(**self.meta)
        for n in self.nodes:
            attrs = {k: getattr(n, k) for k in Node._FIELDS if k not in ("id", "children")}
            g.add_node(n.id, image=n.image, **attrs)
        for n in self.nodes:
            for rank, c in enumerate(n.children):
                g.add_edge(n.id, c, order=rank)
        return g

    def __repr__(self) -> str:
        s = self.stats()
        return f"SearchTree(nodes={s['nodes']}, depth={s['depth']}, accepted={s['accepted']})"
