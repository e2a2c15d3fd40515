"""Instruction counts of the aarch64 GEMM microkernels' inner loops, from the disassembly.

Emulation gives no speed figures, so the kernels are judged against the ideal instead: one
multiply instruction (fmla / bfdot / sdot / usmmla) per 4 output lanes per k step, nothing else.
For each microkernel this finds its main loop (the backward branch whose body holds the most
multiply instructions), counts that body's instructions by kind, and prints per k step of the
tile: multiplies, loads, other instructions, and multiplies / all (the ideal is 1.0 on a core
that issues one vector multiply per cycle and loads in parallel; the loads and the loop
overhead are what the tile size amortizes).

    python3 tools/aarch64_insn_report.py OBJDUMP OBJECT_DIR
"""
import re
import subprocess
import sys
from pathlib import Path

# kernel file, function-name fragment, multiply mnemonic, outputs (mr x nr), k per multiply step
KERNELS = [
    ("f32_8x12_neon.cc.o", "ukernel_f32_8x12_neon", "fmla", 8 * 12, "k"),
    ("bf16_8x12_armbf16.cc.o", "ukernel_bf16_8x12_armbf16", "bfdot", 8 * 12, "2 k (bf16 pair)"),
    ("s8s8_8x12_dotprod.cc.o", "ukernel_s8s8_8x12_dotprod", "sdot", 8 * 12, "4 k (quad)"),
    ("u8s8_8x12_i8mm.cc.o", "ukernel_u8s8_8x12_i8mm", "usmmla", 8 * 12, "8 k (quad pair)"),
]

LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")


def functions(objdump, obj):
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], check=True, capture_output=True,
                         text=True).stdout
    funcs, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            name = m.group(1)
            funcs[name] = []
            continue
        m = LINE.match(line)
        if m and name:
            funcs[name].append((int(m.group(1), 16), m.group(2), m.group(3)))
    return funcs


def main_loop(insns, mul):
    best = None
    for i, (addr, op, args) in enumerate(insns):
        if not (op.startswith("b.") or op in ("cbnz", "cbz", "b", "tbnz", "tbz")):
            continue
        m = re.match(r"([0-9a-f]+)\s", args.split(",")[-1].strip() + " ")
        if not m:
            continue
        target = int(m.group(1), 16)
        if target >= addr:
            continue
        body = [x for x in insns if target <= x[0] <= addr]
        muls = sum(1 for x in body if x[1] == mul)
        if best is None or muls > best[0]:
            best = (muls, body)
    return best


def main():
    objdump, objdir = sys.argv[1], Path(sys.argv[2])
    rows = []
    for fname, fn, mul, outputs, kstep in KERNELS:
        objs = list(objdir.rglob(fname))
        if not objs:
            print(f"aarch64_insn_report: {fname} not found under {objdir}", file=sys.stderr)
            return 1
        funcs = functions(objdump, objs[0])
        name = next(n for n in funcs if fn in n)
        found = main_loop(funcs[name], mul)
        if found is None or found[0] == 0:
            print(f"aarch64_insn_report: no loop with {mul} in {fn}", file=sys.stderr)
            return 1
        muls, body = found
        ideal = outputs // 4  # one multiply per 4 output lanes per step
        steps = muls / ideal
        loads = sum(1 for x in body if x[1].startswith("ld"))
        spills = sum(1 for x in body if x[1].startswith("st"))
        other = len(body) - muls - loads
        rows.append((fn.replace("ukernel_", ""), kstep, steps, len(body) / steps, muls / steps, loads / steps,
                     other / steps, spills, ideal, muls / len(body)))
    print("instruction counts per k step of the 8x12 output tile (main loop of each microkernel, "
          "from aarch64-linux-gnu-objdump; ideal = one multiply per 4 output lanes)")
    print(f"{'kernel':<22} {'k step':<16} {'unroll':>6} {'insns':>6} {'mul':>5} {'loads':>5} {'other':>5} "
          f"{'spills':>6} {'ideal':>5} {'mul/all':>7}")
    for r in rows:
        print(f"{r[0]:<22} {r[1]:<16} {r[2]:>6.0f} {r[3]:>6.1f} {r[4]:>5.0f} {r[5]:>5.1f} {r[6]:>5.1f} "
              f"{r[7]:>6d} {r[8]:>5d} {r[9]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
