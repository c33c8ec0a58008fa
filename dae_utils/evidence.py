"""How the course compares runs over seeds and words the verdict: intervals, prediction intervals, rules.

One training run is never *the* result. Where a notebook draws a conclusion
from a comparison that is too slow to repeat over seeds in the notebook itself,
``benchmarks/seed_spread.py`` runs it for several seeds and writes a results
file (``dae_utils.results`` reads and writes those files); the notebook trains
one seed live and compares it and the file's seeds with the functions here.

How the course turns runs into a verdict (notebook 5, section 5.2, teaches it):

- ``compare(a, b)``: runs paired by seed (same initial weights, batch order and
  noise in both arms), so the per-seed differences, their mean and a 95 %
  confidence interval from Student's t (``scipy.stats.ttest_rel``);
- ``compare(a, 0.0192)``: runs against a fixed number (a filter, a published
  figure), a one-sample interval (``scipy.stats.ttest_1samp``);
- ``compare(a, b, paired=False)``: runs that cannot be paired, Welch's interval
  (``scipy.stats.ttest_ind(equal_var=False)``), and the words say so;
- ``prediction_interval(values)``: where one *new* run is expected to land, to
  judge a student's own run against the reference seeds;
- ``Family``: the comparisons that answer one question together, judged by Holm's
  rule so that the chance of any false "established" among them stays at 5 %.

A difference is established when its interval excludes 0. When it does not, the
data only fail to decide, and the words say what they still allow; "equivalent"
is said only when the whole interval lies inside a margin the caller names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

#: The confidence of every interval the course quotes.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """The mean and the range of one figure over seeds: a description, not a test."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def width(self) -> float:
        """The range, highest minus lowest."""
        return self.high - self.low

    def __format__(self, spec: str) -> str:
        """Write ``mean (low to high)`` with ``spec`` for each number, e.g. ``f"{s:.4f}"`` or ``f"{s:.1%}"``."""
        return f"{format(self.mean, spec)} ({format(self.low, spec)} to {format(self.high, spec)})"


