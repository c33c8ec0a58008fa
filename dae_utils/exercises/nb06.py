"""Notebook 6's check: the one-to-one (Hungarian) accuracy, from a count matrix."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .common import (
    ACCURACY_TOL,
    NotYet,
    _calls_checked,
    _check_counts,
    _kept,
    _matrix_forbidden,
    _number,
    _passed,
    _unchanged,
)


def check_hungarian_counts(hungarian_mine: Callable[..., Any]) -> None:
    """Check ``hungarian_mine(counts)``: the accuracy of the best one-to-one pairing of clusters and digits.

    ``counts[k, digit]`` as in notebook 5's exercise; with more clusters than digits
    (the second matrix here, 12 x 10), the clusters left without a digit count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    for n_clusters in (10, 12):
        counts = _check_counts(n_clusters)
        rows, cols = linear_sum_assignment(counts, maximize=True)
        expected = float(counts[rows, cols].sum() / counts.sum())
        inputs = {"counts": counts}
        kept = _kept(inputs)
        returned = _calls_checked(_matrix_forbidden(), hungarian_mine, counts)
        _unchanged(inputs, kept)
        answer = _number(returned, "the accuracy")
        if math.isclose(answer, expected, abs_tol=ACCURACY_TOL):
            continue
        total = counts.sum()
        worst_rows, worst_cols = linear_sum_assignment(counts)
        if math.isclose(answer, float(counts.max(axis=1).sum() / total), abs_tol=ACCURACY_TOL):
            raise NotYet("That is the mode mapping, where two clusters may claim one digit. Here each digit may be "
                         "used once: that makes it an assignment problem, which scipy.optimize can solve.")
        if math.isclose(answer, float(counts.max(axis=0).sum() / total), abs_tol=ACCURACY_TOL):
            raise NotYet("Each digit took its best cluster on its own, so two digits may share one. The pairing "
                         "must be one-to-one: one cluster per digit, one digit per cluster.")
        if math.isclose(answer, float(counts[worst_rows, worst_cols].sum() / total), abs_tol=ACCURACY_TOL):
            raise NotYet("That pairing keeps the fewest images right. The best pairing keeps the most.")
        if math.isclose(answer, 100 * expected, abs_tol=100 * ACCURACY_TOL):
            raise NotYet("That is a percentage. Return the accuracy as a share between 0 and 1.")
        if math.isclose(answer, float(np.trace(counts) / total), abs_tol=ACCURACY_TOL):
            raise NotYet("The accuracy pairs cluster k with digit k. Find the pairing that keeps the most images.")
        raise NotYet(f"For a {n_clusters} x 10 count matrix the accuracy differs. Choose the one-to-one pairing of "
                     "clusters and digits that keeps the most images, and divide by all the images.")
    _passed("the one-to-one accuracy is right for 10 clusters and for 12.")
