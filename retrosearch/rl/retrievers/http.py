"""A client for retriever servers: Search-R1 / verl's `POST /retrieve` and R1-Searcher's `POST /queries`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from retrosearch.rl.retrievers.base import Passage, check_queries
from retrosearch.rl.retrievers.corpus import parse_contents

#: The endpoint path of each wire format, appended to a base URL that has none.
API_PATHS = {"search-r1": "/retrieve", "r1-searcher": "/queries"}


class RetrieverError(RuntimeError):
    """A retrieval request failed or its answer was malformed (the message names the request and the fault)."""


class HttpRetriever:
    """Sends each batch of queries to a retriever server in one request and checks the answer.

    Search-R1 (`api="search-r1"`): `{"queries": [...], "topk": k, "return_scores": true}` ->
    `{"result": [[{"document": {"id", "contents"}, "score"}, ...], ...]}`; plain document lists (no scores) are
    accepted too. R1-Searcher (`api="r1-searcher"`): `{"queries": [...], "k": k}` -> `{"answers": [[passage, ...],
    ...]}`, a passage being a string (Search-R1's `"Title"\\ntext` form or plain text) or a document object.

    Timeouts, connection errors and 5xx/429 answers are retried with exponential backoff; a 4xx answer or a
    malformed body fails at once.
    """

    def __init__(
        self,
        url: str,
        *,
        api: str = "search-r1",
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        return_scores: bool = True,
        client: Any = None,
    ) -> None:
        """Args:
        url: The endpoint (e.g. `http://127.0.0.1:8000/retrieve`), or a base URL to which the API's path is added.
        api: `"search-r1"` or `"r1-searcher"`.
        timeout: Seconds per request.
        retries: Further tries after a retryable failure.
        backoff: Seconds before the first retry; doubled each time.
        return_scores: Ask a Search-R1 server for scores.
        client: An `httpx.Client` to send through (one is made and owned otherwise).
        """
        if api not in API_PATHS:
            raise ValueError(f"api must be one of {list(API_PATHS)}, got {api!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"retriever url must look like http://host:port/path, got {url!r}")
        if parts.path in ("", "/"):
            url = url.rstrip("/") + API_PATHS[api]
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")
        self.url = url
        self.api = api
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.return_scores = return_scores
        self._client = client
        self._owns_client = client is None

    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """Per query, the server's top `k` passages, best first; one request for the whole batch.

        Raises:
            RetrieverError: the request failed after its retries, or the answer is malformed.
        """
        queries = check_queries(queries, k)
        if not queries or k == 0:
            return [[] for _ in queries]
        if self.api == "search-r1":
            payload: dict[str, Any] = {"queries": queries, "topk": k, "return_scores": self.return_scores}
        else:
            payload = {"queries": queries, "k": k}
        what = f"POST {self.url} ({len(queries)} queries, k={k})"
        body = self._post(payload, what)
        key = "result" if self.api == "search-r1" else "answers"
        if not isinstance(body, dict) or key not in body:
            got = f"keys {sorted(body)}" if isinstance(body, dict) else type(body).__name__
            raise RetrieverError(f"{what}: expected an object with {key!r}, got {got}")
        lists = body[key]
        if not isinstance(lists, list) or len(lists) != len(queries):
            n = len(lists) if isinstance(lists, list) else type(lists).__name__
            raise RetrieverError(f"{what}: {key!r} must hold one list per query ({len(queries)}), got {n}")
        out = []
        for qi, items in enumerate(lists):
            where = f"{what}: {key}[{qi}]"
            if not isinstance(items, list):
                raise RetrieverError(f"{where}: expected a list of passages, got {type(items).__name__}")
            if len(items) > k:
                raise RetrieverError(f"{where}: {len(items)} passages for k={k}")
            out.append([_passage(item, f"{where}[{j}]") for j, item in enumerate(items)])
        return out

    def _post(self, payload: dict[str, Any], what: str) -> Any:
        """The decoded JSON answer to `payload`, retrying what may pass."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, json=payload, timeout=self.timeout)
            except httpx.TimeoutException:
                failure = f"no answer within {self.timeout:g} s"
                continue
            except httpx.TransportError as e:
                failure = f"{type(e).__name__}: {e}"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                failure = f"HTTP {response.status_code}: {_reason(response)}"
                continue
            if response.status_code >= 400:
                raise RetrieverError(f"{what}: HTTP {response.status_code}: {_reason(response)}")
            try:
                return response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RetrieverError(f"{what}: answer is not JSON: {response.text[:200]!r}") from None
        raise RetrieverError(f"{what}: failed after {self.retries + 1} tries; last: {failure}")

    def close(self) -> None:
        """Close the HTTP client this retriever made."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    def __enter__(self) -> HttpRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _passage(item: Any, where: str) -> Passage:
    """One answer entry as a `Passage`: `{"document": doc, "score"}`, a bare document, or a string."""
    score = None
    if isinstance(item, dict) and "document" in item:
        score = item.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise RetrieverError(f"{where}: 'score' must be a number, got {type(score).__name__}")
        item = item["document"]
    if isinstance(item, str):
        title, text = parse_contents(item)
        return Passage(id="", title=title, text=text, score=score)
    if not isinstance(item, dict):
        raise RetrieverError(f"{where}: expected a document object or a string, got {type(item).__name__}")
    pid = item.get("id", "")
    if "contents" in item and isinstance(item["contents"], str):
        title, text = parse_contents(item["contents"])
    elif isinstance(item.get("text"), str):
        title, text = item.get("title") or "", item["text"]
        if not isinstance(title, str):
            raise RetrieverError(f"{where}: 'title' must be a string, got {type(title).__name__}")
    else:
        raise RetrieverError(
            f"{where}: a document needs a string 'contents' (or 'text'), got keys {sorted(item)}"
        )
    if (
        score is None
        and isinstance(item.get("score"), (int, float))
        and not isinstance(item.get("score"), bool)
    ):
        score = item["score"]
    return Passage(id=str(pid), title=title, text=text, score=None if score is None else float(score))


def _reason(response: Any) -> str:
    """The server's stated reason (`detail` / `error` of a JSON body), else the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if key in body:
                return str(body[key])[:300]
    return str(body)[:200]
