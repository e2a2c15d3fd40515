"""Tile-edge sizes for the conformance runner.

Accelerator kernels split every dimension into tiles of 64-256 elements and handle the
last, partial tile separately; that tail path is where ports break, and a case generator
whose sizes stop below the tile never reaches it. For each tile size T the runner makes
cases with T-1, T, T+1, 2T+1 and a prime just above 2T+1 in one dimension at a time:
one short of a full tile, exactly one, one into a second tile, one into a third tile
(so the last tile is neither the first nor the second), and a size no power-of-two split
divides.

Where the tiles come from, per op (gemm/qgemm: (M, N, K); conv ops: the implicit GEMM
(spatial positions, output channels, input channels)):
  * the backend's declaration, Backend(tiles={"gemm": (128, 128, 64), ...});
  * the runner's --tile MxNxK (every op);
  * DEFAULT_TILES (128 and 256 in every dimension), always, so an undeclared 128- or
    256-wide tile is covered too.
--max-dim caps every generated size (lower it for a quick run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

DEFAULT_TILES = (128, 256)
TileSpec = Union[int, Sequence[int]]


def next_prime(n: int) -> int:
    """The smallest prime > n."""
    p = n + 1
    while p < 2 or any(p % d == 0 for d in range(2, int(p ** 0.5) + 1)):
        p += 1
    return p


def edge_sizes(tile: int) -> Tuple[int, ...]:
    """T-1, T, T+1, 2T+1 and the first prime above 2T+1 (distinct, positive)."""
    sizes = {tile - 1, tile, tile + 1, 2 * tile + 1, next_prime(2 * tile + 1)}
    return tuple(sorted(s for s in sizes if s > 0))


def parse_tile(spec: TileSpec, *, argument: str = "tile") -> Tuple[int, int, int]:
    """(M, N, K) from 128, (128, 128, 64) or "128x128x64" (one number: every dimension)."""
    if isinstance(spec, str):
        parts = spec.lower().replace(",", "x").split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{argument}: expected MxNxK such as 128x128x64, got {spec!r}") from None
    elif isinstance(spec, int):
        values = [spec]
    else:
        try:
            values = [int(v) for v in spec]
        except (TypeError, ValueError):
            raise TypeError(f"{argument}: expected an int or a tuple of 1 to 3 ints, got {spec!r}") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or any(v < 1 for v in values):
        raise ValueError(f"{argument}: expected 1 or 3 positive sizes (M, N, K), got {spec!r}")
    return tuple(values)


def check_tiles(tiles: Optional[Mapping[str, TileSpec]]) -> dict:
    """A backend's tiles= declaration, validated: {op: ((M..), (N..), (K..))} (one or more tiles per op)."""
    out = {}
    for op, spec in (tiles or {}).items():
        if not isinstance(op, str) or not op:
            raise TypeError(f"tiles: expected op names as keys, got {op!r}")
        specs = spec if isinstance(spec, list) else [spec]
        out[op] = [parse_tile(s, argument=f"tiles[{op!r}]") for s in specs]
    return out


@dataclass(frozen=True)
class TilePlan:
    """The sizes the cases of one op draw on: per implicit-GEMM dimension, the tile edges."""

    m: Tuple[int, ...]
    n: Tuple[int, ...]
    k: Tuple[int, ...]
    max_dim: int
    tiles: Tuple[Tuple[int, int, int], ...] = ()

    def edges(self, dim: str) -> Tuple[int, ...]:
        return getattr(self, dim)

    def describe(self) -> str:
        return ", ".join("x".join(map(str, t)) for t in self.tiles)


def plan(op: str, declared: Optional[Mapping[str, Iterable[Tuple[int, int, int]]]] = None,
         extra: Sequence[Tuple[int, int, int]] = (), max_dim: Optional[int] = None,
         defaults: bool = True) -> TilePlan:
    """The tile edges for `op`: the backend's declaration, the runner's --tile, the defaults."""
    tiles = list((declared or {}).get(op, ())) + list(extra)
    if defaults:
        tiles += [(t, t, t) for t in DEFAULT_TILES]
    tiles = list(dict.fromkeys(tiles))
    per_dim = []
    for d in range(3):
        sizes = sorted({s for t in tiles for s in edge_sizes(t[d])})
        if max_dim is not None:
            sizes = [s for s in sizes if s <= max_dim]
        per_dim.append(tuple(sizes))
    largest = max([max(p) for p in per_dim if p] + [0])
    return TilePlan(*per_dim, max_dim=max_dim if max_dim is not None else largest, tiles=tuple(tiles))
