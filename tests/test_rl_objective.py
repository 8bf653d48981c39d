"""GRPO objective: hand-computed values of every term, and the batch objective's gradient is the
same for any micro-batch size, checked in float64 on the tiny model against a plain reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from longhorizon.core import RunProvenance, Status, Trajectory, Verdict
from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.core.tokens import ModelCall, call_sequence
from longhorizon.core.trajectory import Step
from longhorizon.rl.config import GRPOObjective, RLConfig
from longhorizon.rl.objective import (
    clip_fractions,
    clipped_surrogate,
    entropy_from_logits,
    group_advantages,
    k3_kl,
    papo_advantages,
    token_scales,
    truncated_is_weights,
)
from longhorizon.rl.samples import RLSample, group_samples, rollout_reward, sequence_logprobs
from longhorizon.rl.shaping import Shaping, shaping_terms
from longhorizon.rl.step import accumulate_gradients

LOG = math.log


def test_group_advantages_normalise_over_valid_samples() -> None:
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64), eps=0.0)
    # mean 0.5, unbiased std sqrt(1/3): +-0.5 / 0.57735
    assert adv.tolist() == pytest.approx([0.866025, -0.866025, -0.866025, 0.866025], abs=1e-6)
    rewards = torch.tensor([1.0, 0.0, 7.0, 0.0], dtype=torch.float64)
    valid = torch.tensor([True, True, False, True])
    # the invalid sample's 7 is ignored: mean 1/3, std sqrt(1/3); it gets 0
    adv = group_advantages(rewards, valid, eps=0.0)
    assert adv.tolist() == pytest.approx([1.154701, -0.577350, 0.0, -0.577350], abs=1e-6)
    centred = group_advantages(rewards, valid, scale_by_std=False)  # Dr. GRPO
    assert centred.tolist() == pytest.approx([2 / 3, -1 / 3, 0.0, -1 / 3])


def test_all_equal_or_single_groups_have_zero_advantage() -> None:
    for rewards in ([1.0, 1.0, 1.0], [0.0, 0.0], [0.3]):
        assert group_advantages(torch.tensor(rewards)).tolist() == [0.0] * len(rewards)
    one_valid = group_advantages(torch.tensor([1.0, 0.0]), torch.tensor([True, False]))
    assert one_valid.tolist() == [0.0, 0.0]


def test_papo_adds_the_process_advantage_of_failed_samples_only() -> None:
    outcome = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    process = torch.tensor([1.0, 0.2, 0.6, 0.9, 0.0], dtype=torch.float64)
    valid = torch.tensor([True, True, True, False, True])  # sample 3 is invalid
    adv = papo_advantages(outcome, process, valid, eps=0.0)
    # A_out over the 4 valid: mean 1/4, std sqrt(1/4) = 0.5 -> 1.5, -0.5, -0.5, 0, -0.5
    # A_proc over the valid failures {0.2, 0.6, 0.0}: mean 4/15, std sqrt(0.0933..) = 0.305505
    proc = [(0.2 - 4 / 15) / 0.305505, (0.6 - 4 / 15) / 0.305505, (0.0 - 4 / 15) / 0.305505]
    want = [1.5, -0.5 + 0.5 * proc[0], -0.5 + 0.5 * proc[1], 0.0, -0.5 + 0.5 * proc[2]]
    assert adv.tolist() == pytest.approx(want, abs=1e-6)
    # all failed with equal process rewards: nothing to learn
    flat = papo_advantages(torch.zeros(3), torch.full((3,), 0.5))
    assert flat.tolist() == [0.0, 0.0, 0.0]
    # all failed, processes differ: only the process term remains
    only = papo_advantages(torch.zeros(2, dtype=torch.float64), torch.tensor([0.0, 1.0]), eps=0.0)
    assert only.tolist() == pytest.approx([-0.5 * 0.707107, 0.5 * 0.707107], abs=1e-6)


def test_clipped_surrogate_clips_each_side_only_where_it_binds() -> None:
    ratio = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.1], dtype=torch.float64)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0, 2.0], dtype=torch.float64)
    logp = torch.log(ratio).requires_grad_()
    old = torch.zeros(5, dtype=torch.float64)
    loss = clipped_surrogate(logp, old, adv, 0.2, 0.28)
    # r A vs clip(r, 0.8, 1.28) A: 1.5|1.28 -> 1.28; -0.5|-0.8 -> -0.8; -1.5|-1.28 -> -1.5;
    # 0.5|0.8 -> 0.5; 2.2|2.2 -> 2.2 (negated: the loss is minimised)
    assert loss.tolist() == pytest.approx([-1.28, 0.8, 1.5, -0.5, -2.2])
    loss.sum().backward()
    assert logp.grad is not None  # d(-r A)/dlogp = -r A where unclipped, 0 where clipped
    assert logp.grad.tolist() == pytest.approx([0.0, 0.0, 1.5, -0.5, -2.2])
    low, high = clip_fractions(logp.detach(), old, adv, 0.2, 0.28)
    assert low.tolist() == [0, 1, 0, 0, 0] and high.tolist() == [1, 0, 0, 0, 0]


def test_k3_kl_entropy_and_truncated_is_by_hand() -> None:
    kl = k3_kl(torch.tensor([LOG(0.5), LOG(0.3)]), torch.tensor([LOG(0.25), LOG(0.3)]))
    assert kl.tolist() == pytest.approx([0.5 + LOG(2) - 1, 0.0], abs=1e-7)  # exp(d) - d - 1
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [LOG(0.5), LOG(0.25), LOG(0.25), -1e4]])
    assert entropy_from_logits(logits).tolist() == pytest.approx([LOG(4), 1.5 * LOG(2)])
    trainer = torch.tensor([LOG(0.5), LOG(0.25), LOG(0.4)])
    engine = torch.tensor([LOG(0.25), LOG(0.5), LOG(0.4)])
    weights = truncated_is_weights(trainer, engine, cap=1.5)
    assert weights.tolist() == pytest.approx([1.5, 0.5, 1.0])  # 2 capped at 1.5


def test_token_scales_define_the_batch_aggregation() -> None:
    tokens = torch.tensor([2, 0, 3])
    assert token_scales(tokens, "token").tolist() == pytest.approx([0.2, 0.2, 0.2])
    assert token_scales(tokens, "sequence").tolist() == pytest.approx([1 / 4, 0.0, 1 / 6])
    with pytest.raises(ValueError, match="unknown aggregation"):
        token_scales(tokens, "prompt")


def test_sampler_logprobs_line_up_with_the_token_sequence() -> None:
    calls = [
        ModelCall(new_prompt_ids=[1, 2], completion_ids=[3, 4], completion_logprobs=[-0.3, -0.4]),
        ModelCall(
            parent=0,
            prefix_len=4,
            new_prompt_ids=[9],
            completion_ids=[5],
            completion_logprobs=[-0.5],
        ),
    ]
    seq = call_sequence(calls, 1)
    assert seq.input_ids == [1, 2, 3, 4, 9, 5] and seq.loss_mask == [0, 0, 1, 1, 0, 1]
    assert sequence_logprobs(calls, 1) == [0.0, 0.0, -0.3, -0.4, 0.0, -0.5]
    with pytest.raises(ValueError, match="no per-token logprobs"):
        sequence_logprobs([ModelCall(new_prompt_ids=[1], completion_ids=[2])], 0)


def _traj(i: int, passed: bool, status: Status = Status.COMPLETED) -> Trajectory:
    call = ModelCall(new_prompt_ids=[1, 2], completion_ids=[3 + i], completion_logprobs=[-1.0])
    return Trajectory(
        id=f"t{i}",
        task_id="p",
        domain="toy",
        calls=[call],
        status=status,
        verdicts=[Verdict(verifier="v", passed=passed)],
        provenance=RunProvenance(model="m", backend="hf"),
    )


def test_truncated_rollouts_are_masked_penalised_or_kept_by_config() -> None:
    group = [_traj(0, True), _traj(1, False), _traj(2, True, Status.TRUNCATED), _traj(3, False)]
    masked = group_samples(group, GRPOObjective(advantage_eps=1e-12))
    assert [s.trajectory_id for s in masked] == ["t0", "t1", "t3"]  # t2 carries no loss
    assert [s.advantage for s in masked] == pytest.approx([1.154701, -0.577350, -0.577350])
    assert masked[0].engine_logprobs == [0.0, 0.0, -1.0] and masked[0].loss_mask == [0, 0, 1]
    penalised = group_samples(group, GRPOObjective(overlong="penalise", overlong_penalty=-1.0))
    kept = group_samples(group, GRPOObjective(overlong="keep"))
    assert len(penalised) == len(kept) == 4
    assert penalised[2].advantage < penalised[1].advantage < penalised[0].advantage
    assert kept[2].advantage == pytest.approx(kept[0].advantage)


def test_bad_configs_fail_with_the_field_named() -> None:
    base = {"model": "tiny-llama", "tasks": ["x"]}
    with pytest.raises(ValueError, match="group_size"):
        RLConfig.model_validate({**base, "rollout": {"group_size": 1}})
    with pytest.raises(ValueError, match=r"temperature must be 1\.0"):
        RLConfig.model_validate({**base, "rollout": {"temperature": 0.7}})
    with pytest.raises(ValueError, match="aggregation"):
        RLConfig.model_validate({**base, "objective": {"aggregation": "domain"}})
    with pytest.raises(ValueError, match="clip_low"):
        RLConfig.model_validate({**base, "objective": {"clip_low": 1.0}})


# ---- the batch objective against a plain float64 reference ------------------------------------
def make_samples(vocab: int, n: int = 5, seed: int = 0) -> list[RLSample]:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        length = int(rng.integers(4, 9))
        ids = rng.integers(3, vocab, size=length).tolist()
        mask = [0, 0] + [int(m) for m in rng.random(length - 2) < 0.7]
        mask[-1] = 1
        engine = [float(rng.normal(-3, 0.5)) * m for m in mask]
        samples.append(RLSample("ab"[i % 2], ids, mask, engine, float(rng.normal())))
    return samples


def reference_loss(
    model: torch.nn.Module, ref: torch.nn.Module, samples: list[RLSample], obj: GRPOObjective
) -> torch.Tensor:
    """The objective written out sample by sample: no padding, no batch-level scale vectors."""
    per_sample, counts = [], []
    for s in samples:
        ids = torch.tensor([s.input_ids])
        logp_all = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
        with torch.no_grad():
            ref_all = torch.log_softmax(ref(input_ids=ids).logits[0, :-1], -1)
        terms = []
        for t in range(1, len(s.input_ids)):
            if not s.loss_mask[t]:
                continue
            tok = s.input_ids[t]
            lp, rlp = logp_all[t - 1, tok], ref_all[t - 1, tok]
            old = torch.tensor(s.engine_logprobs[t], dtype=torch.float64)
            w = torch.tensor(1.0, dtype=torch.float64)
            if obj.tis_cap is not None:
                old = lp.detach()
                w = torch.clamp(torch.exp(lp.detach() - s.engine_logprobs[t]), max=obj.tis_cap)
            r = torch.exp(lp - old)
            a = s.advantage
            surr = -torch.minimum(r * a, torch.clamp(r, 1 - obj.clip_low, 1 + obj.clip_high) * a)
            k3 = torch.exp(rlp - lp) - (rlp - lp) - 1
            ent = -(logp_all[t - 1].exp() * logp_all[t - 1]).sum()
            terms.append(w * surr + obj.kl_coef * k3 - obj.entropy_coef * ent)
        per_sample.append(torch.stack(terms).sum())
        counts.append(len(terms))
    if obj.aggregation == "token":
        return torch.stack(per_sample).sum() / sum(counts)
    return torch.stack([v / c for v, c in zip(per_sample, counts, strict=True)]).mean()


@pytest.fixture(scope="module")
def models(tiny_llama_path: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float64)
    ref = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float64)
    with torch.no_grad():  # a reference that differs from the policy: the KL term is not 0
        for p in ref.parameters():
            p.add_(
                0.02
                * torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype)
            )
    return policy, ref


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize(
    "objective",
    [
        GRPOObjective(kl_coef=0.1, entropy_coef=0.01),
        GRPOObjective(kl_coef=0.1, entropy_coef=0.01, aggregation="sequence"),
        GRPOObjective(kl_coef=0.1, entropy_coef=0.01, tis_cap=2.0),
    ],
    ids=["token", "sequence", "tis"],
)
def test_gradient_is_the_batch_objectives_for_any_micro_batch_size(
    models: tuple[torch.nn.Module, torch.nn.Module], objective: GRPOObjective
) -> None:
    policy, ref = models
    samples = make_samples(policy.config.vocab_size)
    policy.zero_grad(set_to_none=True)
    want_loss = reference_loss(policy, ref, samples, objective)
    want_loss.backward()
    want = _grads(policy)
    for size in (1, 3, len(samples)):  # 3: a ragged last micro-batch
        record = accumulate_gradients(policy, ref, samples, objective, size, pad_id=0)
        got = _grads(policy)
        assert record["loss"] == pytest.approx(float(want_loss.detach()), rel=1e-10, abs=1e-12)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)
        assert set(record["domains"]) == {"a", "b"}
        assert sum(m["samples"] for m in record["domains"].values()) == len(samples)


def _search_rollout(calls: list[tuple[int, str, str]], passed: bool) -> Trajectory:
    """A search rollout whose steps are (model turn, tool name, arguments)."""
    steps = [
        Step(
            index=i,
            call_index=turn,
            action=ToolCall(id=f"c{i}", function=FunctionCall(name=name, arguments=args)),
            observation="",
        )
        for i, (turn, name, args) in enumerate(calls)
    ]
    traj = _traj(0, passed)
    return traj.model_copy(update={"domain": "search", "steps": steps})


def test_search_shaping_adds_format_and_subtracts_rounds_and_repeats() -> None:
    shaping = Shaping(rounds_free=2, round_penalty=0.1, repeat_window=2, repeat_penalty=0.05)
    q = '{"query": "The  Airfaes", "k": 5}'
    calls = [
        (0, "search", q),
        (1, "search", '{"k": 5, "query": "the airfaes"}'),  # the same call: a repeat
        (2, "visit", '{"id": "The_Airfaes"}'),
        (3, "invalid", "{}"),  # a call the harness could not parse
        (3, "search", q),  # 2 calls back (the invalid one is skipped): a repeat
    ]
    terms = shaping_terms(_search_rollout(calls, True), shaping)
    assert (terms.rounds, terms.repeats, terms.parsed) == (4, 2, 0.8)
    assert terms.bonus == pytest.approx(0.1 * 0.8 - 0.1 * 2 - 0.1)
    objective = GRPOObjective(shaping=shaping)
    assert rollout_reward(_search_rollout(calls, True), objective) == pytest.approx(1 + terms.bonus)
    assert rollout_reward(_search_rollout(calls, False), objective) == pytest.approx(terms.bonus)
    capped = Shaping(repeat_window=4, repeat_penalty=0.5, repeat_cap=0.2, format_weight=0)
    assert shaping_terms(_search_rollout(calls, True), capped).bonus == pytest.approx(-0.2)
    no_calls = shaping_terms(_search_rollout([], True), shaping)
    assert (no_calls.rounds, no_calls.parsed, no_calls.bonus) == (0, 0.0, 0.0)
    assert rollout_reward(_traj(0, True), objective) == 1.0  # other domains: unshaped
    truncated = _search_rollout(calls, True).model_copy(update={"status": Status.TRUNCATED})
    assert rollout_reward(truncated, objective) is None  # masked stays masked
    with pytest.raises(ValueError, match="shaping makes the outcome non-binary"):
        GRPOObjective(advantage="papo", shaping=shaping)
