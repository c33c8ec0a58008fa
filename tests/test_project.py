"""The project's own files agree with each other: requirements, conda environment, README, CI."""

import re
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
#: Where a conda-forge package is named differently from its PyPI twin.
CONDA_NAMES = {"torch": "pytorch"}


def pip_requirements() -> dict[str, str]:
    reqs = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            reqs[CONDA_NAMES.get(req.name, req.name)] = str(req.specifier)
    return reqs


def conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    reqs = {}
    for dep in env["dependencies"]:
        # conda-forge packages, and those that pip installs from PyPI alone (the package itself aside)
        for entry in dep.get("pip", []) if isinstance(dep, dict) else [dep]:
            if entry.strip() != "-e .":
                match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry)
                reqs[match.group(1)] = match.group(2).replace(" ", "")
    return reqs


def test_environment_yml_has_the_same_packages_and_floors_as_requirements():
    conda = conda_requirements()
    conda.pop("python")
    conda.pop("pip")
    assert conda == pip_requirements()


def test_requirements_use_floors_not_caps():
    for name, spec in pip_requirements().items():
        assert spec.startswith(">="), f"{name}{spec}: use a floor (>=), not a pin or a cap"
        assert "<" not in spec and "==" not in spec, name


def test_environment_yml_installs_the_package_editable():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert "-e ." in pip_section
    assert env["channels"] == ["conda-forge"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)\s*(?:#.*)?$", quick_start, flags=re.MULTILINE)
    assert commands == ["make course", "make test"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in ci


def test_make_student_keeps_a_folder_name_with_a_space_whole():
    import subprocess

    printed = subprocess.run(["make", "-n", "student", "DIR=my student edition"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert '--output-dir "my student edition"' in printed


def test_the_readme_is_short_and_links_every_page_of_the_site():
    """A student finds the quick start in two minutes; what left the README is one link away, on the site."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.split()) <= 1_250
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book").glob("*.md") if p.stem != "index")
    assert pages and [page for page in pages if f"]({page}" not in readme] == []
    assert "make site" in readme
