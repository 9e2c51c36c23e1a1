"""The retriever server, for real on 127.0.0.1, and the HTTP client's checks of what servers answer."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from retrosearch.rl.retrievers import HttpRetriever, Passage, RetrieverError, read_corpus  # noqa: E402

CORPUS = Path(__file__).parent / "fixtures" / "rl_corpus.jsonl"
KNOWN = [("Which tower in Paris was completed in 1889?", "p01"), ("highest mountain above sea level", "p05")]


@pytest.fixture(scope="module")
def bm25():
    from retrosearch.rl.retrievers import BM25Retriever

    return BM25Retriever.build(read_corpus(CORPUS), show_progress=False)


@pytest.fixture(scope="module")
def server(bm25):
    from retrosearch.rl.retrievers.server import BackgroundServer

    with BackgroundServer(bm25, max_k=5) as s:
        yield s


def post(server, path: str, **kw) -> httpx.Response:
    return httpx.post(server.url + path, timeout=10, **kw)


# --- the server ----------------------------------------------------------------------------------------------


def test_retrieve_answers_in_search_r1_format_with_scores(server, bm25) -> None:
    r = post(server, "/retrieve", json={"queries": [q for q, _ in KNOWN], "topk": 2, "return_scores": True})
    assert r.status_code == 200
    result = r.json()["result"]
    assert len(result) == 2 and [len(row) for row in result] == [2, 2]
    top = result[0][0]
    assert set(top) == {"document", "score"} and set(top["document"]) == {"id", "contents"}
    assert [row[0]["document"]["id"] for row in result] == [pid for _, pid in KNOWN]
    assert top["document"]["contents"].startswith('"Eiffel Tower"\nThe Eiffel Tower is')
    assert top["score"] == pytest.approx(bm25.retrieve([KNOWN[0][0]], 1)[0][0].score)


def test_retrieve_without_scores_gives_plain_documents_and_the_default_topk(server) -> None:
    r = post(server, "/retrieve", json={"queries": ["chess king"]})
    (row,) = r.json()["result"]
    assert len(row) == 3  # the server's default topk
    assert set(row[0]) == {"id", "contents"} and row[0]["id"] == "p11"


def test_queries_answers_in_r1_searcher_format(server) -> None:
    r = post(server, "/queries", json={"queries": ["Apollo Moon landing", "volcano lava"], "k": 1})
    assert r.json() == {
        "answers": [
            [
                '"Apollo 11"\nApollo 11 was the 1969 spaceflight in which Neil Armstrong and Buzz Aldrin first walked on '
                "the Moon."
            ],
            [
                '"Volcano"\nA volcano is a rupture in the crust of a planet through which lava, ash and gases escape '
                "from a magma chamber."
            ],
        ]
    }


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"topk": 2}, 422, "queries: Field required"),
        ({"queries": "chess"}, 422, "queries: Input should be a valid list"),
        ({"queries": ["chess", 7]}, 422, "queries.1: Input should be a valid string"),
        ({"queries": ["chess"], "topk": 0}, 422, "topk: Input should be greater than or equal to 1"),
        ({"queries": ["chess"], "topk": "2"}, 422, "topk: Input should be a valid integer"),
        (
            {"queries": ["chess"], "return_scores": "yes"},
            422,
            "return_scores: Input should be a valid boolean",
        ),
        ([1, 2], 422, "body: Input should be a valid dictionary"),
        ({"queries": ["chess"], "topk": 6}, 413, "topk 6 is over this server's limit of 5"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_reason_and_the_server_keeps_serving(
    server, body, status, reason
):
    r = post(server, "/retrieve", json=body)
    assert r.status_code == status
    assert (r.json().get("error") or r.json()["detail"]).startswith(reason)
    assert (
        post(server, "/retrieve", json={"queries": ["chess"], "topk": 1}).json()["result"][0][0]["id"]
        == "p11"
    )


def test_a_body_that_is_not_json_gets_a_422(server) -> None:
    r = post(server, "/retrieve", content=b"{queries: [", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "body: JSON decode error"
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}


def test_a_failing_retriever_gives_a_500_and_the_server_survives() -> None:
    from retrosearch.rl.retrievers.server import BackgroundServer

    class Flaky:
        calls = 0

        def retrieve(self, queries, k):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise OSError("disk went away")
            return [[Passage("x", "T", q)] for q in queries]

    with BackgroundServer(Flaky()) as s:
        r = post(s, "/retrieve", json={"queries": ["a"]})
        assert r.status_code == 500 and r.json()["detail"] == "retriever failed: OSError: disk went away"
        assert post(s, "/retrieve", json={"queries": ["b"]}).json() == {
            "result": [[{"id": "x", "contents": '"T"\nb'}]]
        }


# --- the client against the real server ----------------------------------------------------------------------


def test_http_client_gives_what_the_retriever_gives(server, bm25) -> None:
    queries = [q for q, _ in KNOWN] + ["queen bee colony"]
    with HttpRetriever(server.url + "/retrieve") as client:
        assert client.retrieve(queries, 3) == bm25.retrieve(queries, 3)
        assert client.retrieve([], 3) == []


def test_http_client_speaks_r1_searcher_too(server, bm25) -> None:
    queries = [q for q, _ in KNOWN]
    with HttpRetriever(server.url, api="r1-searcher") as client:
        got = client.retrieve(queries, 2)
    want = bm25.retrieve(queries, 2)
    assert [[(p.title, p.text) for p in row] for row in got] == [
        [(p.title, p.text) for p in row] for row in want
    ]
    assert all(p.id == "" and p.score is None for row in got for p in row)


def test_http_client_reports_a_4xx_reason_without_retrying(server) -> None:
    with HttpRetriever(server.url, retries=3, backoff=5.0) as client:  # a retry would take >= 5 s
        t0 = time.monotonic()
        with pytest.raises(RetrieverError, match="HTTP 413: topk 9 is over this server's limit of 5"):
            client.retrieve(["chess"], 9)
        assert time.monotonic() - t0 < 4


def test_http_client_gives_up_on_a_closed_port_after_its_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpRetriever(f"http://127.0.0.1:{port}/retrieve", retries=2, backoff=0.0)
    with pytest.raises(RetrieverError, match=r"failed after 3 tries; last: ConnectError"):
        client.retrieve(["chess"], 1)


# --- the client's checks, against scripted answers -----------------------------------------------------------


def scripted(*answers):
    """An `httpx.Client` whose server answers each request with the next of `answers` (a Response or exception)."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def doc(i: str, score: float | None = 1.0) -> dict:
    d = {"id": i, "contents": f'"T{i}"\ntext {i}'}
    return d if score is None else {"document": d, "score": score}


