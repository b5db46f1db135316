"""`UniformDropout`: nn.Dropout's distribution from cheaper uniform draws."""
import pytest
import torch

from stvfm_plugin.models.dropout import UniformDropout


def test_identity_in_eval_mode_and_at_zero():
    x = torch.randn(64, 32)
    assert torch.equal(UniformDropout(0.3).eval()(x), x)
    assert torch.equal(UniformDropout(0.0).train()(x), x)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keeps_with_probability_one_minus_p_and_rescales(p):
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    y = UniformDropout(p).train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.003  # 1e6 draws: std of the share ~0.0005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased, like nn.Dropout


def test_mask_is_the_uniform_draw_and_gradient_flows_through_kept_values():
    x = torch.randn(50, 20, requires_grad=True)
    torch.manual_seed(3)
    y = UniformDropout(0.3).train()(x)
    torch.manual_seed(3)
    keep = torch.rand(50, 20) >= 0.3
    assert torch.allclose(y, x * keep / 0.7)
    y.sum().backward()
    assert torch.allclose(x.grad, keep / 0.7)


def test_probability_must_be_below_one():
    with pytest.raises(ValueError, match="dropout p=1.0: give a probability in"):
        UniformDropout(1.0)
