"""Process groups and model wrapping: single process, DDP, or FSDP2 (`fully_shard`).

Launch with `torchrun`; its RANK / WORLD_SIZE / LOCAL_RANK variables are read here. gloo on
CPU, nccl on GPU. A run that asks for ddp or fsdp2 without torchrun gets a one-process group,
so the same config works with and without a launcher.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from longhorizon.training.config import Parallel

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    parallel: Parallel
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # a second gloo group for object gathers that run while an update's collectives do
    # (streamed rollouts): collectives of one group must be issued in one order on every rank
    side_group: Any = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed(parallel: Parallel) -> DistEnv:
    """Join (or, without torchrun, create) the process group that `parallel` needs."""
    use_cuda = torch.cuda.is_available()
    if parallel == "none":
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise RuntimeError("launched with several processes but parallel is 'none'")
        return DistEnv(parallel, device=torch.device("cuda" if use_cuda else "cpu"))
    if "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        hook = sys.excepthook
        dist.init_process_group("nccl" if use_cuda else "gloo")
        if getattr(hook, "__name__", "") == "_distributed_excepthook":
            sys.excepthook = hook  # one "[rankN]:" prefix, not one per group a process opens
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    side = dist.new_group(backend="gloo")  # every rank creates it, in the same order
    return DistEnv(parallel, dist.get_rank(), dist.get_world_size(), local_rank, device, side)


def wrap_model(model: nn.Module, env: DistEnv) -> nn.Module:
    """DDP, or FSDP2 with one shard group per decoder layer plus the root (embeddings, head)."""
    if env.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.local_rank] if env.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if env.parallel == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        layer_classes = set(getattr(model, "_no_split_modules", None) or [])
        for module in model.modules():
            if type(module).__name__ in layer_classes:
                fully_shard(module)
        fully_shard(model)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a DDP wrapper (FSDP2 shards in place: nothing to strip)."""
    inner = getattr(model, "module", model)
    assert isinstance(inner, nn.Module)
    return inner


@contextlib.contextmanager
def gradient_sync(model: nn.Module, env: DistEnv, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    if env.parallel == "ddp" and not sync:
        with model.no_sync():  # type: ignore[operator]
            yield
        return
    if env.parallel == "fsdp2":
        model.set_requires_gradient_sync(sync)  # type: ignore[operator]
    yield


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Sums across ranks, in float64 so token counts and loss sums stay exact enough."""
    if not env.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_gradients(model: nn.Module, env: DistEnv) -> None:
    """Sum gradients over ranks in place, for losses already normalised over the global batch
    (a trainer that does not go through a DDP wrapper's forward, so that ranks may run
    different numbers of micro-batches, none included)."""
    if not env.distributed:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    # A rank with no sample this step has no gradient where the others have one: agree first
    # on which parameters take part, so every rank makes the same collectives.
    present = [p.grad is not None for p in params]
    flags = torch.tensor(present, dtype=torch.int32, device=env.device)
    dist.all_reduce(flags)
    for param, anywhere in zip(params, flags.tolist(), strict=True):
        if not anywhere:
            continue
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad)


def lockstep_rounds(count: int, env: DistEnv) -> int:
    """How many forward passes this rank makes for its `count` micro-batches: under FSDP2 every
    forward is a collective (each layer's all-gather), so all ranks make the most any rank
    has, the short ones idle (`idle_passes`); otherwise its own count."""
    if env.parallel != "fsdp2" or not env.distributed:
        return count
    most = torch.tensor([count], dtype=torch.long, device=env.device)
    dist.all_reduce(most, op=dist.ReduceOp.MAX)
    return int(most.item())


def idle_passes(model: nn.Module, count: int, env: DistEnv | None) -> None:
    """One-token forwards and backwards that leave every gradient as it is, so that an FSDP2
    rank with `count` micro-batches joins the busiest rank's all-gathers and reduce-scatters
    (nothing otherwise)."""
    if env is None:
        return
    for _ in range(count, lockstep_rounds(count, env)):
        ids = torch.zeros((1, 1), dtype=torch.long, device=env.device)
        (model(input_ids=ids, use_cache=False).logits.sum() * 0.0).backward()


def sum_scale(env: DistEnv | None) -> int:
    """What a loss whose rank parts add up to the batch objective is multiplied by before its
    backward: FSDP2 averages the ranks' gradients (the world size undoes it); summed ones
    (`sum_gradients`) need nothing."""
    return env.world_size if env is not None and env.parallel == "fsdp2" else 1


def sum_gradients(model: nn.Module, env: DistEnv | None) -> None:
    """The ranks' gradients summed in place (FSDP2 reduced them in its backward already)."""
    if env is not None and env.parallel != "fsdp2":
        all_reduce_gradients(model, env)


def clip_gradients(model: nn.Module, max_norm: float | None) -> float:
    """Clip to `max_norm` (None: no clipping) and return the total norm before it, whole
    (under FSDP2 a DTensor, made whole)."""
    limit = max_norm if max_norm is not None else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def rank_share(items: Sequence[T], env: DistEnv) -> list[T]:
    """This rank's share of a list every rank holds in the same order: items r, r + W, ...
    (over the ranks, each item exactly once; the whole list in one process)."""
    return list(items[env.rank :: env.world_size])


def all_gather_objects(value: T, env: DistEnv, *, side: bool = False) -> list[T]:
    """Every rank's `value` (picklable), in rank order; `[value]` in one process. `side`: on
    the side group, safe while another thread runs collectives on the default one."""
    if not env.distributed:
        return [value]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, value, group=env.side_group if side else None)
    return out


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


class _Group:
    keep = False  # set by `keep_process_group`


def keep_process_group() -> None:
    """Trainers leave the default group open at their end: a process that runs several
    (`run`'s stages under torchrun) opens it once. Torn down and opened again for each
    trainer, the seventh opening hung in `new_group` (both ranks waiting on the store)."""
    _Group.keep = True


def shutdown(env: DistEnv) -> None:
    if not env.distributed:
        return
    if not _Group.keep:
        dist.destroy_process_group()
    elif env.side_group is not None:
        dist.destroy_process_group(env.side_group)
