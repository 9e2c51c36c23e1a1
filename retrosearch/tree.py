"""The search tree: one node type for every user (Retro-Search rollouts, RL tool calls, analysis)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrosearch.text import Tokenizer, count_steps, count_tokens, encode
from retrosearch.types import ORIGINS, Origin

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
        token_ids: Exact token ids when known (generated spans, or spans tokenized with the tree's tokenizer).
        logprobs: Per-token log-probabilities of generated spans when requested, `len == len(token_ids)`.
        value: The value a search assigned to this branch (e.g. `gamma ** steps * reward`).
        correct: Whether the answer reached through this node is correct (`None`: not graded).
        finish_reason: How generation of this span ended (`"stop"`, `"eos"`, `"length"`, `"error"`).
        accepted: Whether a search accepted this branch (Retro-Search: at its switch; a rollout accepted and
            then cut short at a later switch keeps the flag and gets `meta["superseded"] = True`).
        meta: Free-form annotations (boundary index, phase, tool name, ...). Must be JSON-serialisable.
        children: Ids of the children, in the order they were added.
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
    tree: SearchTree | None = field(default=None, repr=False)

    _FIELDS = [
        "id",
        "parent",
        "text",
        "origin",
        "token_count",
        "step_count",
        "token_ids",
        "logprobs",
        "value",
        "correct",
        "finish_reason",
        "accepted",
        "meta",
        "children",
    ]

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._FIELDS}


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

    def add(self, parent: Node | int, text: str, origin: Origin, **attrs: Any) -> Node:
        """Append a child span under `parent` and return it.

        Keyword arguments set `Node` attributes (`token_ids`, `logprobs`, `value`, `correct`, `finish_reason`,
        `accepted`, `meta`, `token_count`).
        """
        pid = parent.id if isinstance(parent, Node) else int(parent)
        if not 0 <= pid < len(self.nodes):
            raise IndexError(f"no node {pid} in a tree of {len(self.nodes)} nodes")
        return self._add(pid, text, origin, **attrs)

    def add_chain(self, parent: Node | int, texts: list[str], origin: Origin, **attrs: Any) -> Node:
        """Append `texts` as a chain of spans below `parent`; returns the last node (or `parent` if empty)."""
        node = parent if isinstance(parent, Node) else self.nodes[parent]
        for t in texts:
            node = self.add(node, t, origin, meta=dict(attrs.get("meta", {})))
        return node

    def split(self, node: Node | int, offset: int) -> Node:
        """Cut a span in two at character `offset`: `node` keeps the head and its place, a new node holding the
        tail becomes its only child and takes over its children. Returns the tail node.

        Both halves are re-counted with the tree's tokenizer; the head's log-probs are dropped (token boundaries
        need not fall at `offset`).
        """
        node = node if isinstance(node, Node) else self.nodes[node]
        if not 0 < offset < len(node.text):
            raise ValueError(
                f"split offset {offset} must fall inside node {node.id} ({len(node.text)} chars)"
            )
        head, tail = node.text[:offset], node.text[offset:]
        new = self.add(
            node,
            tail,
            node.origin,
            accepted=node.accepted,
            meta=dict(node.meta, split=True),
            finish_reason=node.finish_reason,
        )
        new.children = [c for c in node.children if c != new.id]
        for c in new.children:
            self.nodes[c].parent = new.id
        node.children = [new.id]
        node.text = head
        node.token_ids = self.tokenize(head) if node.token_ids is not None else None
        node.logprobs = None
        node.token_count = len(node.token_ids) if node.token_ids is not None else self.count_tokens(head)
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
        """Per token of the path: the sampling log-prob of generated tokens, 0.0 elsewhere."""
        out: list[float] = []
        for n in self._segment(node, start):
            out.extend(n.logprobs if n.logprobs is not None else [0.0] * n.token_count)
        return out

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if not n.children]

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
            attrs = n.to_dict()
            del attrs["id"], attrs["children"]
            g.add_node(n.id, **attrs)
        for n in self.nodes:
            for rank, c in enumerate(n.children):
                g.add_edge(n.id, c, order=rank)
        return g

    def __repr__(self) -> str:
        s = self.stats()
        return f"SearchTree(nodes={s['nodes']}, depth={s['depth']}, accepted={s['accepted']})"
