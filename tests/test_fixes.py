"""The BasicTS 1.1.0 fixes the plugin carries: global z-score scaler and the auxiliary-loss loss."""
import inspect

import numpy as np
import pytest
import torch
from basicts.scaler import ZScoreScaler

from stvfm_plugin.basicts_compat.losses import MaskedMAEWithAux
from stvfm_plugin.basicts_compat.scaler import ZScoreScalerFixed


def test_stock_scaler_still_fails_globally():
    """Documents why the fix exists (if BasicTS fixes it, this test tells us the subclass can go)."""
    with pytest.raises(TypeError):
        ZScoreScaler(norm_each_channel=False, rescale=True).fit(np.random.rand(50, 4).astype(np.float32))


def test_global_zscore_round_trip():
    data = np.random.default_rng(0).normal(10, 3, size=(500, 7)).astype(np.float32)
    scaler = ZScoreScalerFixed(norm_each_channel=False, rescale=True)
    scaler.fit(data)
    assert float(scaler.stats["mean"]) == pytest.approx(data.mean(), rel=1e-5)
    assert float(scaler.stats["std"]) == pytest.approx(data.std(), rel=1e-5)
    x = torch.from_numpy(data[:24]).unsqueeze(0)
    z = scaler.transform(x)
    assert torch.allclose(scaler.inverse_transform(z), x, atol=1e-4)


def test_constant_data_gets_unit_std():
    scaler = ZScoreScalerFixed(norm_each_channel=False, rescale=True)
    scaler.fit(np.full((10, 3), 5.0, dtype=np.float32))
    assert float(scaler.stats["std"]) == 1.0


def test_per_channel_mode_unchanged():
    data = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    ours, stock = ZScoreScalerFixed(True, True), ZScoreScaler(True, True)
    ours.fit(data)
    stock.fit(data)
    assert torch.equal(ours.stats["mean"], stock.stats["mean"])


def test_loss_adds_aux_and_exposes_its_signature():
    loss = MaskedMAEWithAux()
    assert list(inspect.signature(loss).parameters) == ["prediction", "targets", "targets_mask", "aux_loss"]
    p, t = torch.ones(2, 3), torch.zeros(2, 3)
    assert loss(p, t).item() == pytest.approx(1.0)
    assert loss(p, t, aux_loss=torch.tensor(0.5)).item() == pytest.approx(1.5)
    mask = torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    assert loss(torch.tensor([[2.0, 9, 9], [9, 9, 9]]), t, mask).item() == pytest.approx(2.0)
