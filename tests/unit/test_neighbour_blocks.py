"""Neighbour tables are filled block by block to bound training memory: the block
size changes nothing in the table."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates import neighbours
from shelfwise.candidates.neighbours import NeighbourTable, block_rows


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    width=st.integers(1, 12),
    cells=st.integers(1, 200),
    seed=st.integers(0, 2**16),
)
def test_the_table_is_the_same_whatever_the_block_size(
    n: int, density: float, width: int, cells: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    sim = sp.random(n, n, density=density, random_state=rng, format="csr")
    sim.data = np.round(sim.data, 2)  # ties, as counts make them
    whole = NeighbourTable.from_sparse(sim, width)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(neighbours, "BLOCK_CELLS", cells)
        assert block_rows(n) == max(1, cells // n)
        blocks = NeighbourTable.from_sparse(sim, width)
    np.testing.assert_array_equal(blocks.items, whole.items)
    np.testing.assert_array_equal(blocks.scores, whole.scores)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    width=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    ties=st.booleans(),
)
def test_a_large_catalog_keeps_the_same_neighbours_from_the_sparse_entries(
    n: int, density: float, width: int, seed: int, ties: bool
) -> None:
    """From ``SPARSE_FROM`` items the rows' best entries come from the stored entries,
    not dense blocks: the same neighbours and scores (where scores tie at a row's
    last kept place, the same scores, the lower items first)."""
    rng = np.random.default_rng(seed)
    sim = sp.random(n, n, density=density, random_state=rng, format="csr")
    sim.data = np.round(sim.data, 1) if ties else sim.data + np.arange(len(sim.data)) * 1e-9
    sim = sim + sp.diags(np.full(n, 5.0))  # the diagonal is never a neighbour
    dense = NeighbourTable.from_sparse(sim, width)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(neighbours, "SPARSE_FROM", 1)
        kept = NeighbourTable.from_sparse(sim, width)
    np.testing.assert_array_equal(kept.scores, dense.scores)
    if not ties:
        np.testing.assert_array_equal(kept.items, dense.items)
    for row in range(n):
        got = kept.items[row][kept.items[row] >= 0]
        assert row not in got
        # best first, and among equal scores the lower item first
        pairs = list(zip(-kept.scores[row][: len(got)], got, strict=True))
        assert pairs == sorted(pairs)
        # every kept entry is the row's own, with its score
        np.testing.assert_allclose(
            kept.scores[row][: len(got)], sim[row].toarray().ravel()[got].astype(np.float32)
        )
