"""Convolution geometry, checked once: the shapes of one conv2d (N, C, H, W, K, C/groups,
R, S, P, Q) and its options normalized (stride and dilation as (h, w) pairs, padding as
((top, bottom), (left, right)), layout "NCHW" or "NHWC"). Shared by the ops
(aicc_kernels.ops.conv) and the conformance cases (aicc_kernels.testing.cases.conv)."""

from __future__ import annotations

from .._validation import GEOMETRY_MAX, as_int, is_choice

LAYOUTS = ("NCHW", "NHWC")


def pair(value, name, minimum):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an integer or a pair of integers, got {value!r}")
        pair = tuple(as_int(v, name, minimum=minimum, maximum=GEOMETRY_MAX) for v in value)
    else:
        v = as_int(value, name, minimum=minimum, maximum=GEOMETRY_MAX)
        pair = (v, v)
    return pair


def check_layout(layout):
    if not is_choice(layout, LAYOUTS):
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    return layout


def same_padding(size, kernel, stride, dilation):
    """TensorFlow/XLA 'same': output = ceil(size / stride); the odd pixel goes bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return (total // 2, total - total // 2)


def normalize_padding(padding, hw, rs, stride, dilation):
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            return (same_padding(hw[0], rs[0], stride[0], dilation[0]),
                    same_padding(hw[1], rs[1], stride[1], dilation[1]))
        raise ValueError(f"padding: expected an integer, a pair, ((top, bottom), (left, right)), "
                         f"'same' or 'valid', got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding: expected an integer, a pair or ((top, bottom), (left, right)), "
                             f"got {padding!r}")
        sides = []
        for v in padding:
            if isinstance(v, (tuple, list)):
                if len(v) != 2:
                    raise ValueError(f"padding: expected (before, after) pairs, got {padding!r}")
                sides.append(tuple(as_int(e, "padding", minimum=0, maximum=GEOMETRY_MAX) for e in v))
            else:
                e = as_int(v, "padding", minimum=0, maximum=GEOMETRY_MAX)
                sides.append((e, e))
        return tuple(sides)
    p = as_int(padding, "padding", minimum=0, maximum=GEOMETRY_MAX)
    return ((p, p), (p, p))


class ConvGeometry:
    """Shapes of one convolution, checked: N, C, H, W, K, Cg, R, S, P, Q and the options."""

    def __init__(self, x_shape, w_shape, *, stride, padding, dilation, groups, layout,
                 x_name="x", w_name="w"):
        self.layout = check_layout(layout)
        if len(x_shape) != 4:
            raise ValueError(f"{x_name}: expected a 4-D {layout} array, got shape {tuple(x_shape)}")
        if len(w_shape) != 4:
            raise ValueError(f"{w_name}: expected a 4-D weight "
                             f"({'[K, C/groups, R, S]' if layout == 'NCHW' else '[K, R, S, C/groups]'}), "
                             f"got shape {tuple(w_shape)}")
        self.stride = pair(stride, "stride", 1)
        self.dilation = pair(dilation, "dilation", 1)
        self.groups = as_int(groups, "groups", minimum=1, maximum=GEOMETRY_MAX)
        if layout == "NCHW":
            n, c, h, wd = x_shape
            k, cg, r, s = w_shape
        else:
            n, h, wd, c = x_shape
            k, r, s, cg = w_shape
        if c % self.groups:
            raise ValueError(f"groups: expected a divisor of the {c} input channels of {x_name}, got {self.groups}")
        if k % self.groups:
            raise ValueError(f"groups: expected a divisor of the {k} output channels of {w_name}, got {self.groups}")
        if cg != c // self.groups:
            where = "dimension 1" if layout == "NCHW" else "dimension 3"
            raise ValueError(f"{w_name}: expected C/groups = {c // self.groups} input channels in {where} "
                             f"({layout} weights are {'[K, C/groups, R, S]' if layout == 'NCHW' else '[K, R, S, C/groups]'}), "
                             f"got shape {tuple(w_shape)}")
        if r < 1 or s < 1:
            raise ValueError(f"{w_name}: expected a kernel of at least 1x1, got {r}x{s}")
        self.padding = normalize_padding(padding, (h, wd), (r, s), self.stride, self.dilation)
        (pt, pb), (pl, pr) = self.padding
        eff_r = self.dilation[0] * (r - 1) + 1
        eff_s = self.dilation[1] * (s - 1) + 1
        if h + pt + pb < eff_r or wd + pl + pr < eff_s:
            raise ValueError(f"{w_name}: expected a (dilated) kernel no larger than the padded input "
                             f"{h + pt + pb}x{wd + pl + pr}, got {eff_r}x{eff_s}")
        self.n, self.c, self.h, self.w, self.k, self.cg, self.r, self.s = n, c, h, wd, k, cg, r, s
        self.p = (h + pt + pb - eff_r) // self.stride[0] + 1
        self.q = (wd + pl + pr - eff_s) // self.stride[1] + 1

    @property
    def out_shape(self):
        return (self.n, self.k, self.p, self.q) if self.layout == "NCHW" else (self.n, self.p, self.q, self.k)

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w) if self.layout == "NCHW" else (self.n, self.h, self.w, self.c)

    @property
    def w_shape(self):
        return (self.k, self.cg, self.r, self.s) if self.layout == "NCHW" else (self.k, self.r, self.s, self.cg)

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, layout=self.layout)