def spread(values: Sequence[float]) -> Spread:
    """Return the spread of ``values``, one per seed; at least one is needed."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("spread() needs at least one value, one per seed.")
    return Spread(values)


Values = float | Sequence[float]


@dataclass(frozen=True)
class Comparison:
    """How ``a`` differs from ``b`` over seeds: the mean difference ``a - b`` and its confidence interval.

    ``kind`` is ``"paired"`` (per-seed differences), ``"one-sample"`` (runs against a
    fixed number), ``"Welch"`` (unpaired runs) or ``"exact"`` (two fixed numbers).
    ``lower_in`` and ``higher_in`` count the seeds where ``a`` is below or above ``b``
    (paired or one-sample; None for Welch, where runs have no partner).
    """

    kind: str
    n: int
    difference: float
    low: float
    high: float
    p_value: float
    lower_in: int | None
    higher_in: int | None
    confidence: float = CONFIDENCE
    margin: float | None = None
    family: int | None = None
    adjusted_p: float | None = None
    images: int | None = None  # kind "seeds and images": the test images the interval also covers

    @property
    def established(self) -> bool:
        """True when the interval excludes 0: the data say which of the two is lower."""
        return self.low > 0 or self.high < 0

    @property
    def holds(self) -> bool:
        """True when established and, if judged in a family, still established after Holm's rule."""
        return self.established and (self.adjusted_p is None or self.adjusted_p < 1 - self.confidence)

    @property
    def equivalent(self) -> bool:
        """True when a margin was named and the whole interval lies inside it."""
        return self.margin is not None and -self.margin < self.low and self.high < self.margin

    @property
    def direction(self) -> str:
        """``"lower"`` or ``"higher"`` (``a`` against ``b``) when established, else ``"not established"``."""
        if not self.established:
            return "not established"
        return "lower" if self.difference < 0 else "higher"

    def words(self, fmt: str = ".4f") -> str:
        """Say the verdict in the course's words, each number written with ``fmt`` (``".4f"``, ``".1%"``).

        Judged in a family (``Family``), the words end with what Holm's rule says of it.
        """
        words = self._words(fmt)
        if self.family is None:
            return words
        return words[:-1] + "; " + self.family_words() + ")"

    def family_words(self) -> str:
        """What Holm's rule says of this comparison within its family: holds, falls, or was not established."""
        if not self.established:
            return f"one of a family of {self.family}"
        if self.family == 1:
            return "alone in its family: no correction"
        if self.holds:
            return f"holds within its family of {self.family} (Holm)"
        return f"not established within its family of {self.family} (Holm, adjusted p = {self.adjusted_p:.2f})"

    def _words(self, fmt: str) -> str:
        level = f"{self.confidence:.0%}".replace("%", " %")
        how = {"paired": f"paired over {self.n} seeds", "one-sample": f"{self.n} seeds against a fixed number",
               "Welch": f"unpaired (Welch) over {self.n} runs", "exact": "two fixed numbers",
               "seeds and images": f"{self.n} seeds and {self.images or 0:,} test images, each image paired, against "
                                   "a fixed method"}[self.kind]
        if self.lower_in is not None and self.higher_in is not None:
            higher = self.difference > 0
            count, word = (self.higher_in, "higher") if higher else (self.lower_in, "lower")
            how = f"{word} in {count} of {self.n} seeds, {how}"
        if self.kind == "exact":
            size = format(abs(self.difference), fmt)
            return f"{self.direction} by {size} ({how})" if self.established else f"equal ({how})"
        if self.established and self.low == self.high:  # every seed gave the same difference: no interval
            return (f"{self.direction} by {format(abs(self.difference), fmt)} in every seed alike (no variation "
                    f"between seeds, so no interval; {how})")
        if self.established:
            sign = -1 if self.difference < 0 else 1  # the interval of the gap's size, both ends positive
            ends = sorted((sign * self.low, sign * self.high))
            return (f"{self.direction} by {format(abs(self.difference), fmt)} ({level} CI "
                    f"{format(ends[0], fmt)} to {format(ends[1], fmt)}; {how})")
        low, high = format(self.low, "+" + fmt), format(self.high, "+" + fmt)
        if self.equivalent:
            return (f"not established, and equivalent within {format(self.margin, fmt)}: the difference lies "
                    f"between {low} and {high} ({level} CI; {how})")
        return f"not established: the data allow a difference from {low} to {high} ({level} CI; {how})"

    def __format__(self, spec: str) -> str:
        return self.words(spec or ".4f")


def _values(values: Values, name: str) -> np.ndarray | None:
    """Return ``values`` as a float array, or None for a fixed number; refuse NaN and fewer than two seeds."""
    if isinstance(values, (int, float, np.floating, np.integer)):
        if not math.isfinite(float(values)):
            raise ValueError(f"{name} is {values}: a fixed number to compare with must be finite.")
        return None
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) < 2:
        raise ValueError(f"{name} holds {array.size} value(s) in shape {array.shape}: an interval needs one value "
                         "per seed and at least two seeds. Run more seeds (benchmarks/seed_spread.py --seeds).")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds a NaN or an infinity ({array.tolist()}): a run failed; rerun that seed.")
    return array


