#!/usr/bin/env python3
"""ResNet-50 conv layer set (+ depthwise 3x3): ours vs PyTorch F.conv2d (oneDNN) and the fbgemm
quantized conv, measured in the same run. Prints the layer table, writes JSON to
benchmarks/results/conv.json. The measurement is aicc_kernels.bench.conv.run (also behind
`aicc-bench conv`).

    python benchmarks/conv.py                        # batch 1 and 8, NCHW and NHWC, f32/f16/bf16/int8, 2 threads
    python benchmarks/conv.py --quick --dtypes f32   # batch 1, 3 repeats
    python benchmarks/conv.py --fused                # only the fused-epilogue lines: conv+bias+residual+relu
                                                     # fused vs conv then NumPy add (3x3 64@56 and dw3x3 256@28,
                                                     # NHWC batch 8)
"""

import argparse
import pathlib
import sys

from aicc_kernels.bench import conv
from aicc_kernels.bench.record import write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", default="f32,f16,bf16,int8")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8; --quick: 1)")
    ap.add_argument("--layouts", default="NCHW,NHWC")
    ap.add_argument("--layers", default=None, help="comma-separated layer names (default: all)")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--backward", action="store_true", help="also f32 backward_data / backward_weight")
    ap.add_argument("--json", default=str(pathlib.Path(__file__).parent / "results" / "conv.json"))
    ap.add_argument("--fused", action="store_true",
                    help="only the fused-epilogue lines (--layers, default 3x3_64-64@56 and dw3x3_256@28; batch from "
                         "--batches, default 8; layout NHWC; f32)")
    a = ap.parse_args(argv)
    split = lambda s: [v for v in s.split(",") if v]  # noqa: E731
    if a.fused:
        rows = [r for b in (split(a.batches) if a.batches else ["8"]) for t in split(a.threads)
                for name in (split(a.layers) if a.layers else conv.FUSED_LAYERS)
                for r in conv.fused_epilogue(batch=int(b), threads=int(t), repeats=a.repeats or 15, layer_name=name)]
        print(conv.fused_summary(rows))
        print(f"wrote {write_json(a.json.replace('conv.json', 'conv_fused.json'), rows)}")
        return 0
    rows = conv.run(dtypes=split(a.dtypes), threads=[int(t) for t in split(a.threads)], check=not a.no_check,
                    quick=a.quick, batches=[int(b) for b in split(a.batches)] if a.batches else None,
                    layouts=split(a.layouts), layers=split(a.layers) if a.layers else None, repeats=a.repeats,
                    backward=a.backward)
    print(conv.summary(rows))
    print(f"wrote {write_json(a.json, rows)}")
    return 1 if any(r.wrong for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
