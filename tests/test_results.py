"""The reference results read by arm and measure (dae_utils.results), and the tables the notebooks print from them."""

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from dae_utils import checkpoint, clustering, evidence, results, tables

ROOT = Path(__file__).resolve().parent.parent


def synthetic() -> results.Reference:
    """A results file of two arms, two learning rates and three seeds, with values chosen by hand."""
    rows = []
    for seed in range(3):
        for lr in (0.001, 0.01):
            for variant, base in ((results.WITH_BN, 1.0), (results.WITHOUT_BN, 2.0)):
                rows.append({"seed": seed, "lr": lr, "variant": variant, "test_loss": base + seed + lr,
                             "nested": {"value": 10 * seed}})
    return results.Reference("batchnorm", {"seeds": [0, 1, 2], "settings": {"lrs": [0.001, 0.01]}, "rows": rows,
                                           "provenance": {"command": "c", "data": "d", "machine": "m",
                                                          "torch": "t", "commit": "abc1234", "date": "2026-12-07"}})


def test_per_seed_picks_the_arm_and_the_factor_in_seed_order():
    reference = synthetic()
    assert reference.per_seed(results.WITH_BN, "test_loss", lr=0.01) == [1.01, 2.01, 3.01]
    assert reference.per_seed(results.WITHOUT_BN, "test_loss", lr=0.001) == [2.001, 3.001, 4.001]
    assert reference.per_seed(results.WITH_BN, "nested.value", lr=0.01) == [0, 10, 20]  # a dotted path
    assert reference.per_seed(results.WITH_BN, ("nested", "value"), lr=0.01) == [0, 10, 20]  # or a tuple of keys
    assert reference.per_seed(None, "test_loss", lr=0.5) == []  # no such runs: nothing, not an error


def test_compare_and_spread_are_evidences_own_on_the_same_values():
    reference = synthetic()
    a, b = [1.01, 2.01, 3.01], [2.01, 3.01, 4.01]
    assert str(reference.compare(results.WITH_BN, results.WITHOUT_BN, "test_loss", lr=0.01)) == \
        str(evidence.compare(a, b))
    assert str(reference.compare(results.WITH_BN, 2.5, "test_loss", lr=0.01)) == str(evidence.compare(a, 2.5))
    assert reference.spread(results.WITH_BN, "test_loss", lr=0.01).values == tuple(a)


def test_a_wrong_arm_or_factor_is_refused_by_name():
    reference = synthetic()
    with pytest.raises(KeyError, match="no arm 'with batchnorm'; its arms: with batch norm, without batch norm"):
        reference.per_seed("with batchnorm", "test_loss")
    with pytest.raises(KeyError, match=r"its rows have no \['learning_rate'\]"):
        reference.per_seed(results.WITH_BN, "test_loss", learning_rate=0.01)


def test_the_table_by_hand():
    table = synthetic().table([results.WITH_BN, results.WITHOUT_BN], {"test MSE": "test_loss"}, width=24,
                              label_width=20, formats={"test_loss": ".2f"}, lr=0.01)
    assert table.splitlines() == [
        f"{'mean (lowest to highest)':<20}{'test MSE':>24}",
        f"{'with batch norm':<20}{'2.01 (1.01 to 3.01)':>24}",
        f"{'without batch norm':<20}{'3.01 (2.01 to 4.01)':>24}",
    ]
    by_lr = synthetic().table([0.001, 0.01], ["test_loss"], by="lr", label="lr", label_width=6, width=24,
                              label_align=">")
    assert by_lr.splitlines()[1] == f"{0.001:>6}{'2.5010 (1.0010 to 4.0010)':>24}"  # both arms pooled per level
    levels, values = synthetic().by("lr", "test_loss", variant=results.WITH_BN)
    assert levels == [0.001, 0.01] and values.shape == (3, 2) and values[:, 1].tolist() == [1.01, 2.01, 3.01]


