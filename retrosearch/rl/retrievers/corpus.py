"""Passage corpora: jsonl rows `{id, title, text}` or Search-R1's `{id, contents}`, and an on-disk passage store."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from retrosearch.rl.retrievers.base import Passage

#: File names of a saved passage store inside an index folder.
PASSAGES_FILE = "passages.jsonl"
OFFSETS_FILE = "passages.offsets.npy"
#: The file that marks a folder as a saved retriever index and holds its kind and settings.
META_FILE = "retriever.json"


def parse_contents(contents: str) -> tuple[str, str]:
    """Split Search-R1's `'"Title"\\ntext'` into `(title, text)`; a single line is all text, untitled.

    Search-R1 takes the first line as the title whether or not it is quoted; the quotes are dropped.
    """
    head, sep, rest = contents.partition("\n")
    if not sep:
        return "", contents
    title = head.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return title, rest


def passage_from_row(row: Any, where: str = "row") -> Passage:
    """One corpus row as a `Passage`; `where` (e.g. `"corpus.jsonl:12"`) prefixes any error.

    Accepted rows: `{"id", "title", "text"}` (`title` optional) or `{"id", "contents"}`. Ids may be strings or
    integers (kept as strings).

    Raises:
        ValueError: the row is not an object, or a field is missing or of the wrong type.
    """
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object with id and text (or contents), got {_kind(row)}")
    pid = row.get("id", row.get("_id"))
    if pid is None:
        raise ValueError(f"{where}: missing field 'id'")
    if isinstance(pid, bool) or not isinstance(pid, (str, int)):
        raise ValueError(f"{where}: field 'id' must be a string or an integer, got {_kind(pid)}")
    if "contents" in row and "text" not in row:
        contents = row["contents"]
        if not isinstance(contents, str):
            raise ValueError(f"{where}: field 'contents' must be a string, got {_kind(contents)}")
        title, text = parse_contents(contents)
        return Passage(id=str(pid), title=title, text=text)
    if "text" not in row:
        raise ValueError(f"{where}: missing field 'text' (or Search-R1's 'contents')")
    text, title = row["text"], row.get("title", "")
    if not isinstance(text, str):
        raise ValueError(f"{where}: field 'text' must be a string, got {_kind(text)}")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise ValueError(f"{where}: field 'title' must be a string, got {_kind(title)}")
    return Passage(id=str(pid), title=title, text=text)


def iter_corpus(path: str | Path) -> Iterator[Passage]:
    """The passages of a jsonl corpus file, in file order (blank lines skipped).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not JSON or not a valid row (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {path}: no such file")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            yield passage_from_row(row, where)


def read_corpus(path: str | Path) -> list[Passage]:
    """All passages of a jsonl corpus file; duplicate ids are an error naming the line.

    Raises:
        ValueError: a bad row, a duplicate id or an empty corpus.
    """
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for p in iter_corpus(path):
        if p.id in seen:
            raise ValueError(
                f"{path}: passage {len(passages) + 1} repeats id {p.id!r} (first seen at row {seen[p.id]})"
            )
        seen[p.id] = len(passages) + 1
        passages.append(p)
    if not passages:
        raise ValueError(f"corpus {path}: no passages")
    return passages


def save_passages(passages: Iterable[Passage], directory: str | Path) -> int:
    """Write `passages` to `directory` as a jsonl file plus its line offsets; returns how many were written."""
    import numpy as np

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    offsets = [0]
    with (directory / PASSAGES_FILE).open("wb") as f:
        for p in passages:
            line = json.dumps({"id": p.id, "title": p.title, "text": p.text}, ensure_ascii=False) + "\n"
            offsets.append(offsets[-1] + f.write(line.encode("utf-8")))
    np.save(directory / OFFSETS_FILE, np.asarray(offsets, dtype=np.int64))
    return len(offsets) - 1


class PassageStore(Sequence[Passage]):
    """The passages saved by `save_passages`, read from disk on access (offsets memory-mapped).

    Reads use `os.pread`, so one store can serve many threads at once.
    """

    def __init__(self, directory: str | Path) -> None:
        import numpy as np

        directory = Path(directory)
        for name in (PASSAGES_FILE, OFFSETS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"index {directory}: missing {name} (not a saved retriever index?)")
        self._offsets = np.load(directory / OFFSETS_FILE, mmap_mode="r")
        self._fd = os.open(directory / PASSAGES_FILE, os.O_RDONLY)
        self._path = directory / PASSAGES_FILE

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> Passage: ...
    @overload
    def __getitem__(self, i: slice) -> list[Passage]: ...
    def __getitem__(self, i: int | slice) -> Passage | list[Passage]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"passage {i} out of range for {n} passages")
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        row = json.loads(os.pread(self._fd, end - start, start))
        return passage_from_row(row, f"{self._path}: passage {i}")

    def close(self) -> None:
        """Release the file handle."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown may have torn `os` down already
            self.close()


def write_meta(directory: str | Path, meta: dict[str, Any]) -> None:
    """Write an index folder's settings (`meta["kind"]` names the retriever)."""
    (Path(directory) / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def read_meta(directory: str | Path, kind: str) -> dict[str, Any]:
    """The settings of a saved index of `kind` in `directory`.

    Raises:
        ValueError: `directory` holds no index of that kind.
    """
    found = saved_kind(directory)
    if found != kind:
        what = f"a {found} index" if found else f"no readable {META_FILE}"
        raise ValueError(f"index {directory}: expected a saved {kind} index, found {what}")
    return json.loads((Path(directory) / META_FILE).read_text())


def saved_kind(directory: str | Path) -> str | None:
    """The kind of retriever index saved in `directory` (`None` when it holds none)."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return meta.get("kind") if isinstance(meta, dict) else None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
