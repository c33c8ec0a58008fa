"""Notebook 5's check: the assignment's mode mapping, from a count matrix."""

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


def check_mode_mapping_counts(mode_mapping_mine: Callable[..., tuple[Any, Any]]) -> None:
    """Check ``mode_mapping_mine(counts)``, which returns (mapping, accuracy) from a cluster-by-digit count matrix.

    ``counts[k, digit]`` is how many images of ``digit`` k-means put in cluster k; there
    may be more clusters than digits (here 12). ``mapping[k]`` is the digit cluster
    k stands for; the accuracy is the share of all images whose cluster's digit is
    their own.
    """
    counts = _check_counts(12)
    expected_mapping = counts.argmax(axis=1)
    expected_accuracy = float(counts[np.arange(len(counts)), expected_mapping].sum() / counts.sum())
    inputs = {"counts": counts}
    kept = _kept(inputs)
    returned = _calls_checked(_matrix_forbidden(), mode_mapping_mine, counts)
    _unchanged(inputs, kept)
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise NotYet("Return two things, the mapping and the accuracy, as a pair (mapping, accuracy).")
    mapping, accuracy = returned
    if isinstance(mapping, dict):  # {cluster: digit} works as well as an array indexed by cluster
        missing = [k for k in range(len(counts)) if k not in mapping]
        if missing:
            raise NotYet(f"The mapping has no entry for cluster {missing[0]}: every cluster needs a digit.")
        mapping = [mapping[k] for k in range(len(counts))]
    if mapping is None:
        raise NotYet("The mapping is None. Is it filled in and returned?")
    mapping = np.asarray(mapping)
    if mapping.shape != (len(counts),):
        across = " The rows of counts are the clusters, the columns the digits." if mapping.shape == (10,) else ""
        raise NotYet(f"The mapping must hold one digit per cluster, {len(counts)} here: mapping[k] is the digit "
                     f"cluster k stands for. Yours has shape {mapping.shape}.{across}")
    accuracy = _number(accuracy, "the accuracy")
    right_mapping = np.array_equal(mapping, expected_mapping)
    if right_mapping and math.isclose(accuracy, expected_accuracy, abs_tol=ACCURACY_TOL):
        _passed(f"the mapping of 12 clusters and the accuracy ({expected_accuracy:.1%} on the check's counts) "
                "are right.")
        return
    if not right_mapping:
        raise NotYet("Some clusters map to the wrong digit. Each cluster stands for the digit most common among "
                     "its members: the largest count in its row.")
    if math.isclose(accuracy, 100 * expected_accuracy, abs_tol=100 * ACCURACY_TOL):
        raise NotYet("That is a percentage. Return the accuracy as a share between 0 and 1.")
    if math.isclose(accuracy, float(np.trace(counts[:10]) / counts.sum()), abs_tol=ACCURACY_TOL):
        raise NotYet("The accuracy counts the images whose cluster number equals their digit. Count those whose "
                     "cluster's mapped digit equals it.")
    kept_counts = counts[np.arange(len(counts)), expected_mapping]
    if math.isclose(accuracy, float(np.mean(kept_counts / counts.sum(axis=1))), abs_tol=ACCURACY_TOL):
        raise NotYet("That is the mean of the clusters' own accuracies, which weighs a small cluster like a large "
                     "one. Divide the images mapped right by all images.")
    raise NotYet("The mapping is right; the accuracy is the share of all images that sit in a cluster mapped to "
                 "their own digit.")