def compare(a: Values, b: Values, *, paired: bool = True, confidence: float = CONFIDENCE,
            margin: float | None = None) -> Comparison:
    """Compare ``a`` with ``b`` over seeds: the mean of ``a - b`` and its confidence interval.

    Args:
        a, b: one value per seed each, or a plain number for something with no
            randomness (a fixed filter, a published figure).
        paired: True (the default) when ``a[i]`` and ``b[i]`` come from the same seed,
            so their difference cancels what the seed shares; False for runs that cannot
            be paired (Welch's interval).
        confidence: of the interval, 0.95 unless there is a reason.
        margin: a difference the text calls negligible; when the whole interval lies
            within it, the words say "equivalent within" it.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must lie between 0 and 1, e.g. 0.95.")
    if margin is not None and not margin > 0:
        raise ValueError(f"margin {margin} must be a positive difference, in the units of a and b.")
    x, y = _values(a, "a"), _values(b, "b")
    if x is None and y is None:
        gap = float(a) - float(b)
        return Comparison("exact", 1, gap, gap, gap, 0.0 if gap else 1.0, None, None, confidence, margin)
    if x is None:  # a number against runs: the same test with the sign turned round
        flipped = compare(b, a, confidence=confidence, margin=margin)
        return Comparison(flipped.kind, flipped.n, -flipped.difference, -flipped.high, -flipped.low,
                          flipped.p_value, flipped.higher_in, flipped.lower_in, confidence, margin)
    if y is None:
        differences, kind = x - float(b), "one-sample"
    elif paired:
        if len(x) != len(y):
            raise ValueError(f"paired runs need one value per seed in each arm; a has {len(x)}, b has {len(y)}. "
                             "Pass the same seeds, or paired=False for runs that cannot be paired.")
        differences, kind = x - y, "paired"
    else:
        result = stats.ttest_ind(x, y, equal_var=False)
        interval = result.confidence_interval(confidence)
        return Comparison("Welch", len(x) + len(y), float(x.mean() - y.mean()), float(interval.low),
                          float(interval.high), float(result.pvalue), None, None, confidence, margin)
    mean = float(differences.mean())
    lower, higher = int(np.sum(differences < 0)), int(np.sum(differences > 0))
    if np.ptp(differences) <= 1e-12 * max(1.0, abs(mean)):  # the same difference in every seed: a point
        return Comparison(kind, len(x), mean, mean, mean, 0.0 if mean else 1.0, lower, higher, confidence, margin)
    # ttest_rel(x, y) is ttest_1samp(x - y, 0); the second form gives the difference's interval in both cases
    result = stats.ttest_1samp(differences, 0.0)
    interval = result.confidence_interval(confidence)
    return Comparison(kind, len(x), mean, float(interval.low), float(interval.high), float(result.pvalue),
                      lower, higher, confidence, margin)


def over_seeds_and_images(seed_means: Sequence[float], image_sd: float, images: int,
                          confidence: float = CONFIDENCE) -> Comparison:
    """Compare with a fixed method over seeds *and* over the test images: both parts of the error of the mean.

    Every seed is judged on the same test images with the same noise, so the spread
    between seeds leaves out the images' own sampling error. ``seed_means``: each seed's
    mean per-image difference (model minus the fixed method, image by image);
    ``image_sd``: the standard deviation over the images of the per-image difference
    averaged over the seeds; ``images``: their number. The variance of the mean is
    var(seeds) / seeds + image_sd^2 / images, the interval uses Student's t with
    seeds - 1 degrees of freedom (the cautious choice), and the words say it covers new
    images as well as new seeds.
    """
    x = _values(seed_means, "seed_means")
    assert x is not None
    if images < 2 or not image_sd >= 0:
        raise ValueError(f"need at least two images and a standard deviation >= 0; got {images} and {image_sd}.")
    n, mean = len(x), float(x.mean())
    se = math.sqrt(float(x.var(ddof=1)) / n + image_sd**2 / images)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * se
    p_value = float(2 * stats.t.sf(abs(mean) / se, n - 1)) if se > 0 else float(mean == 0)
    return Comparison("seeds and images", n, mean, mean - half, mean + half, p_value,
                      int(np.sum(x < 0)), int(np.sum(x > 0)), confidence, None, images=images)


def sign_flip_test(a: Sequence[float], b: Sequence[float]) -> float:
    """The two-sided p-value of the mean paired difference ``a - b``, assuming nothing about its distribution.

    If the arms did not differ, each seed's difference would be as likely to have either
    sign; flipping the signs in every way (exact up to 16 seeds, ``scipy.stats.permutation_test``)
    shows how often the mean lands as far from 0 as the observed one. The course's fallback
    when a few collapsed runs make the differences far from normal.
    """
    differences = np.subtract(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    if differences.ndim != 1 or len(differences) < 2:
        raise ValueError(f"sign_flip_test needs one difference per seed and at least two seeds, "
                         f"got {differences.size}.")
    result = stats.permutation_test((differences,), np.mean, permutation_type="samples",
                                    n_resamples=np.inf if len(differences) <= 16 else 100_000,
                                    alternative="two-sided", random_state=0)
    return float(result.pvalue)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value for a paired count: seeds where only ``a`` failed against only ``b``."""
    if a_only + b_only == 0:
        return 1.0
    return float(stats.binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Return Holm's adjusted p-values: a comparison holds within its family when its adjusted p is below 5 %.

    Holm's step-down rule (Holm 1979): sort the family's m p-values from the smallest;
    compare the smallest with 5 % / m, the next with 5 % / (m - 1), and so on, and stop
    at the first that fails: it and every larger one do not hold. The adjusted p-value
    ``max over j <= i of (m - j + 1) p_(j)`` says the same as one number. Like Bonferroni
    (every p against 5 % / m) it keeps the chance of any false "established" in the
    family at 5 % or less, and it never holds fewer. (statsmodels' ``multipletests``
    computes the same; the course does not depend on statsmodels for these lines.)
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or not len(p) or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"holm() needs one p-value between 0 and 1 per comparison, got {p.tolist()}.")
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted.tolist()


