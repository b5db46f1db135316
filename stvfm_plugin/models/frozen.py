"""Frozen pretrained parts: where their weights come from, and keeping them out of checkpoints.

A frozen backbone's weights come from its weights file or hub, so checkpoints hold only what was
trained. `keep_frozen_out_of_state_dict` makes `state_dict()` drop the frozen tensors of one child
module and makes `load_state_dict()` keep that child's current values for them.
"""
from __future__ import annotations

import socket

from torch import nn

#: seconds to wait for the hub before falling back to a clear offline error
HUB_PROBE_TIMEOUT_S = 3.0


def hub_reachable(url: str) -> bool:
    """Whether the host of `url` accepts a connection on port 443 within `HUB_PROBE_TIMEOUT_S`."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    try:
        socket.create_connection((host, 443), timeout=HUB_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def keep_frozen_out_of_state_dict(module: nn.Module, child: str) -> None:
    """Leave the parameters of `module.<child>` that need no gradient (and its buffers) out of checkpoints."""

    def frozen_names(sub: nn.Module) -> set:
        return ({name for name, p in sub.named_parameters() if not p.requires_grad}
                | {name for name, _ in sub.named_buffers()})

    def drop(mod: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
        for name in frozen_names(getattr(mod, child)):
            state_dict.pop(f"{prefix}{child}.{name}", None)

    def keep(state_dict: dict, prefix: str, *args) -> None:
        sub = getattr(module, child)
        frozen = frozen_names(sub)
        for name, value in sub.state_dict(keep_vars=True).items():
            if name in frozen:
                state_dict.setdefault(f"{prefix}{child}.{name}", value.detach())

    module._register_state_dict_hook(drop)
    module._register_load_state_dict_pre_hook(keep)