def test_client_sends_search_r1_requests_and_reads_plain_and_scored_answers() -> None:
    client, seen = scripted(
        httpx.Response(200, json={"result": [[doc("1", 2.5), doc("2", 1.0)], []]}),
        httpx.Response(200, json={"result": [[doc("3", None)], [doc("4", None)]]}),
    )
    r = HttpRetriever("http://h:1/retrieve", client=client)
    assert r.retrieve(["a", "b"], 2) == [
        [Passage("1", "T1", "text 1", 2.5), Passage("2", "T2", "text 2", 1.0)],
        [],
    ]
    assert r.retrieve(["a", "b"], 2) == [[Passage("3", "T3", "text 3")], [Passage("4", "T4", "text 4")]]
    import json

    assert json.loads(seen[0].content) == {"queries": ["a", "b"], "topk": 2, "return_scores": True}
    assert str(seen[0].url) == "http://h:1/retrieve"


def test_client_sends_r1_searcher_requests_and_reads_string_passages() -> None:
    client, seen = scripted(
        httpx.Response(200, json={"answers": [['"Paris"\nCapital of France.', "no title"]]})
    )
    r = HttpRetriever("http://h:1", api="r1-searcher", client=client)
    assert r.retrieve(["q"], 3) == [[Passage("", "Paris", "Capital of France."), Passage("", "", "no title")]]
    assert str(seen[0].url) == "http://h:1/queries" and seen[0].content == b'{"queries":["q"],"k":3}'


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, text="<html>oops</html>"), "answer is not JSON: '<html>oops</html>'"),
        (httpx.Response(200, json={"results": []}), "expected an object with 'result', got keys ['results']"),
        (httpx.Response(200, json=[[]]), "expected an object with 'result', got list"),
        (httpx.Response(200, json={"result": [[]]}), "'result' must hold one list per query (2), got 1"),
        (httpx.Response(200, json={"result": [[], {}]}), "result[1]: expected a list of passages, got dict"),
        (httpx.Response(200, json={"result": [[doc("1")] * 3, []]}), "result[0]: 3 passages for k=2"),
        (httpx.Response(200, json={"result": [[], [{"document": {"id": "1"}}]]}), "result[1][0]: a document"),
        (
            httpx.Response(200, json={"result": [[], [{"document": doc("1", None), "score": "hi"}]]}),
            "'score' must",
        ),
        (httpx.Response(200, json={"result": [[7], []]}), "result[0][0]: expected a document object"),
        (httpx.Response(400, json={"error": "queries: Field required"}), "HTTP 400: queries: Field required"),
    ],
)
def test_client_rejects_a_malformed_answer_with_a_clear_error(answer, message) -> None:
    client, seen = scripted(answer)
    r = HttpRetriever("http://h:1/retrieve", client=client, retries=2, backoff=0.0)
    with pytest.raises(RetrieverError, match=re.escape(message)) as e:
        r.retrieve(["a", "b"], 2)
    assert str(e.value).startswith("POST http://h:1/retrieve (2 queries, k=2): ")
    assert len(seen) == 1  # malformed answers are not retried