class Family:
    """Comparisons that answer one question together, judged together by Holm's rule.

    Each comparison's interval says whether *it* excludes 0 at 95 %; a family of m
    such intervals, all of them null, would still show some "established" by chance.
    Add each comparison with a label and its number format, then print the family: a
    header names the question and how many hold, and each verdict's words end with
    what Holm's rule says of it ("holds within its family of 7", or "not established
    within its family of 7 (Holm, adjusted p = 0.09)").
    """

    def __init__(self, question: str) -> None:
        self.question = question
        self._entries: list[tuple[str, Comparison, str]] = []

    def add(self, label: str, comparison: Comparison, fmt: str = ".4f") -> Comparison:
        """Add ``comparison``, printed after ``label`` with each number in ``fmt``; return it."""
        if comparison.kind == "exact":
            raise ValueError(f"'{label}' compares two fixed numbers: there is nothing to correct; print it apart.")
        self._entries.append((label, comparison, fmt))
        return comparison

    @property
    def labels(self) -> list[str]:
        """Each comparison's label, in the order added."""
        return [label.strip() for label, _, _ in self._entries]

    def judged(self) -> list[Comparison]:
        """Return the comparisons, each with the family's size and its Holm-adjusted p-value."""
        if not self._entries:
            raise ValueError(f"the family '{self.question}' holds no comparison yet: add() some first.")
        adjusted = holm([c.p_value for _, c, _ in self._entries])
        size = len(self._entries)
        return [replace(c, family=size, adjusted_p=p) for (_, c, _), p in zip(self._entries, adjusted, strict=True)]

    def __str__(self) -> str:
        judged = self.judged()
        if len(judged) == 1:  # nothing to correct: the verdict's words say so
            label, _, fmt = self._entries[0]
            return f"{label}: {judged[0]:{fmt}}"
        established = sum(c.established for c in judged)
        lines = [f"{self.question}: a family of {len(judged)}; by Holm's rule {sum(c.holds for c in judged)} of the "
                 f"{established} established hold"]
        lines += [f"{label}: {c:{fmt}}" for (label, _, fmt), c in zip(self._entries, judged, strict=True)]
        return "\n".join(lines)


