"""The chunked cross-entropy kernel against F.cross_entropy over full logits, in float64:
values and both gradients for every chunk size, masked positions, low-precision matmuls, and
the errors on bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from longhorizon.training.chunked_ce import chunked_cross_entropy

P, H, V = 37, 16, 101


def inputs(dtype: torch.dtype = torch.float64, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(P, H, generator=gen, dtype=dtype).requires_grad_()
    w = torch.randn(V, H, generator=gen, dtype=dtype).requires_grad_()
    targets = torch.randint(0, V, (P,), generator=gen)
    # upstream weights with masked positions (0), as the SFT loss scales ignored tokens
    upstream = torch.rand(P, generator=gen, dtype=torch.float64) * (torch.arange(P) % 4 != 0)
    return h, w, targets, upstream


def loss_and_grads(
    h: torch.Tensor, w: torch.Tensor, losses: torch.Tensor, upstream: torch.Tensor
) -> tuple[float, torch.Tensor, torch.Tensor]:
    total = (losses.double() * upstream).sum()
    grad_h, grad_w = torch.autograd.grad(total, (h, w))
    return total.item(), grad_h, grad_w


@pytest.mark.parametrize("chunk", [1, 4, 36, 37, 1024])
def test_loss_and_gradients_equal_full_logits_in_float64(chunk: int) -> None:
    h, w, targets, upstream = inputs()
    got = chunked_cross_entropy(h, w, targets, chunk)
    reference = F.cross_entropy(h @ w.T, targets, reduction="none")
    torch.testing.assert_close(got, reference, atol=1e-12, rtol=0)
    value, grad_h, grad_w = loss_and_grads(h, w, got, upstream)
    ref_value, ref_h, ref_w = loss_and_grads(h, w, reference, upstream)
    assert value == pytest.approx(ref_value, abs=1e-12)
    torch.testing.assert_close(grad_h, ref_h, atol=1e-12, rtol=0)
    torch.testing.assert_close(grad_w, ref_w, atol=1e-12, rtol=0)
    assert grad_h[::4].abs().max() == 0  # a masked position gets no gradient


def test_repeated_targets_add_up_in_the_layer_gradient() -> None:
    h, w, _, upstream = inputs(seed=1)
    targets = torch.full((P,), 7)
    got = loss_and_grads(h, w, chunked_cross_entropy(h, w, targets, 5), upstream)
    reference = loss_and_grads(h, w, F.cross_entropy(h @ w.T, targets, reduction="none"), upstream)
    torch.testing.assert_close(got[2], reference[2], atol=1e-12, rtol=0)


def test_float32_matches_and_reduces_in_float32() -> None:
    h, w, targets, _ = inputs(torch.float32)
    got = chunked_cross_entropy(h, w, targets, 8)
    assert got.dtype == torch.float32
    reference = F.cross_entropy((h @ w.T).double(), targets, reduction="none")
    torch.testing.assert_close(got.double(), reference, atol=1e-5, rtol=1e-5)


def test_bf16_matmuls_match_the_bf16_materialised_loss() -> None:
    """Under bf16 autocast both paths multiply in bf16 and reduce in float32."""
    h, w, targets, upstream = inputs(torch.float32, seed=2)
    got = chunked_cross_entropy(h, w, targets, 8, torch.bfloat16)
    logits = (h.bfloat16() @ w.bfloat16().T).float()
    reference = F.cross_entropy(logits, targets, reduction="none")
    torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-5)
    _, grad_h, grad_w = loss_and_grads(h, w, got, upstream)
    _, ref_h, ref_w = loss_and_grads(h, w, reference, upstream)
    assert grad_h.dtype == grad_w.dtype == torch.float32
    # bf16 rounds the softmax-minus-onehot before the gradient matmuls: 3 significant digits
    torch.testing.assert_close(grad_h, ref_h, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(grad_w, ref_w, atol=2e-2, rtol=2e-2)


def test_bad_input_is_a_clear_error() -> None:
    h, w, targets, _ = inputs()
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 101\)"):
        chunked_cross_entropy(h, w, torch.full((P,), V), 8)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 101\)"):
        chunked_cross_entropy(h, w, torch.full((P,), -100), 8)
    with pytest.raises(ValueError, match="36 targets for 37 positions"):
        chunked_cross_entropy(h, w, targets[1:], 8)
    with pytest.raises(ValueError, match=r"\(P, H\) and output layer \(V, H\)"):
        chunked_cross_entropy(h, w[:, 1:], targets, 8)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        chunked_cross_entropy(h, w, targets, 0)
