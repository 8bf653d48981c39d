"""The distillation losses against direct references built from the full T x V logits.

Float64, tiny seeded shapes. References loop over positions in Python (obviously right, not fast):
full logits -> gather -> renormalise -> reverse KL, then the aggregation by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest
import torch
from torch import Tensor

from longhorizon.distill import (
    DistillLossConfig,
    StudentHead,
    TeacherSignal,
    TokenLayout,
    distill_loss,
    student_topk_ids,
    sva_loss,
)
from longhorizon.distill.aggregate import position_weights

F64 = torch.float64
EXCLUDED = (2,)
TOL = 1e-6


@dataclass
class Case:
    hidden: Tensor  # (N, T, H), requires grad
    weight: Tensor  # (V, H), requires grad
    teacher_full: Tensor  # (N, T, V) teacher logprobs
    top_ids: Tensor  # (N, T, K) with padding, an excluded id and an out-of-vocabulary id
    top_lp: Tensor
    mask: Tensor  # (N, T)
    domains: Tensor  # (N,)
    sampled: Tensor  # (N, T) the student's tokens

    @property
    def vocab(self) -> int:
        return self.weight.shape[0]

    def student(self) -> StudentHead:
        return StudentHead(hidden_NTH=self.hidden, lm_head_weight_VH=self.weight)

    def layout(self) -> TokenLayout:
        return TokenLayout(
            loss_mask_NT=self.mask, sample_domain_N=self.domains, sampled_ids_NT=self.sampled
        )

    def teacher(self, **extra: Tensor) -> TeacherSignal:
        sampled_lp = self.teacher_full.gather(-1, self.sampled.unsqueeze(-1)).squeeze(-1)
        return TeacherSignal(
            top_ids_NTK=self.top_ids,
            top_logprobs_NTK=self.top_lp,
            sampled_logprobs_NT=sampled_lp,
            logprobs_NTV=self.teacher_full,
            **extra,
        )


def make_case(
    seed: int, n: int = 4, t: int = 6, h: int = 5, v: int = 13, k: int = 5, pad: float = 0.2
) -> Case:
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, t, h, generator=g, dtype=F64).requires_grad_()
    weight = torch.randn(v, h, generator=g, dtype=F64).requires_grad_()
    teacher_full = torch.log_softmax(2 * torch.randn(n, t, v, generator=g, dtype=F64), -1)
    top_lp, top_ids = teacher_full.topk(k, dim=-1)
    padded = torch.rand(n, t, k, generator=g) < pad
    top_ids = top_ids.masked_fill(padded, -1)
    top_lp = top_lp.masked_fill(padded, float("nan"))  # garbage that must never be read
    top_ids[0, 0, 0], top_ids[0, 1, 1] = EXCLUDED[0], v + 3  # excluded and out-of-vocabulary
    top_ids[1, 2, :] = -1  # a position with no valid salient id: not trainable
    mask = (torch.rand(n, t, generator=g) < 0.75).to(torch.int64)
    mask[0, :2] = 1
    mask[1, 2] = 1
    mask[n - 1] = 0  # a fully masked sample: its domain (the only one of it) is not present
    domains = torch.tensor([0, 1, 0, 2][:n] + [0] * max(0, n - 4))
    sampled = torch.randint(0, v, (n, t), generator=g)
    return Case(hidden, weight, teacher_full, top_ids, top_lp, mask, domains, sampled)


# --------------------------------------------------------------------------- references


def valid_ids(row: Tensor, vocab: int) -> list[int]:
    return [i for i in row.tolist() if 0 <= i < vocab and i not in EXCLUDED]


def renorm_rkl(z: Tensor, teacher_lp: Tensor) -> Tensor:
    ps, pt = torch.softmax(z, -1), torch.softmax(teacher_lp, -1)
    return (ps * (ps.log() - pt.log())).sum()


def aggregate(per_pos: dict[tuple[int, int], Tensor], domains: Tensor, how: str) -> Tensor:
    """Token / sample / domain means, by hand."""
    samples: dict[int, list[Tensor]] = {}
    for (n, _), value in sorted(per_pos.items()):
        samples.setdefault(n, []).append(value)
    if how == "token":
        return torch.stack(list(per_pos.values())).mean()
    means = {n: torch.stack(vals).mean() for n, vals in samples.items()}
    if how == "sample":
        return torch.stack(list(means.values())).mean()
    by_domain: dict[int, list[Tensor]] = {}
    for n, m in means.items():
        by_domain.setdefault(int(domains[n]), []).append(m)
    return torch.stack([torch.stack(ms).mean() for ms in by_domain.values()]).mean()


def positions(case: Case) -> list[tuple[int, int]]:
    return [tuple(p) for p in case.mask.nonzero().tolist()]  # type: ignore[misc]


def ref_sva(case: Case, how: str, k: int | None = None) -> Tensor:
    logits = case.hidden @ case.weight.T
    per_pos = {}
    for n, t in positions(case):
        ids = valid_ids(case.top_ids[n, t], case.vocab)
        if k is not None:  # the k best valid ids by teacher logprob
            ids = sorted(ids, key=lambda i: -float(case.teacher_full[n, t, i]))[:k]
        if ids:
            per_pos[(n, t)] = renorm_rkl(logits[n, t, ids], case.teacher_full[n, t, ids])
    return aggregate(per_pos, case.domains, how)


def ref_full_kl_at(logits_V: Tensor, teacher_V: Tensor) -> Tensor:
    logp = torch.log_softmax(logits_V, -1)
    return (logp.exp() * (logp - teacher_V)).sum()


def ref_full(case: Case, how: str) -> Tensor:
    logits = case.hidden @ case.weight.T
    per_pos = {
        (n, t): ref_full_kl_at(logits[n, t], case.teacher_full[n, t]) for n, t in positions(case)
    }
    return aggregate(per_pos, case.domains, how)


def grads(loss: Tensor, case: Case) -> tuple[Tensor, Tensor]:
    gh, gw = torch.autograd.grad(loss, [case.hidden, case.weight], retain_graph=True)
    return gh, gw


def assert_same(a: Tensor, b: Tensor, case: Case, tol: float = TOL) -> None:
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert abs(float(a.detach()) - float(b.detach())) < tol, (float(a.detach()), float(b.detach()))
    for ga, gb in zip(grads(a, case), grads(b, case), strict=True):
        assert torch.allclose(ga, gb, atol=tol, rtol=0), (ga - gb).abs().max()


def cfg(**kw: object) -> DistillLossConfig:
    base: dict[str, object] = {"excluded_ids": EXCLUDED, "k": 5}
    base.update(kw)
    return DistillLossConfig(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- SVA


@pytest.mark.parametrize("how", ["token", "sample", "domain"])
def test_sva_matches_reference_with_gradients(how: str) -> None:
    case = make_case(0)
    out = sva_loss(case.student(), case.teacher(), case.layout(), cfg(aggregation=how))
    assert_same(out.loss, ref_sva(case, how), case)
    assert set(out.metrics.per_domain) == {0, 1}  # domain 2 has only a fully masked sample


def test_sva_with_k_equal_to_vocab_is_full_reverse_kl() -> None:
    case = make_case(1, v=9, k=9, pad=0.0)
    lp, ids = case.teacher_full.topk(9, dim=-1)
    case = replace(case, top_ids=ids, top_lp=lp)
    layout, student = case.layout(), case.student()
    sva = sva_loss(student, case.teacher(), layout, DistillLossConfig(k=9))
    full = distill_loss(student, case.teacher(), layout, DistillLossConfig(kind="full_rkl", k=9))
    assert_same(sva.loss, full.loss, case)
    assert_same(sva.loss, ref_full(case, "domain"), case)


def test_excluded_and_padding_ids_change_nothing() -> None:
    case = make_case(2)
    base = sva_loss(case.student(), case.teacher(), case.layout(), cfg())
    ids = case.top_ids
    invalid = (ids < 0) | (ids >= case.vocab) | torch.isin(ids, torch.tensor(EXCLUDED))
    assert invalid.any()
    noisy = case.top_lp.masked_fill(invalid, -0.01)  # now they would be the teacher's favourites
    other = sva_loss(
        case.student(), replace(case.teacher(), top_logprobs_NTK=noisy), case.layout(), cfg()
    )
    assert_same(base.loss, other.loss, case, tol=1e-12)


def test_teacher_candidates_beyond_k_are_truncated_by_teacher_logprob() -> None:
    case = make_case(3, k=7, pad=0.1)
    out = sva_loss(case.student(), case.teacher(), case.layout(), cfg(k=3, aggregation="sample"))
    assert_same(out.loss, ref_sva(case, "sample", k=3), case)


# --------------------------------------------------------------------------- aggregation


def per_sample_loss(case: Case, n: int) -> float:
    sub = replace(
        case,
        hidden=case.hidden[n : n + 1],
        top_ids=case.top_ids[n : n + 1],
        top_lp=case.top_lp[n : n + 1],
        mask=case.mask[n : n + 1],
        domains=case.domains[n : n + 1],
        sampled=case.sampled[n : n + 1],
        teacher_full=case.teacher_full[n : n + 1],
    )
    return sva_loss(sub.student(), sub.teacher(), sub.layout(), cfg()).metrics.loss


def duplicated(case: Case, n: int) -> Case:
    def dup(x: Tensor) -> Tensor:
        return torch.cat([x, x[n : n + 1]])

    hidden = dup(case.hidden.detach()).requires_grad_()
    return replace(
        case,
        hidden=hidden,
        top_ids=dup(case.top_ids),
        top_lp=dup(case.top_lp),
        mask=dup(case.mask),
        domains=dup(case.domains),
        sampled=dup(case.sampled),
        teacher_full=dup(case.teacher_full),
    )


def test_domain_objective_is_mean_of_means_and_long_samples_do_not_dominate() -> None:
    case = make_case(4, n=3, t=8, pad=0.0)
    case.mask[0] = 1  # sample 0 (domain 0) is long
    case.mask[1] = 0
    case.mask[1, 3] = 1  # sample 1 (domain 1): one token
    case.mask[2] = 0
    case.mask[2, :2] = 1  # sample 2 (domain 0): two tokens
    case.domains = torch.tensor([0, 1, 0])
    l0, l1, l2 = (per_sample_loss(case, i) for i in range(3))
    got = sva_loss(case.student(), case.teacher(), case.layout(), cfg()).metrics.loss
    assert got == pytest.approx(0.5 * ((l0 + l2) / 2 + l1), abs=1e-12)

    twice = duplicated(case, 0)  # the long domain-0 sample, twice
    out = sva_loss(twice.student(), twice.teacher(), twice.layout(), cfg())
    assert out.metrics.loss == pytest.approx(0.5 * ((2 * l0 + l2) / 3 + l1), abs=1e-12)
    assert out.metrics.per_domain[1].loss == pytest.approx(l1, abs=1e-12)
    # each present domain keeps total weight 1/|D_B| however long or repeated its samples are
    rows = twice.mask.reshape(-1).nonzero().squeeze(-1)
    w = position_weights(rows // twice.mask.shape[1], twice.domains, "domain", F64)
    per_domain = torch.zeros(2, dtype=F64).index_add_(0, w.domain_index_P, w.objective_P)
    assert torch.allclose(per_domain, torch.full((2,), 0.5, dtype=F64))
    assert w.samples_per_domain == [3, 1]


def test_domain_weights_give_a_weighted_mean_of_domain_means() -> None:
    case = make_case(4, n=3, t=8, pad=0.0)
    case.mask[2, :2] = 1  # make_case masks the last sample fully
    case.domains = torch.tensor([0, 1, 0])
    l0, l1, l2 = (per_sample_loss(case, i) for i in range(3))
    weighted = replace(case.layout(), domain_weights_D=torch.tensor([1.0, 0.25], dtype=F64))
    got = sva_loss(case.student(), case.teacher(), weighted, cfg()).metrics.loss
    assert got == pytest.approx((1.0 * (l0 + l2) / 2 + 0.25 * l1) / 1.25, abs=1e-12)
    # a weight of 0 drops the domain; its monitors are still reported
    dropped = replace(case.layout(), domain_weights_D=torch.tensor([1.0, 0.0], dtype=F64))
    out = sva_loss(case.student(), case.teacher(), dropped, cfg())
    assert out.metrics.loss == pytest.approx((l0 + l2) / 2, abs=1e-12)
    assert out.metrics.per_domain[1].loss == pytest.approx(l1, abs=1e-12)
    # all ones is the spec's unweighted objective
    ones = replace(case.layout(), domain_weights_D=torch.ones(2, dtype=F64))
    plain = sva_loss(case.student(), case.teacher(), case.layout(), cfg()).metrics.loss
    assert sva_loss(case.student(), case.teacher(), ones, cfg()).metrics.loss == pytest.approx(
        plain, abs=1e-12
    )


def test_bad_domain_weights_are_rejected() -> None:
    case = make_case(4, n=3, t=8, pad=0.0)
    case.domains = torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match="a weight for every domain id"):
        replace(case.layout(), domain_weights_D=torch.ones(1))
    with pytest.raises(ValueError, match="at least one > 0"):
        replace(case.layout(), domain_weights_D=torch.zeros(2))
    with pytest.raises(ValueError, match=">= 0"):
        replace(case.layout(), domain_weights_D=torch.tensor([1.0, -1.0]))


def test_fully_masked_batch_and_positions_without_support_give_no_nan() -> None:
    case = make_case(5)
    case.mask.zero_()
    for kind in ["sva", "full_rkl", "sampled_token", "sva_tail"]:
        out = distill_loss(case.student(), case.teacher(), case.layout(), cfg(kind=kind))
        assert out.metrics.loss == 0.0 and out.metrics.per_domain == {}
        gh, gw = grads(out.loss, case)
        assert not gh.any() and not gw.any()
    case = make_case(5)
    case.top_ids[case.mask.bool()] = -1  # every trainable position lost its support
    case.top_ids[0, 0, 1] = 4  # except one
    out = sva_loss(case.student(), case.teacher(), case.layout(), cfg())
    assert out.metrics.n_tokens == 1 and list(out.metrics.per_domain) == [0]
    assert all(torch.isfinite(g).all() for g in grads(out.loss, case))


# --------------------------------------------------------------------------- coverage


def test_coverage_matches_full_softmax_reference() -> None:
    case = make_case(6)
    config = cfg(position_chunk=2, vocab_chunk=3)
    out = sva_loss(case.student(), case.teacher(), case.layout(), config)
    probs = torch.softmax(case.hidden @ case.weight.T, -1).detach()
    rho = {}
    for n, t in positions(case):
        rho[(n, t)] = probs[n, t, valid_ids(case.top_ids[n, t], case.vocab)].sum()
    # SVA trains (and monitors) only positions with a salient id; (1, 2) has none
    on_support = {p: r for p, r in rho.items() if p != (1, 2)}
    for d, metrics in out.metrics.per_domain.items():
        in_d = {p: r for p, r in on_support.items() if int(case.domains[p[0]]) == d}
        expected = float(aggregate(in_d, case.domains, "sample"))
        assert metrics.coverage == pytest.approx(expected, abs=1e-12)
    assert out.metrics.coverage == pytest.approx(
        float(aggregate(on_support, case.domains, "domain"))
    )
    tail = distill_loss(case.student(), case.teacher(), case.layout(), cfg(kind="sva_tail"))
    assert tail.metrics.coverage == pytest.approx(out.metrics.coverage, abs=1e-12)
    # kinds that train every masked position report rho = 0 where the teacher gave no valid id
    for kind in ["full_rkl", "sampled_token"]:
        other = distill_loss(case.student(), case.teacher(), case.layout(), cfg(kind=kind))
        expected = float(aggregate(rho, case.domains, "domain"))
        assert other.metrics.coverage == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- other kinds


@pytest.mark.parametrize("how", ["token", "domain"])
def test_full_rkl_matches_reference(how: str) -> None:
    case = make_case(7)
    config = cfg(kind="full_rkl", aggregation=how, full_position_chunk=3)
    out = distill_loss(case.student(), case.teacher(), case.layout(), config)
    assert_same(out.loss, ref_full(case, how), case)


def ref_sampled(case: Case, how: str) -> Tensor:
    logp = torch.log_softmax(case.hidden @ case.weight.T, -1)
    per_pos = {}
    for n, t in positions(case):
        y = int(case.sampled[n, t])
        lps, lpt = logp[n, t, y], case.teacher_full[n, t, y]
        per_pos[(n, t)] = -(lpt - lps).detach() * lps
    return aggregate(per_pos, case.domains, how)


def test_sampled_token_gradient_matches_reference_estimator() -> None:
    case = make_case(8)
    config = cfg(kind="sampled_token", position_chunk=4, vocab_chunk=5)
    out = distill_loss(case.student(), case.teacher(), case.layout(), config)
    assert_same(out.loss, ref_sampled(case, "domain"), case)
    logp = torch.log_softmax(case.hidden @ case.weight.T, -1).detach()
    kl = {}
    for n, t in positions(case):
        y = int(case.sampled[n, t])
        kl[(n, t)] = logp[n, t, y] - case.teacher_full[n, t, y]
    assert out.metrics.per_domain[0].kl == pytest.approx(
        float(
            aggregate(
                {p: v for p, v in kl.items() if case.domains[p[0]] == 0}, case.domains, "sample"
            )
        )
    )


def test_sampled_token_gradient_is_unbiased_for_full_reverse_kl() -> None:
    """E_{y ~ p_s}[grad of the surrogate] = grad KL(p_s || p_t), enumerated over the vocabulary."""
    case = make_case(9, n=2, t=3)
    case.mask.zero_()
    case.mask[0, 0] = 1
    probs = torch.softmax(case.hidden @ case.weight.T, -1).detach()[0, 0]
    expected = torch.zeros_like(case.hidden), torch.zeros_like(case.weight)
    for y in range(case.vocab):
        sample = replace(case, sampled=torch.full_like(case.sampled, y))
        out = distill_loss(
            sample.student(), sample.teacher(), sample.layout(), cfg(kind="sampled_token")
        )
        for acc, g in zip(expected, grads(out.loss, case), strict=True):
            acc += probs[y] * g
    full = distill_loss(case.student(), case.teacher(), case.layout(), cfg(kind="full_rkl"))
    for acc, g in zip(expected, grads(full.loss, case), strict=True):
        assert torch.allclose(acc, g, atol=1e-10)


def student_top(case: Case, k: int) -> Tensor:
    return student_topk_ids(
        case.hidden, case.weight, k, mask_NT=case.mask, excluded_ids=EXCLUDED, vocab_chunk=4
    )


def test_student_topk_ids_match_full_topk() -> None:
    case = make_case(10)
    ids = student_top(case, 4)
    logits = (case.hidden @ case.weight.T).detach()
    logits[..., list(EXCLUDED)] = -math.inf
    expected = logits.topk(4, -1).indices
    on = case.mask.bool()
    assert torch.equal(ids[on].sort(-1).values, expected[on].sort(-1).values)
    assert (ids[~on] == -1).all()


def with_student_top(case: Case, k: int) -> TeacherSignal:
    ids = student_top(case, k)
    lp = case.teacher_full.gather(-1, ids.clamp(min=0))
    return case.teacher(student_top_ids_NTK=ids, logprobs_on_student_top_NTK=lp)


def ref_on_sets(case: Case, sets: dict[tuple[int, int], list[int]], how: str) -> Tensor:
    logits = case.hidden @ case.weight.T
    per_pos = {
        p: renorm_rkl(logits[p][ids], case.teacher_full[p][ids]) for p, ids in sets.items() if ids
    }
    return aggregate(per_pos, case.domains, how)


def test_student_topk_and_union_match_reference() -> None:
    case = make_case(11)
    teacher = with_student_top(case, 4)
    assert teacher.student_top_ids_NTK is not None
    s_sets = {p: valid_ids(teacher.student_top_ids_NTK[p], case.vocab) for p in positions(case)}
    out = distill_loss(case.student(), teacher, case.layout(), cfg(kind="student_topk", k=4))
    assert_same(out.loss, ref_on_sets(case, s_sets, "domain"), case)

    unions = {}
    for p in positions(case):
        t_ids = valid_ids(case.top_ids[p], case.vocab)
        unions[p] = sorted(set(t_ids) | set(s_sets[p]))
    out = distill_loss(
        case.student(), teacher, case.layout(), cfg(kind="union", aggregation="sample")
    )
    assert_same(out.loss, ref_on_sets(case, unions, "sample"), case)


def test_union_keeps_positions_where_only_the_student_has_candidates() -> None:
    case = make_case(12)
    teacher = with_student_top(case, 3)
    out = distill_loss(case.student(), teacher, case.layout(), cfg(kind="union", k=3))
    assert out.metrics.n_tokens == int(case.mask.sum())  # incl. (1, 2), no teacher candidate
    assert torch.isfinite(out.loss)


def ref_tail(case: Case, how: str) -> Tensor:
    logp = torch.log_softmax(case.hidden @ case.weight.T, -1)
    per_pos = {}
    for n, t in positions(case):
        ids = valid_ids(case.top_ids[n, t], case.vocab)
        if not ids:
            continue
        ps = torch.cat([logp[n, t, ids].exp(), (1 - logp[n, t, ids].exp().sum()).reshape(1)])
        pt = torch.cat(
            [
                case.teacher_full[n, t, ids].exp(),
                (1 - case.teacher_full[n, t, ids].exp().sum()).reshape(1),
            ]
        )
        per_pos[(n, t)] = (ps * (ps.log() - pt.log())).sum()
    return aggregate(per_pos, case.domains, how)


def test_sva_tail_matches_reference() -> None:
    case = make_case(13)
    config = cfg(kind="sva_tail", vocab_chunk=4)
    out = distill_loss(case.student(), case.teacher(), case.layout(), config)
    assert_same(out.loss, ref_tail(case, "domain"), case)


# --------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("kind", ["sva", "full_rkl", "sampled_token", "union", "sva_tail"])
def test_chunked_paths_equal_unchunked(kind: str) -> None:
    case = make_case(14)
    teacher = with_student_top(case, 3)
    whole = distill_loss(case.student(), teacher, case.layout(), cfg(kind=kind))
    for pc, vc in [(1, 1), (2, 5), (7, 100)]:
        config = cfg(kind=kind, position_chunk=pc, vocab_chunk=vc, full_position_chunk=pc)
        part = distill_loss(case.student(), teacher, case.layout(), config)
        assert_same(part.loss, whole.loss, case, tol=1e-12)
        assert part.metrics.coverage == pytest.approx(whole.metrics.coverage, abs=1e-12)


def test_low_precision_inputs_reduce_in_float32() -> None:
    case = make_case(15)
    ref = float(sva_loss(case.student(), case.teacher(), case.layout(), cfg()).loss.detach())
    for dtype, tol in [(torch.float32, 1e-5), (torch.bfloat16, 5e-2)]:
        low = StudentHead(case.hidden.detach().to(dtype), case.weight.detach().to(dtype))
        out = sva_loss(low, case.teacher(), case.layout(), cfg())
        assert out.loss.dtype == torch.float32
        assert float(out.loss) == pytest.approx(ref, abs=tol)
    # every kind runs forward + backward on bfloat16 inputs (the GPU path) with finite gradients
    teacher = with_student_top(case, 3)
    for kind in ["sva", "full_rkl", "sampled_token", "student_topk", "union", "sva_tail"]:
        h = case.hidden.detach().to(torch.bfloat16).requires_grad_()
        w = case.weight.detach().to(torch.bfloat16).requires_grad_()
        out = distill_loss(StudentHead(h, w), teacher, case.layout(), cfg(kind=kind, k=3))
        out.loss.backward()
        assert h.grad is not None and w.grad is not None and w.grad.dtype == torch.bfloat16
        assert torch.isfinite(h.grad).all() and torch.isfinite(w.grad).all()


def test_misaligned_or_missing_inputs_are_rejected() -> None:
    case = make_case(16)
    short = replace(
        case.teacher(), top_ids_NTK=case.top_ids[:, :-1], top_logprobs_NTK=case.top_lp[:, :-1]
    )
    with pytest.raises(ValueError, match="expected"):
        sva_loss(case.student(), short, case.layout(), cfg())
    with pytest.raises(ValueError, match="needs"):
        distill_loss(case.student(), TeacherSignal(), case.layout(), cfg(kind="sampled_token"))
    with pytest.raises(ValueError, match="come together"):
        TeacherSignal(top_ids_NTK=case.top_ids)