def prediction_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Return where one more run is expected to land: mean +- t * s * sqrt(1 + 1/n) over the seeds ``values``.

    Unlike the range of the seeds (which a new run leaves with probability 2/(n+1))
    or the confidence interval of the mean (which shrinks to a point as seeds are
    added), this interval holds a new run with the stated probability, for runs
    that vary like a normal distribution.
    """
    x = _values(values, "values")
    assert x is not None  # _values returns None only for a plain number, which is refused above
    n, s = len(x), float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * s * math.sqrt(1 + 1 / n)
    return float(x.mean()) - half, float(x.mean()) + half


def range_rule(a: Values, b: Values) -> bool:
    """Apply the rule the course used before: True when the means differ by more than the larger range.

    Kept to show in notebook 5 why it fails (its power falls as seeds are added);
    no verdict of the course rests on it.
    """
    x = np.atleast_1d(np.asarray(a, dtype=float))
    y = np.atleast_1d(np.asarray(b, dtype=float))
    return bool(abs(x.mean() - y.mean()) > max(np.ptp(x), np.ptp(y)))


@dataclass(frozen=True)
class RuleRates:
    """How often each rule declares a difference, over simulated experiments, for one number of seeds."""

    seeds: int
    range_rule: float
    paired_interval: float


def simulate_rules(seed_counts: Sequence[int], effect: float, *, seed_sd: float = 1.0, trials: int = 4000,
                   confidence: float = CONFIDENCE, generator: np.random.Generator | None = None
                   ) -> list[RuleRates]:
    """Simulate paired experiments and return how often each rule finds a difference, per number of seeds.

    Each trial draws ``n`` seeds. A seed moves both arms alike (normal, sd ``seed_sd``),
    each run adds its own noise, scaled so that the per-seed difference has sd 1, and
    arm ``a`` is lower by ``effect`` (in those units). With ``effect=0`` the rates are
    false positives; otherwise they are the power to detect the effect.
    """
    if trials < 1 or any(n < 2 for n in seed_counts):
        raise ValueError(f"need trials >= 1 and at least 2 seeds per experiment; got trials={trials}, "
                         f"seed counts {list(seed_counts)}.")
    rng = generator if generator is not None else np.random.default_rng(0)
    own = 1 / math.sqrt(2)  # each arm's own noise, so that a - b has sd 1
    rates = []
    for n in seed_counts:
        shared = rng.normal(0.0, seed_sd, (trials, n))
        a = shared + rng.normal(0.0, own, (trials, n)) - effect
        b = shared + rng.normal(0.0, own, (trials, n))
        gap = np.abs(a.mean(axis=1) - b.mean(axis=1))
        by_range = gap > np.maximum(np.ptp(a, axis=1), np.ptp(b, axis=1))
        interval = stats.ttest_rel(a, b, axis=1).confidence_interval(confidence)
        by_interval = (interval.low > 0) | (interval.high < 0)
        rates.append(RuleRates(n, float(by_range.mean()), float(by_interval.mean())))
    return rates


#: A verdict as the course writes it, printed or in prose: "lower by 0.0061 (95 % CI 0.0027 to 0.0095" (or
#: "lower by 0.0061, 95 % CI 0.0027 to 0.0095"), or
#: "(not established:) the data allow a difference from -0.0089 to +0.0020". Numbers may carry a % sign.
_NUMBER = r"[-+\u2212]?\d+(?:\.\d+)?(?:\s?%)?"
VERDICT = re.compile(
    rf"\b(?P<direction>lower|higher)\s+by\s+(?P<size>{_NUMBER})(?:\s+\(|,\s+)95\s?%\s+CI\s+(?P<low>{_NUMBER})\s+to\s+"
    rf"(?P<high>{_NUMBER})"
    rf"|(?:\bnot\s+established(?:,\s+and\s+equivalent\s+within\s+{_NUMBER})?:\s+)?\bthe\s+data\s+allow\s+a\s+"
    rf"difference\s+from\s+(?P<from>{_NUMBER})\s+to\s+(?P<to>{_NUMBER})"
)


#: What Holm's rule said of a printed verdict (``Comparison.family_words``).
FAMILY_MARK = re.compile(r"(?P<holds>holds) within its family of (?P<held>\d+)|not established within its family of "
                         r"(?P<fell>\d+)|one of a family of (?P<open>\d+)|(?P<alone>alone in its family)")


@dataclass(frozen=True)
class StatedVerdict:
    """A verdict found in text: its direction and its interval's ends, as written.

    ``family`` and ``holds`` are what Holm's rule said of it, where the words say
    (printed verdicts judged in a ``Family``); None elsewhere.
    """

    direction: str
    low: str
    high: str
    family: int | None = None
    holds: bool | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """Direction and interval as written: two verdicts with the same key state the same comparison."""
        return self.direction, self.low, self.high

    def matches(self, other: StatedVerdict) -> bool:
        """True when ``other`` says the same, its numbers rounded to the precision written here."""
        return self.direction == other.direction and all(
            _agrees(mine, theirs) for mine, theirs in ((self.low, other.low), (self.high, other.high)))


def _value(text: str) -> tuple[float, float]:
    """Return a written number's value and half a unit of its last digit (a percentage as a fraction)."""
    text = text.replace("\u2212", "-").replace(" ", "")
    percent = text.endswith("%")
    digits = text.rstrip("%")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    scale = 0.01 if percent else 1.0
    return float(digits) * scale, 0.5 * 10.0 ** -decimals * scale


