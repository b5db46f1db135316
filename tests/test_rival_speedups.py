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


def _deepar_batch(b: int, n: int, t: int = 12):
    gen = torch.Generator().manual_seed(0)
    values, targets = torch.randn(b, t, n, generator=gen), torch.randn(b, t, n, generator=gen)
    past, future = torch.rand(b, t, 2, generator=gen), torch.rand(b, t, 2, generator=gen)
    return values, past, future, targets


@pytest.mark.parametrize("cell_type,b,n", [("LSTM", 4, 9), ("LSTM", 2, 20), ("GRU", 3, 5)])
def test_deepar_whole_window_rnn_gives_the_packed_outputs_and_gradients(cell_type, b, n):
    from pytorch_forecasting.models.nn.rnn import get_rnn

    from stvfm_plugin.models.pf_deepar import PFDeepAR, PFDeepARConfig

    torch.manual_seed(0)
    fast = PFDeepAR(PFDeepARConfig(num_features=n, cell_type=cell_type, dropout=0.0, num_samples=5))
    packed = PFDeepAR(PFDeepARConfig(num_features=n, cell_type=cell_type, dropout=0.0, num_samples=5))
    packed.load_state_dict(fast.state_dict())
    library = get_rnn(cell_type)(input_size=fast.network.rnn.input_size, hidden_size=fast.network.rnn.hidden_size,
                                 num_layers=fast.network.rnn.num_layers, batch_first=True)
    library.load_state_dict(fast.network.rnn.state_dict())
    packed.network.rnn = library  # the library's own layer: packs the batch, as before the speed-up
    assert type(fast.network.rnn) is not type(library) and isinstance(fast.network.rnn, type(library))
    values, past, future, targets = _deepar_batch(b, n)
    results = []
    for model in (fast, packed):
        model.train()
        torch.manual_seed(2)  # the library's point forecast of a training step is a sample mean too
        out = model(values, past, future, targets=targets, targets_mask=torch.ones_like(targets))
        model.zero_grad()
        out["nll"].backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        model.eval()
        torch.manual_seed(3)  # the same sample paths
        with torch.no_grad():
            forecast = model(values, past, future)
        results.append((out["nll"].detach(), out["prediction"].detach(), grads, forecast))
    for got, want in zip(*results):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)


def test_deepar_still_packs_sequences_shorter_than_the_window():
    from stvfm_plugin.models.pf_deepar import PFDeepAR, PFDeepARConfig

    rnn = PFDeepAR(PFDeepARConfig(num_features=2)).network.rnn.eval()  # no dropout between layers
    x = torch.randn(3, 5, rnn.input_size)
    short = torch.tensor([5, 3, 5])
    out, _ = rnn(x, lengths=short, enforce_sorted=False)
    assert torch.equal(out[1, 3:], torch.zeros_like(out[1, 3:]))  # padded steps: the packed path ran
    whole, _ = rnn(x, lengths=torch.tensor([5, 5, 5]), enforce_sorted=False)
    plain, _ = torch.nn.LSTM.forward(rnn, x)
    assert torch.allclose(whole, plain)
