"""Reference results files: loaded, described and written, and read by arm and measure.

``benchmarks/seed_spread.py`` runs each comparison that is too slow for a
notebook over several seeds and writes one JSON file per experiment into
``benchmarks/results/`` (with ``write_results``, which records the command,
machine and commit: ``provenance``). A notebook opens one with ``load`` and asks
it questions by name instead of unpacking its rows by hand::

    reference = results.load("batchnorm")
    print(reference)                                   # where the file came from
    reference.per_seed(results.WITH_BN, "test_loss", lr=0.01)
    reference.compare(results.WITH_BN, results.WITHOUT_BN, "test_loss", lr=0.01)
    print(reference.table([results.WITH_BN, results.WITHOUT_BN], ["test_loss"], lr=0.01))

An *arm* is one of the things an experiment compares (batch norm or not, a VAE's
beta, a sampler); its name is defined here once, and seed_spread writes the
files with the same names. A *measure* is a figure each seed's run of an arm
has: a key of the run's record (``"test_loss"``, or ``"gmm.accuracy_hungarian"``
for a nested one) or a named measure below (``"readable"``, ``"information"``),
each with its number format.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import evidence

#: Where the committed results files live, next to the scripts that write them.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

# The arms, named once: seed_spread writes these names, the notebooks ask for them.
WITH_BN = "with batch norm"
WITHOUT_BN = "without batch norm"
SHIFT_AFTER_IT = "with batch norm, shift injected after it"
SHIFT_AFTER_EACH = "with batch norm, shift injected after each"
SMALL_SHIFT_AFTER_EACH = "with batch norm, small shift injected after each"
#: Notebook 2's batch-norm variants: (batch norm, dose of the injected shift, injected after every batch norm).
BATCHNORM_VARIANTS = {
    WITH_BN: (True, None, False),
    WITHOUT_BN: (False, None, False),
    SHIFT_AFTER_IT: (True, "injected_shift", False),
    SHIFT_AFTER_EACH: (True, "injected_shift", True),
    SMALL_SHIFT_AFTER_EACH: (True, "small_injected_shift", True),
}
WITH_AFFINE = "with gamma and beta"
WITHOUT_AFFINE = "without gamma and beta"
DENOISING = "denoising (noise 0.3)"
PLAIN = "plain (no noise)"
AUTOENCODER = "denoising AE"
#: Notebook 6's clustering methods on the course model's codes, and where each seed's record keeps them.
CLUSTERINGS = {"k-means on the codes": "train_clustering", "Gaussian mixture on the codes": "gmm",
               "UMAP of the codes, then a Gaussian mixture": "umap_gmm"}

#: Notebook 5's k-means of the training codes, with the test images assigned to its clusters.
TEST_CLUSTERING = "k-means, test images assigned"


def vae_arm(beta: float | str) -> str:
    """The name of the VAE arm trained with ``beta``, e.g. ``"VAE, beta 1"``."""
    return f"VAE, beta {beta:g}" if isinstance(beta, float | int) else f"VAE, beta {beta}"


Arm = Callable[[dict[str, Any]], "dict[str, Any] | None"]
Measure = tuple[Callable[[dict[str, Any]], float], str]


def _key(name: str, value: Any) -> Arm:
    return lambda row: row if row.get(name) == value else None


def _arms(experiment: str, data: dict[str, Any]) -> dict[str, Arm]:
    """Each arm of ``experiment``: a function from a seed's row to that arm's record (None: not in this row)."""
    rows = data.get("rows", [])
    if experiment == "batchnorm":
        return {variant: _key("variant", variant) for variant in BATCHNORM_VARIANTS}
    if experiment == "affine":
        return {WITH_AFFINE: _key("affine", True), WITHOUT_AFFINE: _key("affine", False)}
    if experiment == "sweep":
        return {DENOISING: _key("training_noise", 0.3), PLAIN: _key("training_noise", 0.0)}
    if experiment == "course":  # the clusterings of notebooks 5 and 6, and notebook 4's samplers
        arms = {name: (lambda row, key=key: row[key]) for name, key in CLUSTERINGS.items()}
        arms[TEST_CLUSTERING] = lambda row: row["test_clustering"]
        return arms | {name: (lambda row, name=name: row["samplers"][name]) for name in rows[0]["samplers"]}
    if experiment == "vae":
        arms = {AUTOENCODER: lambda row: row["autoencoder"]}
        return arms | {vae_arm(beta): (lambda row, beta=beta: row["vae"][beta]) for beta in rows[0]["vae"]}
    if experiment in ("generation", "latent"):
        arms = {f"{model}: {sampler}": (lambda row, model=model, sampler=sampler: row[model]["samplers"][sampler])
                for model in ("autoencoder", "vae") for sampler in rows[0][model]["samplers"]}
        return arms | {against_reconstructions(model, sampler):
                       (lambda row, model=model, sampler=sampler: row[model]["against_reconstructions"][sampler])
                       for model in ("autoencoder", "vae")
                       for sampler in rows[0][model].get("against_reconstructions", {})}
    return {}


#: The floor of the samplers measured against a model's reconstructions: one half of them against the other.
RECONSTRUCTION_FLOOR = "decoded test codes, other half"


def against_reconstructions(model: str, sampler: str) -> str:
    """The arm of ``model``'s ``sampler`` measured against the model's own reconstructions (generation only)."""
    return f"{model} against its reconstructions: {sampler}"


#: Named measures, each with its number format; any other measure is a key of the arm's record.
MEASURES: dict[str, Measure] = {
    "readable": (lambda r: r["generated"]["readable_share"], ".1%"),
    "TV to real": (lambda r: r["generated"]["total_variation"], ".2f"),
    "distance / real": (lambda r: r["median_distance"] / r["median_distance_real"], ".1f"),
    "readable, reconstructions": (lambda r: r["reconstructed"]["readable_share"], ".1%"),
    "digits kept, reconstructions": (lambda r: r["reconstructed"]["digits_kept"], ".1%"),
    # The moment-matched sampler: one Gaussian fitted to the model's training codes, at the codes' own scale.
    "readable, fitted Gaussian": (lambda r: r["fitted_gaussian"]["readable_share"], ".1%"),
    "TV to real, fitted Gaussian": (lambda r: r["fitted_gaussian"]["total_variation"], ".2f"),
    "distance / real, fitted Gaussian": (lambda r: r["median_distance_fitted"] / r["median_distance_real"], ".1f"),
    "denoising MSE": (lambda r: r["denoised_mse"], ".4f"),
    "k-means accuracy": (lambda r: r["kmeans"]["accuracy_mode"], ".1%"),
    "silhouette": (lambda r: r["silhouette"], ".3f"),
    "KL (nats)": (lambda r: r["elbo"]["kl"], ".1f"),
    "KL(q || N(0, I))": (lambda r: r["aggregate_kl"], ".2f"),
    "information": (lambda r: r["mutual_information"], ".2f"),  # the mean KL less KL(q || N(0, I))
    "information, direct": (lambda r: r["index_information"], ".2f"),  # vae.index_information: at most log n
    "readable by density": (lambda r: [part["readable_share"] for part in r["readable_by_density"]], ""),
}


#: The number format of a record's key, where a table or a verdict does not name one.
FORMATS = {"test_loss": ".4f", "denoised_mse": ".4f", "bottleneck_mse": ".4f", "accuracy_mode": ".1%",
           "accuracy_hungarian": ".1%", "nmi": ".3f", "digits_kept": ".1%", "ssim": ".3f",
           "readable_share": ".1%", "frechet_distance": ".1f", "precision": ".3f", "recall": ".3f",
           "coverage": ".2f", "total_variation": ".3f", "relu_cut_share": ".0%", "last_50_mean": ".4f",
           "density": ".2f", "novelty": ".2f", "copy_share": ".1%"}


def _field(record: dict[str, Any], measure: str | tuple[str, ...]) -> float:
    """Return ``measure`` of one record: a named measure, a key, a dotted path of keys or a tuple of keys."""
    if isinstance(measure, str) and measure in MEASURES:
        return MEASURES[measure][0](record)
    value: Any = record
    for part in measure.split(".") if isinstance(measure, str) else measure:
        value = value[part]
    return value


def number_format(measure: str | tuple[str, ...]) -> str:
    """The number format of ``measure``: a named measure's own, else its last key's in ``FORMATS``."""
    if isinstance(measure, str) and measure in MEASURES:
        return MEASURES[measure][1]
    last = measure.split(".")[-1] if isinstance(measure, str) else measure[-1]
    return FORMATS.get(last, "g")


class Reference:
    """One results file, read by arm and measure; ``print`` it to say where it came from."""

    def __init__(self, experiment: str, data: dict[str, Any]) -> None:
        self.experiment = experiment
        self.data = data
        self.arms = _arms(experiment, data)

    seeds = property(lambda self: self.data["seeds"], doc="The seeds of the runs, in order.")
    settings = property(lambda self: self.data["settings"], doc="The settings every run shared.")
    fixed = property(lambda self: self.data.get("fixed", {}), doc="Figures that do not vary by seed.")

    def __str__(self) -> str:
        return describe(self.data)

    def rows(self, arm: str | None = None, *, part: str = "rows", **where: Any) -> list[dict[str, Any]]:
        """Each seed's record of ``arm`` (every row when None), in seed order, among rows matching ``where``.

        ``where`` names a row's other factors, e.g. ``lr=0.01`` or ``latent_dim=4``.
        """
        known = {key for row in self.data[part] for key in row}
        if set(where) - known:
            raise KeyError(f"{self.experiment}: its rows have no {sorted(set(where) - known)}; "
                           f"they have {sorted(known)}")
        chosen = [row for row in self.data[part] if all(row.get(k) == v for k, v in where.items())]
        if arm is None:
            return chosen
        if arm not in self.arms:
            raise KeyError(f"{self.experiment} has no arm {arm!r}; its arms: {', '.join(self.arms)}")
        records = [self.arms[arm](row) for row in chosen]
        return [record for record in records if record is not None]

    def per_seed(self, arm: str | None, measure: str | tuple[str, ...], **where: Any) -> list[float]:
        """One value of ``measure`` per seed for ``arm``, in seed order (``where`` as in ``rows``)."""
        return [_field(record, measure) for record in self.rows(arm, **where)]

    def spread(self, arm: str | None, measure: str, **where: Any) -> evidence.Spread:
        """The mean and range over seeds of ``measure`` for ``arm``."""
        return evidence.spread(self.per_seed(arm, measure, **where))

    def compare(self, arm: str | None, other: str | float, measure: str, **where: Any) -> evidence.Comparison:
        """``arm`` against ``other`` (another arm, paired by seed, or a fixed number) on ``measure``."""
        baseline = other if isinstance(other, float | int) else self.per_seed(other, measure, **where)
        return evidence.compare(self.per_seed(arm, measure, **where), baseline)

    def matrix(self, arms: Iterable[str], measure: str | tuple[str, ...], **where: Any) -> np.ndarray:
        """``measure`` for several arms as an array (seeds, arms), e.g. for ``plotting.plot_spread``."""
        return np.array([self.per_seed(arm, measure, **where) for arm in arms]).T

    def means(self, arms: Iterable[str], measure: str | tuple[str, ...], **where: Any) -> list[float]:
        """The mean over seeds of ``measure`` for each of ``arms``."""
        return [self.spread(arm, measure, **where).mean for arm in arms]

    def table(self, arms: Iterable[Any], measures: Sequence[str] | Mapping[str, str], *,
              label: str = "mean (lowest to highest)", width: int | Sequence[int] = 27, label_width: int = 18,
              label_align: str = "<", by: str | None = None, formats: Mapping[str, str] | None = None,
              **where: Any) -> str:
        """Each arm's mean and seed range of each measure, one arm a line; "-" where an arm lacks the measure.

        ``measures`` may map a column's heading to its measure; ``formats`` gives a plain key's number format.
        With ``by`` (a factor such as ``"latent_dim"``), the lines are that factor's levels instead of arms.
        """
        columns = dict(measures) if isinstance(measures, Mapping) else {m: m for m in measures}
        widths = [width] * len(columns) if isinstance(width, int) else list(width)
        formats = formats or {}

        def entry(arm: Any, measure: str) -> str:
            try:
                values = (self.per_seed(None, measure, **where, **{by: arm}) if by
                          else self.per_seed(arm, measure, **where))
            except KeyError:  # e.g. the KL terms of a VAE: the autoencoder has none
                return "-"
            return format(evidence.spread(values), formats.get(measure) or number_format(measure))

        def line(first: Any, cells: Iterable[str]) -> str:
            return f"{first:{label_align}{label_width}}" + "".join(
                f"{cell:>{w}}" for cell, w in zip(cells, widths, strict=True))

        return "\n".join([line(label, columns)] + [line(arm, (entry(arm, m) for m in columns.values()))
                                                   for arm in arms])

    def value(self, *keys: str) -> Any:
        """One figure of the file that does not vary by seed, by its keys, e.g. ``value("05", "gaussian_mixture")``."""
        found: Any = self.data
        for key in keys:
            found = found[key]
        return found

    def by(self, factor: str, measure: str, *, part: str = "rows", **where: Any) -> tuple[list[Any], np.ndarray]:
        """The values of ``factor`` (e.g. ``"latent_dim"``) and ``measure`` as an array (seeds, factor values)."""
        levels = sorted({row[factor] for row in self.rows(part=part, **where)})
        values = [[_field(row, measure) for row in self.rows(part=part, **where, **{factor: level})]
                  for level in levels]
        return levels, np.array(values).T


def load(experiment: str, folder: Path = RESULTS_DIR) -> Reference:
    """Open the committed results file of ``experiment`` (e.g. ``"batchnorm"``) as a ``Reference``."""
    return Reference(experiment, load_results(experiment, folder))


def provenance(command: str, data: str) -> dict[str, Any]:
    """Describe how a results file was made: command, data, machine, library versions, commit and date."""
    import torch

    from .runtime import device_name

    root = RESULTS_DIR.parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return {
        "command": command,
        "data": data,
        "machine": f"{platform.machine()}, {device_name(torch.device('cpu'))}",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }


def write_results(name: str, results: dict[str, Any], folder: Path = RESULTS_DIR) -> Path:
    """Write ``results`` to ``folder/<name>.json`` atomically: a reader never sees half a file."""
    from .checkpoint import write_text_atomically

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    write_text_atomically(path, json.dumps(results, indent=1) + "\n")
    return path


def load_results(name: str, folder: Path = RESULTS_DIR) -> dict[str, Any]:
    """Return the committed results file ``<name>.json`` as it is stored, with a clear error when it is missing."""
    path = folder / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. It is committed with the course; to make it again, run "
            f"`python benchmarks/seed_spread.py {name} --data-dir <folder with MNIST/raw>` from the repository."
        )
    return json.loads(path.read_text())


def describe(results: dict[str, Any]) -> str:
    """Return one line saying what made a results file: seeds, data, command, machine, commit and date."""
    def named(seeds: list[int]) -> str:
        return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(seeds)))}"

    made = results["provenance"]
    seeds = results.get("seeds")
    runs = f"{named(seeds)}; " if seeds else ""
    line = (f"Reference: {runs}{made['data']}; made by `{made['command']}` on {made['machine']}, "
            f"torch {made['torch']}, commit {made['commit']}, {made['date']}.")
    for addition in results.get("added", []):  # seeds run later with --add-seeds, each with its own provenance
        later = addition["provenance"]
        line += (f" {named(addition['seeds']).capitalize()} added by `{later['command']}` on "
                 f"{later['machine']}, torch {later['torch']}, commit {later['commit']}, {later['date']}.")
    return line


def command_line() -> str:
    """Return the command that started this process, as a person would type it."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(RESULTS_DIR.parent.parent)
    except ValueError:
        pass
    return " ".join(["python", str(script), *sys.argv[1:]])
