"""GRPO on TRL with a tiny random Llama (CPU, seconds): TRL's rollout_func contract, masking, learning direction."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from _rl_train_fixtures import (  # noqa: E402
    FakeRetriever,
    dataset,
    pp_policy,
    searching_policy,
    tiny_llama,
    tokenizer,
    train_config,
)

from retrosearch.backends.scripted import ScriptedBackend  # noqa: E402
from retrosearch.rl.train.trainer import build_trainer, masked_nll  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scripted_trainer(tok, tmp_path, policy=searching_policy, **kw):
    cfg = train_config(tmp_path, **kw)
    return build_trainer(
        cfg, model=tiny_llama(tok), tokenizer=tok, dataset=dataset(2), retriever=FakeRetriever(),
        backend=ScriptedBackend(policy, tokenizer=tok),
    )  # fmt: skip


def batch(trainer):
    trainer.current_gradient_accumulation_steps = 1  # set by `train()`; the loss reads it
    rows = [dict(trainer.train_dataset[i]) for i in (0, 0, 1, 1)]
    return trainer._generate_and_score_completions(rows)


def test_trl_passes_each_question_repeated_and_takes_one_completion_per_prompt(tok, tmp_path) -> None:
    trainer = scripted_trainer(tok, tmp_path, gradient_accumulation_steps=2, max_steps=1)
    seen, inner = [], trainer.rollout_func
    trainer.rollout_func = lambda prompts, t: (seen.append(list(prompts)), inner(prompts, t))[1]
    trainer.train()
    # per_device_train_batch_size 4 x steps_per_generation 2 = 8 prompts, each question twice in a row.
    assert [len(p) for p in seen] == [8]
    assert all(seen[0][i] == seen[0][i + 1] for i in range(0, 8, 2))
    assert trainer.state.log_history[0]["rewards/r1searcher_stage2/mean"] == pytest.approx(
        0.5
    )  # Paris 1, Rome 0


def test_documents_get_no_gradient(tok, tmp_path) -> None:
    trainer = scripted_trainer(tok, tmp_path)
    inputs = batch(trainer)
    env = (inputs["completion_mask"] * (1 - inputs["tool_mask"])).bool()  # document ids (and the EOS we add)
    own = (inputs["completion_mask"] * inputs["tool_mask"]).bool()
    assert env.any() and own.any() and inputs["advantages"].abs().sum() > 0
    model = trainer.model

    def loss_and_grad(where):
        # TRL scores tokens with a fused LM head, so the change goes on the last hidden state, which feeds the
        # logits of its own position only: position P + j - 1 scores completion token j.
        def hook(module, args, out):
            scale = torch.ones(out.shape[:2] + (1,))
            c = where.shape[1]
            scale[:, out.shape[1] - c - 1 : out.shape[1] - 1][where] = 5.0
            return out * scale

        handle = model.model.norm.register_forward_hook(hook)
        model.zero_grad()
        loss = trainer._compute_loss(model, inputs)
        loss.backward()
        handle.remove()
        return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    loss0, grad0 = loss_and_grad(torch.zeros_like(env))
    loss_env, grad_env = loss_and_grad(env)
    loss_own, grad_own = loss_and_grad(own)
    assert torch.equal(loss0, loss_env) and torch.allclose(grad0, grad_env, atol=0, rtol=0)
    assert not torch.allclose(grad0, grad_own)  # the same change on the model's own tokens does move it


def sequence_logps(model, inputs):
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attn = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
    lp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
    c = inputs["completion_ids"].shape[1]
    mask = (inputs["completion_mask"] * inputs["tool_mask"])[:, :]
    return (lp[:, -c:] * mask).sum(-1)


def test_a_grpo_step_with_a_scripted_reward_moves_the_policy_toward_the_rewarded_rollouts(
    tok, tmp_path
) -> None:
    trainer = scripted_trainer(
        tok, tmp_path, max_steps=1, learning_rate=0.05, grpo_args={"optim": "sgd"}
    )  # plain SGD: one small step follows the policy gradient (Adam's first step is sign-like)
    inputs = batch(trainer)
    rewarded = inputs["advantages"] > 0  # the Paris rollouts
    assert rewarded.tolist() == [True, False, True, False]
    before = sequence_logps(trainer.model, inputs)
    trainer.train()
    after = sequence_logps(trainer.model, inputs)
    assert (after - before)[rewarded].min() > 0 > (after - before)[~rewarded].max()


def test_live_backend_samples_from_the_current_weights(tok, tmp_path) -> None:
    # The trainer's own model samples (no backend given); temperature 1 and top-p 1, so the processed log-probs
    # the rollouts carry are the model's own log-softmax at the moment of sampling.
    def even_first(completions, completion_ids, **kw):
        return [float(ids[0] % 2 == 0) if ids else 0.0 for ids in completion_ids]

    cfg = train_config(
        tmp_path, max_steps=3, max_tokens_per_turn=3, max_completion_length=3, seed=1, num_generations=4,
        per_device_train_batch_size=8, top_p=1.0,
    )  # fmt: skip
    trainer = build_trainer(
        cfg, model=tiny_llama(tok), tokenizer=tok, dataset=dataset(8), retriever=FakeRetriever(),
        reward_funcs=[even_first],
    )  # fmt: skip
    inner, gaps, weights = trainer.rollout_func, [], []

    def checked(prompts, t):
        out = inner(prompts, t)
        weights.append(t.model.lm_head.weight.detach().clone())
        for p_ids, c_ids, lps in zip(out["prompt_ids"], out["completion_ids"], out["logprobs"]):
            ids = torch.tensor([p_ids + c_ids])
            with torch.no_grad():
                logits = t.model(input_ids=ids).logits[0, len(p_ids) - 1 : -1]
            own = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(c_ids)[:, None])[:, 0]
            gaps.append(float((own - torch.tensor(lps)).abs().max()))
        return out

    trainer.rollout_func = checked
    trainer.train()
    assert len(weights) == 3 and not torch.equal(weights[0], weights[-1])  # the weights moved between calls
    assert max(gaps) < 1e-4  # and every rollout was sampled from the weights of its moment


def test_masked_nll_counts_the_target_tokens_only() -> None:
    torch.manual_seed(0)
    logits, ids = torch.randn(2, 5, 11), torch.randint(0, 11, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 0, 0, 0]])
    expected = (
        -(torch.log_softmax(logits[0, 1], -1)[ids[0, 2]] + torch.log_softmax(logits[0, 2], -1)[ids[0, 3]]) / 2
    )
    assert masked_nll(logits, ids, mask) == pytest.approx(float(expected))
    changed = logits.clone()
    changed[0, 3:] += 7.0  # rows that score no target
    changed[1] += 3.0
    assert masked_nll(changed, ids, mask) == pytest.approx(float(expected))


def test_memorization_term_covers_the_rewritten_correct_retrieving_rollouts_only(tok, tmp_path) -> None:
    trainer = scripted_trainer(
        tok, tmp_path, policy=pp_policy, protocol="r1-searcher++", memorize_coef=0.1,
        rewards=("r1pp_answer", "r1pp_format", "r1pp_group"),
    )  # fmt: skip
    inputs = batch(trainer)
    rows = inputs["memorize_loss_mask"].sum(1)
    assert (rows > 0).tolist() == [
        True,
        False,
        True,
        False,
    ]  # searched and right: rewritten; recalled Rome: not
    i = 0
    ids = inputs["memorize_ids"][i][inputs["memorize_loss_mask"][i].bool()].tolist()
    text = tok.decode(ids[:-1])
    assert "<internal>" in text and "<document>" not in text and "<external>" not in text
    assert ids[-1] == tok.eos_token_id
    prompt = inputs["prompt_ids"][i][inputs["prompt_mask"][i].bool()].tolist()
    assert inputs["memorize_ids"][i][: len(prompt)].tolist() == prompt  # after the rollout's exact prompt
    assert inputs["memorize_loss_mask"][i][: len(prompt)].sum() == 0
    with torch.no_grad():
        total = trainer._compute_loss(trainer.model, inputs)
        trainer.memorize_coef = 0.0
        policy = trainer._compute_loss(trainer.model, inputs)
        keep = rows > 0
        nll = trainer.memorization_loss(trainer.model, inputs, keep)
    assert float(total - policy) == pytest.approx(0.1 * float(nll), rel=1e-5)