def test_a_committed_file_reads_as_its_rows_say():
    reference = results.load("batchnorm")
    stored = results.load_results("batchnorm")
    by_hand = [r["test_loss"] for r in stored["rows"] if r["lr"] == 0.01 and r["variant"] == results.SHIFT_AFTER_EACH]
    assert reference.per_seed(results.SHIFT_AFTER_EACH, "test_loss", lr=0.01) == by_hand and len(by_hand) >= 5
    assert {r["variant"] for r in stored["rows"]} == set(results.BATCHNORM_VARIANTS)  # the names seed_spread writes
    vae = results.load("vae")
    assert vae.per_seed(results.vae_arm(1), "information") == \
        [r["vae"]["1"]["mutual_information"] for r in results.load_results("vae")["rows"]]
    assert str(vae) == results.describe(results.load_results("vae"))


def test_seed_spread_writes_the_arms_by_the_names_defined_once():
    spec = importlib.util.spec_from_file_location("seed_spread", ROOT / "benchmarks" / "seed_spread.py")
    source = spec.loader.get_source("seed_spread")
    assert "results.BATCHNORM_VARIANTS" in source
    for name in results.BATCHNORM_VARIANTS:
        assert f'"{name}"' not in source, f"{name!r} is written out in seed_spread instead of named once"


