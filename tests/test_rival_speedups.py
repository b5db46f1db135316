"""The speed-ups of the rivals change no math: each model's outputs on a fixed batch equal those of the
straightforward computation it replaced, written out here with the model's own layers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from stvfm_plugin.models.gwnet import GWNet, GWNetConfig


def _gwnet_with_every_skip(model: GWNet, inputs: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
    """Graph WaveNet as first written: each layer's skip over all its steps, aligned and summed, the last step read."""
    x = rearrange(torch.stack([inputs, timestamps[..., :1].expand_as(inputs)], dim=-1), "b t n c -> b c n t")
    x = model.start_conv(F.pad(x, (max(model.receptive_field - x.shape[-1], 0), 0)))
    supports, skip = model.supports(), 0
    for layer in model.layers:
        h = torch.tanh(layer.filter_conv(x)) * torch.sigmoid(layer.gate_conv(x))
        s = layer.skip_conv(h)  # every step
        skip = s + (skip[..., -s.shape[-1]:] if torch.is_tensor(skip) else 0)
        x = layer.norm(layer.graph_conv(h, supports) + x[..., -h.shape[-1]:])
    return model.end_conv(skip[..., -1:])[..., 0]


@pytest.mark.parametrize("n,b,input_len", [(9, 4, 12), (20, 2, 6), (5, 3, 16)])
def test_gwnet_last_step_skips_give_the_same_outputs_and_gradients(n, b, input_len):
    rng = np.random.default_rng(0)
    adj = (rng.random((n, n)) < 0.3).astype(np.float32)
    torch.manual_seed(0)
    model = GWNet(GWNetConfig(input_len=input_len, output_len=12, num_features=n), adj=adj)
    x, ts = torch.randn(b, input_len, n), torch.rand(b, input_len, 2)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x, ts), _gwnet_with_every_skip(model, x, ts), rtol=1e-5, atol=1e-6)
    model.train()
    grads = []
    for forward in (model, lambda a, c: _gwnet_with_every_skip(model, a, c)):
        model.zero_grad()
        torch.manual_seed(1)  # the same dropout masks
        forward(x, ts).abs().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)
