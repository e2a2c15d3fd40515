#!/usr/bin/env python3
"""ResNet-50 forward (batch norm folded, random weights) on our kernels vs the same network in
PyTorch (eager and TorchScript-frozen), images/s at batch 1 and 8, logits checked against
PyTorch. JSON to benchmarks/results/resnet50.json. Measurement: aicc_kernels.bench.resnet50.run.

    python benchmarks/resnet50.py                 # batch 1 and 8, NHWC, 2 threads
    python benchmarks/resnet50.py --quick         # batch 1, one timed run
    python benchmarks/resnet50.py --dtype bf16    # bf16 weights/activations vs torch bf16 eager (channels_last)
    python benchmarks/resnet50.py --dtype bf16 --threads 1 --cpu-time   # on a loaded machine
    python benchmarks/resnet50.py --train         # the training step, batch 8 and 32 (needs torch;
                                                  # aicc_kernels.bench.resnet50_train)
    python benchmarks/resnet50.py --train --threads 1 --cpu-time --batches 8   # on a loaded machine
"""

import argparse
import json
import pathlib
import sys

from aicc_kernels.bench import resnet50
from aicc_kernels.bench.record import write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8; --quick: 1)")
    ap.add_argument("--layouts", default="NHWC")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--dtype", default="f32", help="comma-separated: f32, bf16 (default f32)")
    ap.add_argument("--profile", action="store_true",
                    help="per-layer conv times, ours vs torch in the --dtype (first), --layouts (first), --batches "
                         "(first, default 8), --threads (first); JSON to resnet50_profile.json")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the calling thread's CPU time (needs --threads 1): for a loaded, shared machine")
    ap.add_argument("--no-jit", action="store_true", help="skip the TorchScript-frozen peer")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--train", action="store_true", help="forward + backward + SGD step vs PyTorch eager")
    ap.add_argument("--json", default=str(pathlib.Path(__file__).parent / "results" / "resnet50.json"))
    a = ap.parse_args(argv)
    split = lambda s: [v for v in s.split(",") if v]  # noqa: E731
    if a.profile:
        prof = resnet50.layer_profile(dtype=split(a.dtype)[0], batch=int(split(a.batches)[0]) if a.batches else 8,
                                      layout=split(a.layouts)[0], threads=int(split(a.threads)[0]),
                                      repeats=a.repeats or 5, cpu_time=a.cpu_time)
        print(resnet50.profile_summary(prof))
        path = pathlib.Path(a.json)
        path = path.with_name(path.stem + "_profile" + path.suffix)  # never the inference JSON
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(prof, indent=1))
        print(f"wrote {path}")
        return 0
    if a.train and a.dtype != "f32":
        ap.error("--train runs in f32 only (--dtype bf16 is the inference benchmark)")
    if a.train:
        from aicc_kernels.bench import resnet50_train

        rows = resnet50_train.run(threads=[int(t) for t in split(a.threads)], quick=a.quick,
                                  batches=[int(b) for b in split(a.batches)] if a.batches else None, repeats=a.repeats,
                                  cpu_time=a.cpu_time)
        print(resnet50_train.summary(rows))
        path = a.json.replace("resnet50.json", "resnet50_train.json")
        print(f"wrote {write_json(path, rows)}")
        return 1 if any(r.wrong for r in rows) else 0
    rows = resnet50.run(threads=[int(t) for t in split(a.threads)], quick=a.quick,
                        batches=[int(b) for b in split(a.batches)] if a.batches else None,
                        layouts=split(a.layouts), repeats=a.repeats, jit=not a.no_jit, dtypes=split(a.dtype), cpu_time=a.cpu_time)
    print(resnet50.summary(rows))
    print(f"wrote {write_json(a.json, rows)}")
    return 1 if any(r.wrong for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
