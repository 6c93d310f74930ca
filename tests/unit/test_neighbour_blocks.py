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
