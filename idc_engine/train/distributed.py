"""Several processes, one per GPU: the environment ``torchrun`` and ``accelerate launch`` set up.

Those launchers start one process per GPU and tell each its place through environment variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). :func:`setup` reads
them, joins the process group (NCCL on CUDA, gloo on the CPU) and returns a :class:`Distributed`
context; without them it returns a single-process context on which every collective is a no-op,
so the training loop reads the same either way.

Under ``accelerate launch``, :func:`launcher_settings` takes the launcher's mixed precision and
gradient accumulation into the training config, and refuses what idc does not do (DeepSpeed, FSDP,
torch.compile, fp8) instead of ignoring it.

Gradients are synchronised by hand (:meth:`Distributed.sum_gradients`, once per optimizer step)
rather than by wrapping the model in ``DistributedDataParallel``: the trainable weights are few
(LoRA) or all of them (full fine-tuning), peft's wrapped modules need no special DDP settings, and
gradient accumulation needs no ``no_sync``. The price is that communication does not overlap the
backward pass, which matters little for adapters.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# Rank 0 validates and writes checkpoints and the final model while the others wait: allow long waits.
TIMEOUT = timedelta(minutes=60)
# Gradients are summed in flat buckets of at most this many bytes (one all-reduce each).
BUCKET_BYTES = 64 << 20


def launched() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when a launcher started several processes; None otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return None
    rank = int(os.environ["RANK"])
    return rank, world_size, int(os.environ.get("LOCAL_RANK", rank))


# What `accelerate launch` passes to the processes it starts, through their environment.
ACCELERATE_PRECISIONS = {"no": "no", "fp16": "fp16", "bf16": "bf16"}
_REFUSED_LAUNCHER_MODES = {
    "ACCELERATE_USE_DEEPSPEED": "DeepSpeed (--use_deepspeed)",
    "ACCELERATE_USE_FSDP": "FSDP (--use_fsdp)",
    "ACCELERATE_USE_MEGATRON_LM": "Megatron-LM (--use_megatron_lm)",
}


def launcher_settings(config):
    """``config`` (a ``TrainConfig``) with what ``accelerate launch`` was told, or an error saying why not.

    accelerate passes its ``--mixed_precision`` (default ``no``, or the value of ``accelerate config``) as
    ACCELERATE_MIXED_PRECISION, and ``--gradient_accumulation_steps`` as
    ACCELERATE_GRADIENT_ACCUMULATION_STEPS. A config field left at its default takes the launcher's value;
    one set otherwise must agree with it. What idc does not do (DeepSpeed, FSDP, Megatron-LM,
    torch.compile through ``--dynamo_backend``, fp8) is refused rather than silently ignored.
    """
    from dataclasses import fields, replace

    environ = os.environ
    for variable, mode in _REFUSED_LAUNCHER_MODES.items():
        if environ.get(variable, "").lower() in ("true", "1"):
            raise ValueError(
                f"accelerate launch: {mode} ({variable}={environ[variable]}) is not supported: idc trains with "
                "its own data parallelism; launch without it (gradient accumulation: --grad-accum-steps)"
            )
    dynamo = environ.get("ACCELERATE_DYNAMO_BACKEND", "NO")
    if dynamo.upper() not in ("NO", ""):
        raise ValueError(
            f"accelerate launch: --dynamo_backend {dynamo.lower()} (ACCELERATE_DYNAMO_BACKEND) is not supported; "
            "launch with --dynamo_backend no"
        )
    defaults = {f.name: f.default for f in fields(config)}
    wanted = {}
    precision = environ.get("ACCELERATE_MIXED_PRECISION")
    if precision is not None:
        if precision not in ACCELERATE_PRECISIONS:
            raise ValueError(
                f"accelerate launch: --mixed_precision {precision} (ACCELERATE_MIXED_PRECISION) is not supported; "
                f"choose one of {tuple(ACCELERATE_PRECISIONS)}"
            )
        wanted["mixed_precision"] = (
            ACCELERATE_PRECISIONS[precision],
            "--mixed_precision",
            "ACCELERATE_MIXED_PRECISION",
        )
    steps = environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    if steps is not None:
        wanted["grad_accum_steps"] = (
            int(steps),
            "--gradient_accumulation_steps",
            "ACCELERATE_GRADIENT_ACCUMULATION_STEPS",
        )
    changes = {}
    for name, (value, flag, variable) in wanted.items():
        current = getattr(config, name)
        if current == value:
            continue
        if current != defaults[name]:
            raise ValueError(
                f"{name} {current!r} disagrees with accelerate launch's {flag} {value!r} ({variable}); "
                f"give the same value to both, or leave {name} at its default {defaults[name]!r}"
            )
        changes[name] = value
    return replace(config, **changes) if changes else config


def is_main_process() -> bool:
    """True in a single process and on rank 0 of several: the one that prints and writes."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def device_for_rank(device: str | None = None) -> str | None:
    """The device a process should use: ``cuda:<LOCAL_RANK>`` under a launcher, when CUDA is asked or best."""
    found = launched()
    if found is None or not torch.cuda.is_available():
        return device
    if device is None or device == "cuda":
        return f"cuda:{found[2]}"
    return device


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Each rank's share of the global micro-batch ``batch_size``; they must all be equal."""
    if batch_size % world_size:
        raise ValueError(
            f"batch_size {batch_size}: the global micro-batch must divide evenly among {world_size} processes; "
            f"choose a multiple of {world_size} (for example {batch_size - batch_size % world_size or world_size})"
        )
    return batch_size // world_size


