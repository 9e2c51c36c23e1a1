"""A retriever server on FastAPI + uvicorn: Search-R1's `POST /retrieve` and R1-Searcher's `POST /queries`."""

import socket
import threading
import time
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from retrosearch.rl.retrievers.base import Passage, Retriever


class RetrieveRequest(BaseModel):
    """Search-R1 / verl's request body."""

    model_config = ConfigDict(strict=True)

    queries: list[str]
    topk: int | None = Field(default=None, ge=1)
    return_scores: bool = False


class QueriesRequest(BaseModel):
    """R1-Searcher's request body."""

    model_config = ConfigDict(strict=True)

    queries: list[str]
    k: int | None = Field(default=None, ge=1)


def create_app(
    retriever: Retriever, *, default_k: int = 3, max_k: int = 100, max_queries: int = 4096
) -> FastAPI:
    """A FastAPI app answering retrieval requests with `retriever`.

    Endpoints:
        `POST /retrieve` (Search-R1 / verl): `{"queries": [...], "topk": k, "return_scores": bool}` ->
        `{"result": [[{"document": {"id", "contents"}, "score"}, ...], ...]}` (documents alone without scores).
        `POST /queries` (R1-Searcher): `{"queries": [...], "k": k}` -> `{"answers": [["\\"Title\\"\\ntext", ...], ...]}`.
        `GET /health`: `{"status": "ok"}`.

    A malformed request gets a 422 whose `error` says, in one line, which field is wrong and why; too many
    queries or too large a `k` get a 413; a failure of the retriever a 500. The server goes on serving.

    Args:
        retriever: Any `Retriever`; calls are serialized (one batch at a time).
        default_k: Passages per query when the request gives no `topk` / `k`.
        max_k: The largest `topk` / `k` accepted.
        max_queries: The most queries accepted in one request.
    """
    app = FastAPI(title="retrosearch retriever", version="1")
    lock = threading.Lock()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(
            status_code=422, content={"error": _one_line(errors), "detail": _jsonable(errors)}
        )

    def run(queries: list[str], k: int | None) -> list[list[Passage]]:
        k = default_k if k is None else k
        if k > max_k:
            raise HTTPException(413, detail=f"topk {k} is over this server's limit of {max_k}")
        if len(queries) > max_queries:
            raise HTTPException(
                413, detail=f"{len(queries)} queries is over this server's limit of {max_queries}"
            )
        try:
            with lock:
                results = retriever.retrieve(queries, k)
        except Exception as e:  # the server must outlive a failing batch
            raise HTTPException(500, detail=f"retriever failed: {type(e).__name__}: {e}") from e
        return results

    @app.post("/retrieve")
    def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        results = run(body.queries, body.topk)
        if body.return_scores:
            return {
                "result": [[{"document": _document(p), "score": p.score} for p in row] for row in results]
            }
        return {"result": [[_document(p) for p in row] for row in results]}

    @app.post("/queries")
    def queries(body: QueriesRequest) -> dict[str, Any]:
        return {"answers": [[p.contents for p in row] for row in run(body.queries, body.k)]}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    return app


def serve(
    retriever: Retriever, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", **app_kw: Any
) -> None:
    """Serve `retriever` until interrupted (`app_kw` goes to `create_app`)."""
    import uvicorn

    uvicorn.run(create_app(retriever, **app_kw), host=host, port=port, log_level=log_level)


class BackgroundServer:
    """A retriever server on a thread of this process, for tests and notebooks.

    `with BackgroundServer(retriever) as server: HttpRetriever(server.url + "/retrieve")...`; `port=0` (the
    default) takes a free port.
    """

    def __init__(
        self,
        retriever: Retriever,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        **app_kw: Any,
    ) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(create_app(retriever, **app_kw), log_level=log_level)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        """`http://host:port` (no path)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"retriever server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _document(p: Passage) -> dict[str, str]:
    return {"id": p.id, "contents": p.contents}


def _one_line(errors: Any) -> str:
    """`"topk: Input should be greater than or equal to 1; ..."` from pydantic's error list."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if err.get("type") == "json_invalid":
            where = "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _jsonable(errors: Any) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(x) for x in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
