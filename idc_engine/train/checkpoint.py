"""Resumable checkpoints, written so that a kill at any moment leaves the last good one usable.

Each checkpoint is a folder ``checkpoint-<step>`` written under a temporary name and renamed into
place; the file ``latest`` (replaced atomically) names the newest complete one. The best weights so far
(``best.safetensors``) are part of the checkpoint, beside the record of their step in ``state.json``:
one rename publishes both, so they can never disagree after a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LATEST = "latest"
BEST = "best.safetensors"


def trainable_state(model) -> dict[str, torch.Tensor]:
    """A snapshot of the trainable weights. Always a copy: on the CPU, ``.cpu()`` of a parameter is the
    parameter itself, and a "best weights" snapshot that aliases the live weights follows training."""
    return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: dict[str, torch.Tensor]):
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    unknown = [n for n in state if n not in params]
    if missing or unknown:
        name = (missing or unknown)[0]
        raise ValueError(
            f"checkpoint does not match the model: parameter {name!r} is "
            f"{'missing from the checkpoint' if missing else 'not in the model'}; "
            "resume with the same model and finetune settings"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))


def _fsync_path(path: Path):
    """Flush a file's (or a folder's entries') data to disk: a rename only publishes what is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text_atomic(path: Path, text: str):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


def checkpoint_step(path: Path) -> int:
    return int(path.name.split("-")[1])


def rng_state() -> dict:
    """This process's random state: torch's, and its current CUDA device's (dropout draws from them)."""
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def save_checkpoint(
    root: Path,
    step: int,
    model,
    optimizer,
    scheduler,
    state: dict,
    scaler=None,
    keep: int = 1,
    rng_by_rank: list[dict] | None = None,
    best: dict[str, torch.Tensor] | None = None,
):
    """Write ``checkpoint-<step>``, point ``latest`` at it, then delete older ones beyond ``keep``.

    Every file is fsynced before the rename that publishes the folder, so a crash right after the
    rename cannot leave a published checkpoint with empty files. ``rng_by_rank`` holds every
    process's :func:`rng_state` of a run on several processes (written by rank 0 alone). ``best``:
    the best weights so far, whose step ``state["best"]`` records.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    previous = latest_checkpoint(root)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".checkpoint-{step}."))
    try:
        save_file(trainable_state(model), str(staging / "trainable.safetensors"))
        if best is not None:
            _write_best(staging / BEST, best, state.get("best"), previous)
        extras = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            # With several processes each has its own device's state, in rng_by_rank: asking for every
            # device's here would open a CUDA context on each GPU from rank 0.
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and not rng_by_rank else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng_by_rank": rng_by_rank,
        }
        torch.save(extras, staging / "optimizer.pt")
        (staging / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
        for name in ("trainable.safetensors", "optimizer.pt", "state.json", BEST):
            if (staging / name).exists():
                _fsync_path(staging / name)
        _fsync_path(staging)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_path(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_text_atomic(root / LATEST, final.name)
    prune_checkpoints(root, final, keep)
    return final


def _write_best(path: Path, best: dict, record: dict | None, previous: Path | None):
    """The best weights, linked from the previous checkpoint when they are still its best (full
    fine-tuning's best weights are as large as the model: not copied at every checkpoint)."""
    if previous is not None and (previous / BEST).is_file() and record is not None:
        before = json.loads((previous / "state.json").read_text()).get("best")
        if before is not None and before.get("step") == record.get("step"):
            os.link(previous / BEST, path)
            return
    save_file(best, str(path))


def load_best(path: Path) -> dict[str, torch.Tensor] | None:
    """The best weights kept with checkpoint ``path``; None if it has none yet (no validation improved).

    Checkpoints written before the best weights moved into them have ``best.safetensors`` beside them
    instead, which is read for those.
    """
    if (path / BEST).is_file():
        return load_file(str(path / BEST))
    recorded = json.loads((path / "state.json").read_text()).get("best")
    if recorded is not None and (path.parent / BEST).is_file():
        return load_file(str(path.parent / BEST))
    return None


def prune_checkpoints(root: Path, current: Path, keep: int = 1):
    """Keep ``current`` and the ``keep - 1`` newest others; never the one just written."""
    others = sorted((p for p in root.glob("checkpoint-*") if p != current), key=checkpoint_step, reverse=True)
    for old in others[max(keep - 1, 0) :]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(root: Path) -> Path | None:
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    return path if (path / "state.json").is_file() else None


def load_checkpoint(path: Path, model, optimizer, scheduler, scaler=None, rank: int = 0) -> dict:
    """Restore a checkpoint into ``model``, ``optimizer``, ``scheduler`` and the random state.

    Every process of a run on several loads the same checkpoint; ``rank`` picks its own random
    state when the checkpoint has one for it (else rank 0's: a run resumed on more processes).
    """
    load_trainable_state(model, load_file(str(path / "trainable.safetensors")))
    extras = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(extras["optimizer"])
    scheduler.load_state_dict(extras["scheduler"])
    torch.set_rng_state(extras["torch_rng"])
    if extras.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(extras["cuda_rng"])
    by_rank = extras.get("rng_by_rank")
    if by_rank:
        own = by_rank[rank] if rank < len(by_rank) else by_rank[0]
        torch.set_rng_state(own["torch"])
        if own["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(own["cuda"])
    if scaler is not None and extras.get("scaler") is not None:
        scaler.load_state_dict(extras["scaler"])
    return json.loads((path / "state.json").read_text())
