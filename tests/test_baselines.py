"""The leaderboard's baselines: every generic config is the baseline config (their training on user data is in
test_own_data.py); Graph WaveNet uses the graph; the LLM baselines keep their language model frozen except the
parts their papers train."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stvfm_plugin.baselines import BUILDERS, baseline_config
from stvfm_plugin.errors import UserError
from stvfm_plugin.models.gpt4ts import GPT4TS, GPT4TSConfig
from stvfm_plugin.models.gwnet import GWNet, GWNetConfig
from stvfm_plugin.models.gwnet.arch.gwnet_arch import transition_matrices
from stvfm_plugin.models.language_backbone import LanguageBackbone, load_language_model, resolve_language_model
from stvfm_plugin.models.stllm import STLLM, STLLMConfig
from stvfm_plugin.protocols import FROM_DATASET

from conftest import CONFIGS


@pytest.mark.parametrize("model", list(BUILDERS))
def test_generic_config_files_are_the_baseline_configs_and_leave_the_dataset_open(model):
    from stvfm_plugin.config_tools import load_config

    cfg = load_config(CONFIGS / f"{model}.py")
    assert cfg.dataset_name is None and cfg.model_config["num_features"] is None and cfg.null_val == FROM_DATASET
    assert str(cfg) == str(baseline_config(model))


def test_no_config_hand_types_a_dataset_fact():
    """Node counts, time-of-day slots and dataset folders come from the dataset, never from a config file."""
    import re

    for path in CONFIGS.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"num_features\s*=|steps_per_day\s*=|num_time_in_day\s*=|dataset_dir|datasets/", text), path


def test_baseline_config_errors():
    with pytest.raises(UserError, match="No model 'Foo'; known: STVFM, STID, StemGNN"):
        baseline_config("Foo", "LosLoop")


# ---- Graph WaveNet ----------------------------------------------------------------------------
def gwnet_output(adj: np.ndarray, n: int, **kw) -> torch.Tensor:
    torch.manual_seed(0)
    model = GWNet(GWNetConfig(num_features=n, **kw), adj=adj).eval()
    generator = torch.Generator().manual_seed(1)
    x, stamps = torch.randn(2, 12, n, generator=generator), torch.rand(2, 12, 2, generator=generator)
    return model(x, stamps)


@pytest.mark.parametrize("adaptive", [True, False])
def test_gwnet_output_depends_on_the_road_graph(adaptive):
    n = 8
    ring = np.roll(np.eye(n), 1, axis=1) + np.roll(np.eye(n), -1, axis=1)
    star = np.zeros((n, n)); star[0, 1:] = star[1:, 0] = 1
    a = gwnet_output(ring, n, use_adaptive_adj=adaptive)
    b = gwnet_output(star, n, use_adaptive_adj=adaptive)
    again = gwnet_output(ring.copy(), n, use_adaptive_adj=adaptive)
    assert torch.equal(a, again)
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("b,t_out,n", [(1, 12, 1), (3, 6, 7), (2, 12, 20)])
def test_gwnet_shapes(b, t_out, n):
    model = GWNet(GWNetConfig(output_len=t_out, num_features=n, use_graph=False)).eval()
    assert model(torch.randn(b, 12, n), torch.rand(b, 12, 2)).shape == (b, t_out, n)


def test_transition_matrices_are_row_stochastic_and_keep_isolated_nodes_at_zero():
    adj = np.array([[0, 2, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    forward, backward = transition_matrices(adj)
    assert torch.allclose(forward.sum(1), torch.tensor([1.0, 1.0, 0.0]))
    assert torch.allclose(backward, torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.float32))


def test_gwnet_errors():
    with pytest.raises(UserError, match="needs a road graph, but the dataset has none"):
        GWNet(GWNetConfig(num_features=4))
    with pytest.raises(UserError, match="the graph is 3 x 3, but num_features=4"):
        GWNet(GWNetConfig(num_features=4), adj=np.eye(3))
    with pytest.raises(UserError, match=r"GWNet: num_features \(the number of nodes\) is not set"):
        GWNet(GWNetConfig(use_graph=False))
    with pytest.raises(UserError, match="leave no adjacency"):
        GWNetConfig(num_features=4, use_graph=False, use_adaptive_adj=False)
    with pytest.raises(UserError, match="needs inputs_timestamps"):
        GWNet(GWNetConfig(num_features=3, use_graph=False))(torch.randn(1, 12, 3))


# ---- LLM baselines ----------------------------------------------------------------------------
def llm_model(kind: str, tiny_language_models, n: int = 5, llm_layers: int = 4, seed: int = 0, **options):
    torch.manual_seed(seed)
    if kind == "GPT4TS":
        return GPT4TS(GPT4TSConfig(num_features=n, backbone=str(tiny_language_models["gpt2"]), llm_layers=llm_layers,
                                   **options))
    return STLLM(STLLMConfig(num_features=n, backbone=str(tiny_language_models["bert"]), llm_layers=llm_layers,
                             unfrozen_layers=min(2, llm_layers), **options))


def run_model(model, n: int = 5, b: int = 3):
    generator = torch.Generator().manual_seed(2)
    x, stamps = torch.randn(b, 12, n, generator=generator), torch.rand(b, 12, 2, generator=generator)
    return model(x) if isinstance(model, GPT4TS) else model(x, stamps)


def trainable_lm_parts(model) -> set:
    return {name for name, p in model.backbone.lm.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("kind", ["GPT4TS", "STLLM"])
def test_llm_baselines_frozen_parts_get_no_gradient(kind, tiny_language_models):
    model = llm_model(kind, tiny_language_models).train()
    run_model(model).square().mean().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} gets no gradient"
        else:
            assert p.grad is None, f"frozen {name} got a gradient"
    frozen = [n for n, p in model.backbone.lm.named_parameters() if not p.requires_grad]
    assert any(".mlp." in n or ".intermediate." in n for n in frozen)  # feed-forward weights stay frozen


def test_gpt4ts_trains_only_norms_and_position_embeddings_of_the_lm(tiny_language_models):
    parts = trainable_lm_parts(llm_model("GPT4TS", tiny_language_models))
    assert "wpe.weight" in parts and "ln_f.weight" in parts
    assert all(n == "wpe.weight" or ".ln_" in n or n.startswith("ln_f") for n in parts), parts
    assert not any("attn" in n for n in parts)


def test_stllm_unfreezes_attention_of_the_last_u_layers_only(tiny_language_models):
    parts = trainable_lm_parts(llm_model("STLLM", tiny_language_models))
    attention = {n.split(".")[2] for n in parts if ".attention.self." in n}
    assert attention == {"2", "3"}  # 4 layers kept, U = 2
    assert "embeddings.position_embeddings.weight" in parts


@pytest.mark.parametrize("kind", ["GPT4TS", "STLLM"])
@pytest.mark.parametrize("b,n", [(1, 1), (2, 5), (4, 9)])
def test_llm_baseline_shapes(kind, b, n, tiny_language_models):
    assert run_model(llm_model(kind, tiny_language_models, n), n, b).shape == (b, 12, n)


@pytest.mark.parametrize("kind", ["GPT4TS", "STLLM"])
def test_llm_baseline_checkpoint_holds_only_trained_tensors_and_round_trips(kind, tiny_language_models):
    model = llm_model(kind, tiny_language_models).eval()
    state = model.state_dict()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(k for k in state if k.startswith("backbone.")) <= trainable
    fresh = llm_model(kind, tiny_language_models).eval()
    with torch.no_grad():
        for p in fresh.parameters():
            if p.requires_grad:
                p.add_(1.0)
    fresh.load_state_dict(state)
    assert torch.equal(run_model(model), run_model(fresh))


@pytest.mark.parametrize("kind", ["GPT4TS", "STLLM"])
def test_llm_baselines_random_lm_is_the_same_architecture_with_other_weights_frozen_alike(kind, tiny_language_models):
    pretrained = llm_model(kind, tiny_language_models)
    random = llm_model(kind, tiny_language_models, pretrained=False, seed=1)  # the stand-in LMs were drawn at seed 0
    ours, theirs = dict(pretrained.backbone.lm.named_parameters()), dict(random.backbone.lm.named_parameters())
    assert {n: (p.shape, p.requires_grad) for n, p in ours.items()} == {
        n: (p.shape, p.requires_grad) for n, p in theirs.items()}
    weights = [n for n in ours if n.endswith("weight") and ours[n].dim() == 2 and "embed" not in n and n not in ("wte.weight", "wpe.weight")]
    assert weights and all(not torch.equal(ours[n], theirs[n]) for n in weights)
    assert any(line.endswith("weights: RANDOM (pretrained=False), architecture of local folder "
                             f"{tiny_language_models['gpt2' if kind == 'GPT4TS' else 'bert']}")
               for line in random.build_report), random.build_report
    again = llm_model(kind, tiny_language_models, pretrained=False, seed=1)  # the same seed draws the same random LM
    assert all(torch.equal(p, q) for p, q in zip(random.backbone.lm.parameters(), again.backbone.lm.parameters()))


@pytest.mark.parametrize("kind", ["GPT4TS", "STLLM"])
@pytest.mark.parametrize("b,n", [(1, 1), (2, 5)])
def test_llm_baselines_without_lm_pass_the_embeddings_through_and_train_everything_else(kind, b, n,
                                                                                         tiny_language_models):
    model = llm_model(kind, tiny_language_models, n, llm_layers=0).train()
    assert model.backbone.lm is None and not list(model.backbone.parameters())
    embeddings = torch.randn(2, 3, 32)
    assert model.backbone(embeddings) is embeddings
    assert model.build_report[0].startswith(f"{'GPT4TS' if kind == 'GPT4TS' else 'ST-LLM'} NO language model "
                                            "(llm_layers=0: the identity), width 32")
    out = run_model(model, n, b)
    assert out.shape == (b, 12, n)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)


def test_language_backbone_errors(tmp_path, monkeypatch, tiny_language_models):
    with pytest.raises(UserError, match="has no config.json"):
        resolve_language_model(str(tmp_path))
    with pytest.raises(UserError, match="no such folder"):
        resolve_language_model(str(tmp_path / "nothing" / "here"))
    with pytest.raises(UserError, match=r"llm_layers=9: the language model has 6 layers; choose 1..6 \(or 0: no "
                                        r"language model, the identity\)."):
        LanguageBackbone.from_name(str(tiny_language_models["gpt2"]), 9)
    monkeypatch.setattr("stvfm_plugin.models.language_backbone.hub_reachable", lambda url: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="not reachable from this machine.*all-minilm-l6-v2"):
        load_language_model("no-such-org/no-such-model")
    with pytest.raises(UserError, match="100 nodes, but .* has 64 positions"):
        STLLM(STLLMConfig(num_features=100, backbone=str(tiny_language_models["bert"])))
    with pytest.raises(UserError, match="unfrozen_layers=7 must lie in 0..llm_layers"):
        STLLMConfig(num_features=3, unfrozen_layers=7)
    with pytest.raises(UserError, match=r"unfrozen_layers=2 must lie in 0..llm_layers \(0\)"):
        STLLMConfig(num_features=3, llm_layers=0)  # no LM: no attention to unfreeze
    with pytest.raises(UserError, match="do not fit input_len=12"):
        GPT4TSConfig(num_features=3, patch_len=20)


# ---- pytorch-forecasting's N-HiTS as a BasicTS baseline ---------------------------------------
def test_nhits_wrapper_really_calls_pytorch_forecastings_network(monkeypatch):
    from pytorch_forecasting.models.nhits.sub_modules import NHiTS as PFNetwork

    from stvfm_plugin.models.pf_nhits import PFNHiTS, PFNHiTSConfig

    calls = []
    original = PFNetwork.forward

    def spy(self, *args, **kwargs):
        calls.append(kwargs["encoder_y"].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PFNetwork, "forward", spy)
    model = PFNHiTS(PFNHiTSConfig(num_features=5))
    assert type(model.network) is PFNetwork
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in model.network.parameters())
    out = model(torch.randn(3, 12, 5), torch.rand(3, 12, 2), torch.rand(3, 12, 2))
    assert calls == [torch.Size([15, 12, 1])] and out.shape == (3, 12, 5)  # one series per node and window


@pytest.mark.parametrize("b,t_out,n,covariates", [(1, 12, 1, True), (2, 6, 7, True), (3, 12, 4, False)])
def test_nhits_shapes_and_covariates(b, t_out, n, covariates):
    from stvfm_plugin.models.pf_nhits import PFNHiTS, PFNHiTSConfig

    torch.manual_seed(0)
    model = PFNHiTS(PFNHiTSConfig(output_len=t_out, num_features=n, use_time_covariates=covariates)).eval()
    x, past, future = torch.randn(b, 12, n), torch.rand(b, 12, 2), torch.rand(b, t_out, 2)
    out = model(x, past, future)
    assert out.shape == (b, t_out, n)
    if covariates:  # the known future covariates reach the forecast
        assert not torch.allclose(out, model(x, past, torch.rand(b, t_out, 2)))


def test_nhits_errors():
    from stvfm_plugin.models.pf_nhits import PFNHiTS, PFNHiTSConfig

    with pytest.raises(UserError, match="needs inputs_timestamps and targets_timestamps"):
        PFNHiTS(PFNHiTSConfig(num_features=2))(torch.randn(1, 12, 2))
    with pytest.raises(UserError, match=r"num_features must be the number of series \(>= 1\), or None to take it"):
        PFNHiTSConfig(num_features=0)


# ---- pytorch-forecasting's DeepAR as a BasicTS baseline ---------------------------------------
def deepar_batch(b: int = 2, n: int = 3, t_out: int = 12):
    generator = torch.Generator().manual_seed(3)
    return (torch.randn(b, 12, n, generator=generator), torch.rand(b, 12, 2, generator=generator),
            torch.rand(b, t_out, 2, generator=generator), torch.randn(b, t_out, n, generator=generator))


def test_deepar_wrapper_really_calls_pytorch_forecastings_deepar(monkeypatch):
    from pytorch_forecasting.models import DeepAR

    from stvfm_plugin.models.pf_deepar import PFDeepAR, PFDeepARConfig

    calls = []
    original = DeepAR.forward

    def spy(self, x, n_samples=None):
        calls.append((x["encoder_cont"].shape, n_samples))
        return original(self, x, n_samples)

    monkeypatch.setattr(DeepAR, "forward", spy)
    model = PFDeepAR(PFDeepARConfig(num_features=3, num_samples=7))
    assert type(model.network) is DeepAR
    x, past, future, targets = deepar_batch()
    model.train()(x, past, future, targets, torch.ones_like(targets, dtype=torch.bool))
    model.eval()(x, past, future)
    assert calls == [(torch.Size([6, 12, 3]), None), (torch.Size([6, 12, 3]), 7)]


def test_deepar_trains_on_masked_likelihood_and_forecasts_the_sample_mean():
    from stvfm_plugin.basicts_compat.losses import LikelihoodLoss
    from stvfm_plugin.models.pf_deepar import PFDeepAR, PFDeepARConfig

    torch.manual_seed(0)
    model = PFDeepAR(PFDeepARConfig(num_features=3, output_len=6))
    x, past, future, targets = deepar_batch(t_out=6)
    mask = torch.ones_like(targets, dtype=torch.bool)
    out = model.train()(x, past, future, targets, mask)
    assert out["prediction"].shape == (2, 6, 3) and out["nll"].dim() == 0
    loss = LikelihoodLoss()(out["prediction"], targets, mask, nll=out["nll"])
    assert loss is out["nll"]
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    masked = targets.clone()
    masked[:, :, 0] = 100.0  # a missing node's values must not enter the likelihood
    partial = mask.clone()
    partial[:, :, 0] = False
    torch.manual_seed(0)
    with_outlier = model(x, past, future, masked, partial)["nll"]
    torch.manual_seed(0)
    clean = model(x, past, future, targets, partial)["nll"]
    torch.manual_seed(0)
    unmasked = model(x, past, future, masked, mask)["nll"]
    assert torch.isclose(with_outlier, clean) and unmasked > clean + 1.0
    model.eval()
    torch.manual_seed(1)
    one = model(x, past, future)
    torch.manual_seed(1)
    assert torch.equal(one, model(x, past, future)) and one.shape == (2, 6, 3)
    assert LikelihoodLoss()(one, targets, mask).dim() == 0  # validation: masked MAE


def test_deepar_errors():
    from stvfm_plugin.models.pf_deepar import PFDeepAR, PFDeepARConfig

    with pytest.raises(UserError, match="DeepAR needs inputs_timestamps and targets_timestamps"):
        PFDeepAR(PFDeepARConfig(num_features=2))(torch.randn(1, 12, 2), None, None)
    with pytest.raises(UserError, match="num_samples=0: draw at least 1 sample path"):
        PFDeepARConfig(num_features=2, num_samples=0)