def notebook_code() -> dict[str, str]:
    return {path.name: "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
            for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


@pytest.mark.parametrize("name", sorted(notebook_code()))
def test_no_notebook_unpacks_a_results_file_by_hand(name):
    code = notebook_code()[name]
    assert "load_results(" not in code and "evidence.describe(" not in code  # a file is opened with results.load
    assert not re.search(r"""\[\s*["'](rows|variant|sweep|added|provenance)["']\s*\]""", code)
    assert not re.search(r"\br\[", code), "a results row unpacked by hand"
    for arm in results.BATCHNORM_VARIANTS:
        assert f'"{arm}"' not in code, f"{arm!r} written out: use its name in dae_utils.results"


def printed(function, *args) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        function(*args)
    return out.getvalue()


def test_a_table_prints_the_verdicts_evidence_computes():
    text = printed(tables.affine, results.load("affine"))
    reference = results.load_results("affine")
    with_ab, without = ([r["test_loss"] for r in reference["rows"] if r["num_epochs"] == 3 and r["affine"] is a]
                        for a in (True, False))
    words = f"{evidence.compare(with_ab, without):.4f}"
    line = next(line for line in text.splitlines() if line.strip().startswith("3 epochs:") and "CI" in line)
    assert line.strip().startswith(f"3 epochs: {words[:-1]}; ")  # the verdict, then what its family makes of it
    budgets = [r["test_loss"] for r in reference["rows"]]
    assert "within its family of 2" in line and len(budgets) == 2 * 2 * len(reference["seeds"])
    assert text.startswith(results.describe(reference))


def test_kmeans_scores_is_the_best_of_three_restarts_scored():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    codes = rng.normal(size=(300, 4)) + labels[:, None] * 3.0
    kmeans = clustering.best_kmeans(codes, random_states=range(3), progress=False)
    assert clustering.kmeans_scores(codes, labels) == clustering.cluster_scores(kmeans.labels_, labels)


def test_mixed_clusters_and_split_digits_by_hand():
    counts = np.zeros((3, 3), dtype=int)  # counts[digit, cluster]
    counts[0] = [50, 50, 0]  # digit 0 split half and half
    counts[1] = [0, 100, 0]
    counts[2] = [0, 60, 40]  # digit 2 mostly in cluster 1, a large part in cluster 2
    assert clustering.mixed_clusters(counts) == {1: {0: 0.5, 1: 1.0, 2: 0.6}}
    assert clustering.split_digits(counts) == [0, 2]


def test_a_saved_model_is_found_in_its_own_folder_first_then_the_shared_one(tmp_path, monkeypatch):
    own, shared = tmp_path / "own", tmp_path / "shared"
    own.mkdir(), shared.mkdir()
    monkeypatch.setenv(checkpoint.SHARED_CHECKPOINTS_ENV, str(shared))
    assert checkpoint.find_saved("m.pt", own) is None
    (shared / "m.pt").write_bytes(b"x")
    assert checkpoint.find_saved("m.pt", own) == shared / "m.pt"
    assert checkpoint.find_saved("m.pt", None) == shared / "m.pt"
    (own / "m.pt").write_bytes(b"y")
    assert checkpoint.find_saved("m.pt", own) == own / "m.pt"


def test_the_one_atomic_writer_leaves_the_old_file_and_no_temporary_when_writing_fails(tmp_path):
    path = tmp_path / "file.txt"
    checkpoint.write_text_atomically(path, "old")

    def fails(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        checkpoint.write_atomically(path, fails)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["file.txt"]
    checkpoint.write_text_atomically(path, "new ü")
    assert path.read_text(encoding="utf-8") == "new ü"


def test_the_latent_table_judges_each_prior_against_the_floor_of_real_codes():
    text = printed(tables.samplers_in_latent_space, results.load("latent"), "vae")
    stored = results.load_results("latent")
    floor = [row["vae"]["samplers"][tables.REAL_CODES]["coverage"] for row in stored["rows"]]
    prior = [row["vae"]["samplers"]["N(0, I)"]["coverage"] for row in stored["rows"]]
    words = f"{evidence.compare(prior, floor):.3f}"
    line = next(line for line in text.splitlines() if line.startswith("coverage, N(0, I) against real codes"))
    assert line.startswith(f"coverage, N(0, I) against real codes: {words[:-1]}; ") and "family of 5" in line
    copies = [row["vae"]["samplers"][tables.COPIED_CODES]["novelty"] for row in stored["rows"]]
    assert copies == [0.0] * len(copies)  # the prior that copies training codes: novelty 0 in every seed
    best = [max(row["vae"]["component_scores"], key=lambda k, r=row: r["vae"]["component_scores"][k][
        "held_out_log_likelihood"]) for row in stored["rows"]]
    assert f"the best, by seed: {[int(k) for k in best]}" in text


def test_the_samplers_are_judged_against_the_floor_of_their_own_reconstructions():
    text = printed(tables.samplers_against_reconstructions, results.load("generation"), "autoencoder")
    stored = results.load_results("generation")
    by_seed = [row["autoencoder"]["against_reconstructions"] for row in stored["rows"]]
    floor = [found[results.RECONSTRUCTION_FLOOR]["coverage"] for found in by_seed]
    prior = [found["N(0, I)"]["coverage"] for found in by_seed]
    words = f"{evidence.compare(prior, floor):.3f}"
    line = next(line for line in text.splitlines() if line.startswith("coverage, N(0, I) against the floor"))
    assert line.startswith(f"coverage, N(0, I) against the floor: {words[:-1]}; ") and "family of 4" in line
    assert results.against_reconstructions("vae", "own posteriors") in results.load("generation").arms


def test_the_reconstructions_read_four_ways_add_up_and_their_digits_kept_are_the_right_ones():
    stored = results.load_results("generation")
    for row in stored["rows"]:
        for model in ("autoencoder", "vae"):
            found = row[model]["samplers"]["decoded test codes"]
            readings = found["readings"]
            assert sum(readings.values()) == pytest.approx(1.0, abs=1e-6)
            assert found["digits_kept"] == pytest.approx(readings["right and readable"]
                                                         + readings["right, below the threshold"], abs=1e-6)
            assert found["readable_share"] >= readings["right and readable"]  # readable counts wrong digits too
    text = printed(tables.vae_samplers, results.load("generation"))
    kept = [[row[m]["samplers"]["decoded test codes"]["digits_kept"] for row in stored["rows"]]
            for m in ("vae", "autoencoder")]
    words = f"{evidence.compare(*kept):.1%}"
    line = next(line for line in text.splitlines() if line.startswith("digits kept, the VAE's reconstructions"))
    assert line.startswith(f"digits kept, the VAE's reconstructions against the autoencoder's: {words[:-1]}; ")


def test_the_probe_reads_the_judge_that_measured_the_samplers_and_its_threshold_keeps_the_rule():
    probe, generation = results.load_results("judge_probe"), results.load_results("generation")
    course_judge = probe["fixed"]["course judge"]
    assert course_judge["threshold"] == pytest.approx(generation["fixed"]["judge"]["threshold"], abs=1e-6)
    check = course_judge["threshold check"]
    chose = check["stratified half (chooses)"]
    assert chose["share"] >= 0.95 - 1.01 / chose["n"]  # the rule, on the half that chose the threshold
    assert check["stratified half (checks)"]["n"] + chose["n"] == check["first half"]["n"] + check["second half"]["n"]
    for found in (course_judge, probe["fixed"]["written digits only"]):
        splits = (found["clean test digits"], *found["unusual digits"].values(), *found["reconstructions"].values())
        for split in splits:
            assert sum(split.values()) == pytest.approx(1.0, abs=1e-6)  # the four readings cover every image


def test_a_vae_table_names_the_judge_its_file_was_read_by():
    stored = results.load_results("vae")
    before = {key: value for key, value in stored["settings"].items() if key != "judge_digits"}
    older = results.Reference("vae", {**stored, "settings": before})  # a file made before the varied judge
    assert tables.judge_of(older).startswith("the judge trained on written digits only")
    newer = results.Reference("vae", {**stored, "settings": {**stored["settings"], "judge_digits": "varied"}})
    assert tables.judge_of(newer) == "notebook 3's judge"
    assert printed(tables.beta_sweep, older).splitlines()[0].startswith(
        f"readable: named a digit by the judge trained on written digits only (notebook 3, section 3.5) with a "
        f"confidence of at least {stored['settings']['judge_threshold']:.3f}")


def test_the_vae_table_reads_each_model_at_its_own_scale_through_a_fitted_gaussian():
    stored = results.load_results("vae")
    by_seed = {model: [row["vae"][model] if model != "autoencoder" else row["autoencoder"] for row in stored["rows"]]
               for model in ("autoencoder", "0", "1")}
    fitted = {model: [r["fitted_gaussian"]["readable_share"] for r in rows] for model, rows in by_seed.items()}
    reference = results.load("vae")
    assert reference.per_seed(tables.BETA_0, "readable, fitted Gaussian") == pytest.approx(fitted["0"])
    assert reference.per_seed(tables.BETA_1, "distance / real, fitted Gaussian") == pytest.approx(
        [r["median_distance_fitted"] / r["median_distance_real"] for r in by_seed["1"]])
    text = printed(tables.vae_samples, reference)
    words = f"{evidence.compare(fitted['1'], fitted['0']):.1%}"
    line = next(line for line in text.splitlines()
                if line.startswith("readable, fitted Gaussian, VAE (beta 1) against VAE, beta 0"))
    assert line.startswith(f"readable, fitted Gaussian, VAE (beta 1) against VAE, beta 0: {words[:-1]}; ")
    kept = [[r["reconstructed"]["digits_kept"] for r in by_seed[m]] for m in ("0", "autoencoder")]
    line = next(line for line in text.splitlines()
                if line.startswith("digits kept, reconstructions, VAE, beta 0 against denoising AE"))
    assert f"{evidence.compare(*kept):.1%}"[:-1] in line


def test_the_noise_levels_over_images_agree_with_the_course_noise_and_print_evidences_words():
    stored = results.load_results("images")
    levels = stored["settings"]["noise_levels"]
    at_course = levels.index(stored["settings"]["noise_factor"])
    for row in stored["rows"]:  # the course's noise is one of the levels: the same images, the same draw
        assert row["by_level"][at_course]["mse_difference"] == pytest.approx(row["mse_difference"], abs=1e-7)
        assert row["by_level"][at_course]["ssim_difference"] == pytest.approx(row["ssim_difference"], abs=1e-6)
    i = levels.index(0.4)
    by_seed = [row["by_level"][i]["mse_difference"] for row in stored["rows"]]
    both = evidence.over_seeds_and_images(by_seed, stored["fixed"]["by_level"][i]["mse_image_sd"],
                                          stored["fixed"]["images"])
    text = printed(tables.levels_over_images, results.load("images"))
    line = next(line for line in text.splitlines() if line.startswith(" 0.4 MSE"))
    assert f": {both:.5f}"[:-1] in line
    assert len([line for line in text.splitlines() if line[:4].strip() in {f"{level:.1f}" for level in levels}]) == 24


def test_the_direct_information_never_passes_its_cap_and_the_control_sits_on_it():
    stored = results.load_results("vae")
    cap = np.log(10_000)  # log n, n the full MNIST test images behind the aggregate posterior
    for row in stored["rows"]:
        for beta, found in row["vae"].items():
            assert found["index_information"] <= cap + 1e-6, (row["seed"], beta)
            assert found["index_information_se"] >= 0
        assert row["vae"]["0"]["index_information"] == pytest.approx(cap, abs=0.01)  # the control's codes are points
        # The subtraction and the direct estimate agree where the mismatch is small (beta 1).
        assert row["vae"]["1"]["index_information"] == pytest.approx(row["vae"]["1"]["mutual_information"], abs=0.1)
