"""bench/resnet50_train.py (aicc-bench resnet50 --train): the converted ResNet-50's training
step runs, its weight gradients match float64 as closely as PyTorch's own, and the report
splits the step into convolution/linear time and the rest."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'aicc-kernels[torch]')")

import aicc_kernels as ak  # noqa: E402
from aicc_kernels.bench import cli, resnet50_train  # noqa: E402

pytestmark = pytest.mark.skipif(not ak.backends.get("cpu").available, reason="cpu backend not built")


def test_training_step_runs_and_gradients_match_float64():
    rows = resnet50_train.run(threads=[2], batches=[2], repeats=1, image_size=64)
    by_impl = {r.impl: r for r in rows}
    assert set(by_impl) == {"aicc", "torch"}
    ours, peer = by_impl["aicc"], by_impl["torch"]
    assert ours.wrong == 0
    # Our backward kernels against the float64 network: about as close as PyTorch's f32.
    assert ours.extra["grad_max_rel_err"] <= max(10 * ours.extra["torch_grad_max_rel_err"], 1e-4)
    for r in rows:
        assert r.unit == "img/s" and r.throughput > 0 and r.extra["batch"] == 2
        assert 0 < r.extra["conv_fc_s"] <= r.extra["profiled_step_s"]
    assert ours.extra["vs_torch"] == pytest.approx(peer.seconds / ours.seconds)


class _ScaledGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient: a deliberately wrong backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * 1.01


def test_gradient_check_catches_a_wrong_backward():
    # The check must be able to fail: one conv whose backward is off by 1 % is reported.
    from aicc_kernels.torch import convert

    torch.manual_seed(0)
    native = resnet50_train.resnet50_model().to(memory_format=torch.channels_last)
    ours = convert(native)
    # A forward hook replacing the output (hooks survive the deep copies the check makes).
    ours[4].conv2.register_forward_hook(lambda module, inputs, out: _ScaledGradient.apply(out))
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 1000, (2,))
    assert not resnet50_train.gradient_errors(torch, native, convert(native), x, target)[2]
    err, torch_err, wrong = resnet50_train.gradient_errors(torch, native, ours, x, target)
    assert wrong and err > 5e-3, (err, torch_err)


def test_cli_train_without_torch_is_unavailable(monkeypatch):
    import importlib.util

    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find(name, *a))
    with pytest.raises(cli.Unavailable, match="torch is not installed"):
        cli._resnet50_train_module()


def test_resnet50_inference_with_fused_residual_matches_torch():
    # bench/resnet50.py's network on our kernels (each block's residual add + relu in its last
    # conv's epilogue) against the same network in PyTorch.
    from aicc_kernels.bench import resnet50

    rows = resnet50.run(threads=[2], batches=[1], repeats=1, jit=False)
    ours = [r for r in rows if r.impl == "aicc"]
    assert ours and all(r.wrong == 0 for r in ours)
    assert all(r.extra["max_rel_err"] < 1e-4 for r in ours)
