"""Peak memory and time of filling a content neighbour table, by dense block size.

    .venv/bin/python benchmarks/neighbour_memory.py [--products 20000] [--cells 20000000 4000000]

A TF-IDF-like sparse item x term matrix (``--products`` items, ~30 terms each from a
vocabulary of products / 4) is multiplied by its transpose block by block and each
row's best 50 neighbours are kept, as ``candidates.content.fit_content`` does. For
each block size (``neighbours.BLOCK_CELLS``, float64 cells), in the same process:
the peak of numpy's allocations (tracemalloc) and the wall/CPU seconds; ratios are
against the first size given (the baseline). The tables must come out identical.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from shelfwise.candidates import neighbours
from shelfwise.candidates.neighbours import NeighbourTable, block_rows


def fill(x: sp.csr_matrix, width: int) -> NeighbourTable:
    n = x.shape[0]
    xt = sp.csr_matrix(x.T)
    table = NeighbourTable(np.full((n, width), -1, np.int32), np.zeros((n, width), np.float32))
    chunk = block_rows(n)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        table.fill_dense((x[rows] @ xt).toarray(), rows)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--cells", type=int, nargs="+", default=[20_000_000, 4_000_000])
    args = ap.parse_args()
    n = args.products
    rng = np.random.default_rng(0)
    terms = max(n // 4, 1)
    rows = np.repeat(np.arange(n), 30)
    cols = rng.zipf(1.3, len(rows)) % terms
    x = sp.csr_matrix((rng.random(len(rows)), (rows, cols)), shape=(n, terms))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sp.csr_matrix(sp.diags(1 / np.where(norms > 0, norms, 1)) @ x)
    first: tuple[float, float, float] | None = None
    tables = []
    for cells in args.cells:
        neighbours.BLOCK_CELLS = cells
        tracemalloc.start()
        t, c = time.perf_counter(), time.process_time()
        tables.append(fill(x, 50))
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        first = first or (peak, wall, cpu)
        print(
            f"{cells:>11,} cells ({block_rows(n):>5,} rows a block): peak {peak:7.0f} MB "
            f"(x{peak / first[0]:.2f}), wall {wall:6.1f} s (x{wall / first[1]:.2f}), "
            f"CPU {cpu:6.1f} s (x{cpu / first[2]:.2f})"
        )
    for t in tables[1:]:
        assert (t.items == tables[0].items).all() and (t.scores == tables[0].scores).all()
    print("tables identical")


if __name__ == "__main__":
    main()