def test_client_retries_5xx_and_timeouts_with_backoff_then_succeeds() -> None:
    client, seen = scripted(
        httpx.Response(503, text="busy"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json={"result": [[doc("1")]]}),
    )
    r = HttpRetriever("http://h:1/retrieve", client=client, retries=2, backoff=0.01)
    assert r.retrieve(["a"], 1) == [[Passage("1", "T1", "text 1", 1.0)]]
    assert len(seen) == 3


def test_client_reports_the_last_failure_when_retries_run_out() -> None:
    client, seen = scripted(httpx.Response(502, text="bad gateway"), httpx.ReadTimeout("slow"))
    r = HttpRetriever("http://h:1/retrieve", client=client, retries=3, backoff=0.0, timeout=2.5)
    with pytest.raises(RetrieverError, match=r"failed after 4 tries; last: no answer within 2.5 s"):
        r.retrieve(["a"], 1)
    assert len(seen) == 4


# --- the command ---------------------------------------------------------------------------------------------


def test_serve_retriever_command_needs_a_corpus_or_an_index(capsys) -> None:
    from retrosearch.cli import main

    assert main(["rl", "serve-retriever", "--kind", "bm25"]) == 1
    assert "needs --corpus" in capsys.readouterr().err


def test_serve_retriever_command_serves_for_real(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "retrosearch.cli", "rl", "serve-retriever", "--corpus", str(CORPUS)]
    cmd += ["--kind", "bm25", "--index", str(tmp_path / "idx"), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.2)
        with HttpRetriever(url + "/retrieve") as client:
            assert [row[0].id for row in client.retrieve([q for q, _ in KNOWN], 2)] == [
                pid for _, pid in KNOWN
            ]
        assert post(type("S", (), {"url": url}), "/retrieve", json={"queries": 3}).status_code == 422
        assert (tmp_path / "idx" / "retriever.json").is_file()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "serving a bm25 retriever over 12 passages" in err