@dataclass
class Distributed:
    """Where this process stands among the others, and the few collectives training needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # where collective tensors live (CUDA for NCCL)
    owns_group: bool = False  # this context joined the process group, so it leaves it (close)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def all_sum(self, values: list[float]) -> list[float]:
        """The element-wise sum of ``values`` over all processes (float64)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every process (any picklable object)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj) -> list:
        """Every process's ``obj``, in rank order."""
        if not self.enabled:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def on_main(self, function, *args, **kwargs):
        """Run ``function`` on rank 0 alone; its result, or its exception, reaches every process.

        Writes to the shared run folder go through this, so that a refusal on rank 0 (a folder that
        holds another run) stops every rank instead of leaving the others waiting forever.
        """
        result, error = None, None
        if self.is_main:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:  # re-raised below, on every rank
                error = exc
        if not self.enabled:
            if error is not None:
                raise error
            return result
        result, received = self.broadcast((result, _portable(error)))
        if error is not None:
            raise error
        if received is not None:
            raise received
        return result

    def broadcast_parameters(self, parameters):
        """Copy rank 0's values into ``parameters`` everywhere, so that every rank starts alike."""
        if not self.enabled:
            return
        with torch.no_grad():
            for bucket in _buckets([p.data for p in parameters]):
                flat = torch.cat([t.reshape(-1) for t in bucket])
                dist.broadcast(flat, src=0)
                _unflatten_into(flat, bucket)

    def sum_gradients(self, parameters):
        """Sum the gradients of ``parameters`` over all processes, in place.

        The training loop weights each rank's loss so that this sum is the gradient of the global
        batch's mean loss. A parameter without a gradient gets zeros, so that every rank takes part
        in the same all-reduces.
        """
        if not self.enabled:
            return
        grads = []
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            grads.append(parameter.grad)
        for bucket in _buckets(grads):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat)
            _unflatten_into(flat, bucket)

    def close(self):
        """Leave the process group if this context joined it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def setup(device: str | torch.device | None = None) -> Distributed:
    """Join the launcher's process group (once) and say where this process stands.

    ``device`` is where the model trains: a CUDA device becomes ``cuda:<LOCAL_RANK>`` and selects
    NCCL; anything else uses gloo. Without a launcher (or with one process) nothing is joined; a
    process group that already exists (made by the caller or by accelerate) is used, and left open.
    """
    found = launched()
    if found is None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # A group the caller made without a launcher's variables (torch.multiprocessing.spawn, say).
        rank = dist.get_rank()
        found = rank, dist.get_world_size(), rank % max(torch.cuda.device_count(), 1)
    if found is None:
        return Distributed()
    rank, world_size, local_rank = found
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    comm_device = torch.device("cuda", local_rank) if on_cuda else torch.device("cpu")
    if on_cuda:
        torch.cuda.set_device(comm_device)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if on_cuda else "gloo"
        options = {"device_id": comm_device} if on_cuda else {}
        dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=TIMEOUT, **options)
        owns = True
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, comm_device, owns)


def _portable(error: Exception | None) -> Exception | None:
    """``error`` if it survives pickling (to reach the other ranks), else a RuntimeError saying what it was."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"on rank 0: {type(error).__name__}: {error}")


def _buckets(tensors: list[torch.Tensor], limit: int = BUCKET_BYTES):
    """Consecutive runs of tensors of one dtype and device, each at most ``limit`` bytes (or one tensor)."""
    bucket, size = [], 0
    for tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if bucket and (size + nbytes > limit or tensor.dtype != bucket[0].dtype or tensor.device != bucket[0].device):
            yield bucket
            bucket, size = [], 0
        bucket.append(tensor)
        size += nbytes
    if bucket:
        yield bucket


def _unflatten_into(flat: torch.Tensor, tensors: list[torch.Tensor]):
    offset = 0
    for tensor in tensors:
        count = tensor.numel()
        tensor.copy_(flat[offset : offset + count].view_as(tensor))
        offset += count
