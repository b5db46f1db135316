"""Half precision for a model's forward pass: autocast where the hardware has it, fp32 master weights.

`precision` names the compute type (`fp32`, `bf16`, `fp16`) and `scope` what runs in it (`backbone`: the frozen
blocks; `model`: the whole forward pass). Parameters, their gradients, the optimizer and the outputs stay fp32: the
autocast casts each operation's inputs, never the weights it keeps. bf16 runs on CPUs (fast where the CPU has bf16
instructions, e.g. the `avx512_bf16` / `amx_bf16` flags) and GPUs; fp16 only on GPUs, whose training then scales the
loss (`needs_loss_scaling`) so that small fp16 gradients do not vanish.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager

import torch

from ..errors import UserError

#: compute types a forward pass may run in
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: what runs in the chosen precision
SCOPES = ("model", "backbone")


def check_precision(precision: str, scope: str) -> None:
    """Refuse an unknown precision or scope with one line."""
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}.")
    if scope not in SCOPES:
        raise UserError(f"precision_scope={scope!r}: choose one of {', '.join(SCOPES)}.")


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The autocast context of `precision` on `device` (a no-op for fp32)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return nullcontext()
    if dtype is torch.float16 and device.type != "cuda":
        raise UserError(f"precision='fp16' runs on GPUs only; this model runs on {device.type}. Use precision='bf16' "
                        "on a CPU (fast where the CPU has bf16 instructions).")
    return torch.autocast(device.type, dtype=dtype)


def needs_loss_scaling(model: torch.nn.Module) -> bool:
    """The model computes in fp16: its training should scale the loss (a GradScaler)."""
    config = getattr(model, "config", None)
    return getattr(config, "precision", "fp32") == "fp16"