def _agrees(written: str, printed: str) -> bool:
    """True when ``printed`` rounds to ``written`` (``written`` may be the coarser of the two)."""
    value, half = _value(written)
    other, _ = _value(printed)
    return abs(value - other) <= half * (1 + 1e-9)


def stated_verdicts(text: str) -> list[StatedVerdict]:
    """Return every verdict written in ``text`` in the course's words (see ``VERDICT``)."""
    found = []
    matches = list(VERDICT.finditer(text))
    starts = [m.start() for m in matches[1:]] + [len(text)] * bool(matches)
    for match, following in zip(matches, starts, strict=True):  # a family mark lies before the line's end
        line_end = text.find("\n", match.end())
        end = min(following, len(text) if line_end < 0 else line_end)
        mark = FAMILY_MARK.search(text, match.end(), end)
        family = holds = None
        if mark:
            family = 1 if mark["alone"] else int(mark["held"] or mark["fell"] or mark["open"])
            holds = bool(mark["holds"] or mark["alone"])
        if match["from"] is not None:
            found.append(StatedVerdict("not established", match["from"], match["to"], family,
                                       None if mark is None else False))
        else:
            found.append(StatedVerdict(match["direction"], match["low"], match["high"], family, holds))
    return found


def printed_text(notebook: Any) -> str:
    """Return everything a notebook's code cells printed or displayed as text (an ``nbformat`` notebook)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def printed_in_notebook(path: str | Path) -> list[StatedVerdict]:
    """Return every verdict the code cells of the notebook at ``path`` printed, with its family mark where any."""
    import nbformat

    return stated_verdicts(printed_text(nbformat.read(path, as_version=4)))


def distinct(verdicts: Sequence[StatedVerdict]) -> list[StatedVerdict]:
    """Return each comparison once (by direction and interval as written), keeping a printing judged in a family."""
    kept: dict[tuple[str, str, str], StatedVerdict] = {}
    for verdict in verdicts:
        if verdict.key not in kept or (kept[verdict.key].family is None and verdict.family is not None):
            kept[verdict.key] = verdict
    return list(kept.values())


def stated_in_notebook(path: str | Path) -> list[StatedVerdict]:
    """Return every verdict written in the markdown cells of the notebook at ``path``."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return stated_verdicts("\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown"))
