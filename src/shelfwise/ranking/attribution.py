"""Per-feature contributions of a tree ensemble, read from the leaves each row reaches.

For every tree, the change of the node value at each split is credited to the
split's feature (the "path" or Saabas attribution); the root values are the
bias. A leaf's path is fixed, so each leaf's contributions are summed once, when
the model loads (one row of ``table`` per leaf). Serving a row then costs
finding its leaf in each tree (LightGBM's ``pred_leaf``, the same routing as its
predictions, missing values included) and adding those rows. Contributions plus
bias add up exactly to the raw score, like LightGBM's ``pred_contrib``
(TreeSHAP), at a fraction of its cost: for the ten served rows of a request,
~0.06 ms on the benchmark store's ranker, where walking the paths per request
took ~0.37 ms (benchmarks/README.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from shelfwise.ranking.history import FloatArray, IntArray


class PathAttribution:
    """Each leaf's contributions (``table``, a row per leaf, the trees one after the
    other from ``offsets``) and the bias (the sum of the roots' values)."""

    def __init__(self, dump: dict[str, Any], n_features: int) -> None:
        width = n_features + 1
        tables, roots = [], []
        for tree in dump["tree_info"]:
            root = tree["tree_structure"]
            table = np.zeros((int(tree.get("num_leaves", 1)), width))
            self._fill(root, np.zeros(width), table)
            tables.append(table)
            roots.append(_value(root))
        self.offsets: IntArray = np.cumsum([0] + [len(t) for t in tables[:-1]]).astype(np.int64)
        self.table: FloatArray = np.concatenate(tables) if tables else np.zeros((0, width))
        self.bias = float(sum(roots))

    @classmethod
    def _fill(cls, node: dict[str, Any], path: FloatArray, table: FloatArray) -> None:
        """Write the contributions of the path from the root to each leaf under ``node``
        (``path``: those of the way down to it) into the leaf's row."""
        if "leaf_value" in node:
            table[int(node.get("leaf_index", 0))] = path
            return
        feature, value = int(node["split_feature"]), _value(node)
        for side in ("left_child", "right_child"):
            child = node[side]
            down = path.copy()
            down[feature] += _value(child) - value
            cls._fill(child, down, table)

    def contributions(self, leaves: IntArray) -> FloatArray:
        """(rows, features + 1) of rows that reached ``leaves`` (rows, trees): each
        feature's contribution, the bias in the last column.

        A row's leaves as a sparse row of ones over every leaf, times the table: no
        (rows, trees, features) array in between (~1.5 MB for ten rows of the
        benchmark store's ranker; a batch's thousands of rows would need gigabytes),
        and each row's sum is its own, however many rows are asked together."""
        at = self.offsets + np.asarray(leaves, dtype=np.int64)
        rows, trees = at.shape
        reached = csr_matrix(
            (np.ones(rows * trees), at.ravel(), np.arange(0, rows * trees + 1, trees)),
            shape=(rows, len(self.table)),
        )
        out: FloatArray = np.asarray(reached @ self.table)
        out[:, -1] = self.bias
        return out


def _value(node: dict[str, Any]) -> float:
    return float(node["leaf_value"] if "leaf_value" in node else node.get("internal_value", 0.0))
