"""Tile-aware conformance: a NumPy-simulated accelerator whose only bug is in its last
128- or 256-wide tile fails the runner with a shrunk case, with no declaration needed;
declared tiles and --tile reach smaller tiles; --max-dim bounds the sizes."""

import numpy as np
import pytest

import aicc_kernels as ak
from aicc_kernels.backends import Backend
from aicc_kernels.testing import conformance
from aicc_kernels.testing.tiles import edge_sizes, next_prime, parse_tile, plan


class LastTileSim:
    """A simulated accelerator GEMM that walks the output in `tile`-wide column tiles (and
    qgemm in `tile`-high row tiles). Planted bug: when a dimension spans more than one tile
    and the last tile is partial, the last tile's final column (row) is never written."""

    def __init__(self, tile: int, bug: bool = True):
        self.tile, self.bug = tile, bug

    def spans(self, size):
        spans = [(i, min(i + self.tile, size)) for i in range(0, size, self.tile)]
        if self.bug and len(spans) > 1 and spans[-1][1] - spans[-1][0] < self.tile:
            spans[-1] = (spans[-1][0], spans[-1][1] - 1)
        return spans

    def gemm(self, a, b, c, out, *, alpha, beta, bias, activation):
        for j0, j1 in self.spans(b.shape[1]):
            out[:, j0:j1] = ak.reference.gemm(a, b[:, j0:j1], None if c is None else c[:, j0:j1], alpha=alpha,
                                              beta=beta, bias=None if bias is None else bias[j0:j1],
                                              activation=activation, out_dtype=out.dtype)

    def qgemm(self, a, b, out, *, a_zero_point, b_zero_point, scale, bias, out_zero_point, activation):
        for i0, i1 in self.spans(a.shape[0]):
            out[i0:i1] = ak.reference.qgemm(a[i0:i1], b, a_zero_point=a_zero_point, b_zero_point=b_zero_point,
                                             scale=scale, bias=bias, out_zero_point=out_zero_point,
                                             out_dtype=out.dtype, activation=activation)


def sim_backend(name, tile, bug=True, **kwargs):
    sim = LastTileSim(tile, bug)
    backend = Backend(name, "cpu", **kwargs)
    backend.implements("gemm", "f32/f32/f32", "bf16/bf16/f32")(sim.gemm)
    backend.implements("qgemm", "u8/s8/s32", "s8/s8/s32")(sim.qgemm)
    return backend


def test_edge_sizes_are_the_documented_ones():
    assert edge_sizes(128) == (127, 128, 129, 257, 263)
    assert edge_sizes(256) == (255, 256, 257, 513, 521)
    assert next_prime(257) == 263 and next_prime(1) == 2
    assert parse_tile("128x64x32") == (128, 64, 32) and parse_tile(16) == (16, 16, 16)
    with pytest.raises(ValueError, match="tile: expected MxNxK"):
        parse_tile("128xy")
    p = plan("gemm")  # no declaration: the defaults reach past 256 in every dimension
    assert max(p.m) == max(p.n) == max(p.k) == 521 and {127, 129, 255, 257} <= set(p.n)
    assert max(plan("gemm", max_dim=200).n) == 129


@pytest.mark.parametrize("tile", [128, 256])
def test_a_bug_in_the_last_tile_fails_the_runner_with_a_shrunk_case(tile):
    report = conformance.run(sim_backend(f"sim{tile}", tile), ["gemm", "qgemm"], max_examples=40)
    failed = {(r.op, r.dtypes): r for r in report.results if r.status == "fail"}
    assert set(failed) == {("gemm", "f32/f32/f32"), ("gemm", "bf16/bf16/f32"),
                           ("qgemm", "u8/s8/s32"), ("qgemm", "s8/s8/s32")}, conformance.format_table(report)
    text = conformance.format_table(report)
    for (op, _), r in failed.items():
        f = r.failure
        a = f.case["a"]["shape"]
        if op == "gemm":
            n = f.case["b"]["shape"][0 if f.case["trans_b"] else 1]
            # The failing size is one the bug needs: past one tile and not a multiple of it ...
            assert n > tile and n % tile, (n, tile)
            assert f.index[1] == n - 1
            # ... and the other dimensions were shrunk away from the tile edges.
            m, k = a[::-1] if f.case["trans_a"] else a
            assert m < 100 and k < 100, f.case
        else:
            m = a[0]
            assert m > tile and m % tile and f.index[0] == m - 1
            assert f.case["b"]["shape"][1] < 100
        assert f.shrink_steps > 0 or isinstance(f.example, str)
        assert r.reached_kernel >= 1 and r.reached_kernel <= r.cases
    assert f"FAIL gemm f32/f32/f32" in text and "shrunk in" in text


def test_the_same_bug_passes_below_the_tile():
    """What the runner saw before tile-aware cases (sizes below 100): nothing."""
    report = conformance.run(sim_backend("sim-small", 128), ["gemm", "qgemm"], max_examples=40, max_dim=97)
    assert not report.failed, conformance.format_table(report)
    correct = conformance.run(sim_backend("sim-ok", 128, bug=False), ["gemm", "qgemm"], max_examples=20)
    assert not correct.failed, conformance.format_table(correct)


def test_declared_and_command_line_tiles_reach_small_tiles():
    """A 72-wide tile, fixed cases only and sizes capped at 120 (so the default 128/256
    edges are out): the backend's declaration, or --tile, is what finds the bug."""
    undeclared = conformance.run(sim_backend("sim72", 72), ["gemm"], max_examples=0, max_dim=120)
    assert not undeclared.failed
    declared = conformance.run(sim_backend("sim72d", 72, tiles={"gemm": (72, 72, 72)}), ["gemm"],
                               max_examples=0, max_dim=120)
    by_cli = conformance.run(sim_backend("sim72c", 72), ["gemm"], max_examples=0, max_dim=120, tile=["72x72x72"])
    for report in (declared, by_cli):
        f = next(r for r in report.results if r.status == "fail").failure
        n = f.case["b"]["shape"][0 if f.case["trans_b"] else 1]
        assert n == 73 and f.index[1] == n - 1 and f.example.startswith("fixed-")
    assert conformance.main(["--backend", "reference", "--ops", "gemm", "--tile", "bad", "--max-examples", "1"]) == 2
    with pytest.raises(ValueError, match=r"tiles\['gemm'\]: expected 1 or 3 positive sizes"):
        Backend("x", "cpu", tiles={"gemm": (128, 0, 64)})


def test_a_failing_fixed_case_is_followed_by_a_shrunk_generated_one():
    report = conformance.run(sim_backend("sim-fixed", 128), ["gemm"], max_examples=40)
    f = next(r for r in report.results if r.dtypes == "f32/f32/f32").failure
    assert isinstance(f.example, int)  # the generated search's case, not "fixed-N"
    assert f.also.startswith("fixed case fixed-")
