"""The live explorers in a real JupyterLab, driven through Debian's Chromium with Playwright.

Skipped, with the command that installs it, where no Chromium is installed (``apt-get
install chromium``); in CI, which installs it, that is a failure (``tests/needed.py``).
"""

import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import needed
import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from nbformat.v4 import new_code_cell, new_notebook
from playwright import sync_api

pytestmark = needs_chromium

NOISE_CELL = """
import torch
from dae_utils import widgets
torch.manual_seed(0)
images, labels = torch.rand(20, 1, 28, 28) * 0.5, torch.arange(20) % 10
noise_explorer = widgets.NoiseExplorer(images, labels, noise_factor=0.3)
noise_explorer
"""
LATENT_CELL = """
from dae_utils.model import Decoder
latent_explorer = widgets.LatentExplorer(Decoder(4).eval(), torch.randn(500, 4), labels.repeat(25), "cpu")
latent_explorer
"""
VAE_CELL = """
vae_explorer = widgets.LatentExplorer(Decoder(4).eval(), torch.randn(500, 4), labels.repeat(25), "cpu", prior=True)
vae_explorer
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """Start JupyterLab on a free local port with a notebook holding the explorers (the latent one twice)."""
    nb = new_notebook(cells=[new_code_cell(c.strip()) for c in (NOISE_CELL, LATENT_CELL, VAE_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "explorers.ipynb")
    port = free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        needed.missing(f"no jupyter next to {sys.executable}", f"{sys.executable} -m pip install -r requirements.txt")
    cmd = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={tmp_path}"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("JupyterLab did not start within 60 s")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp_path / ".ipynb_checkpoints", ignore_errors=True)


def wait_for_kernel(page, timeout_s: float = 90) -> None:
    """Wait until the notebook's kernel is idle, as a student would before running cells.

    Code sent before the kernel is ready is dropped. On a busy machine JupyterLab may
    ask which kernel to start; the notebook's own (preselected) is the right answer.
    """
    deadline = time.monotonic() + timeout_s
    ready_checks = 0
    while time.monotonic() < deadline:
        accept = page.query_selector(".jp-Dialog .jp-mod-accept")
        if accept is not None and accept.is_visible():
            accept.click()
            ready_checks = 0
        elif page.query_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]'):
            ready_checks += 1
            if ready_checks == 3:  # idle, and no dialog for a second and a half
                return
        time.sleep(0.5)
    raise AssertionError(f"the kernel was not idle within {timeout_s} s")


def drag_slider(page, slider, steps: int) -> None:
    """Move a slider the way a student does from the keyboard: focus its handle, press the arrow key."""
    slider.query_selector(".noUi-handle").click()
    for _ in range(steps):
        page.keyboard.press("ArrowRight")


def wait_for_new_picture(page, index: int, old_src: str) -> str:
    page.wait_for_function(
        "([i, old]) => document.querySelectorAll('.widget-image')[i].src !== old", arg=[index, old_src], timeout=30_000
    )
    return page.query_selector_all(".widget-image")[index].get_attribute("src")


#: Key presses per explorer whose latency, from the press to the new picture on screen, is measured.
LATENCY_MOVES = 20


def key_to_picture_latencies(page, slider, index: int, moves: int = LATENCY_MOVES) -> list[float]:
    """Press the right arrow on a slider ``moves`` times; return the seconds from each press to the new picture.

    Each press waits for the picture it causes before the next, as a student who
    watches the picture does. The times include the round trip to the kernel, the
    redraw, and the browser swapping the image.
    """
    slider.query_selector(".noUi-handle").click()
    latencies = []
    for _ in range(moves):
        old = page.query_selector_all(".widget-image")[index].get_attribute("src")
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([i, old]) => document.querySelectorAll('.widget-image')[i].src !== old",
            arg=[index, old], timeout=30_000, polling=5,
        )
        latencies.append(time.perf_counter() - start)
    return latencies


def test_explorers_update_live_in_jupyterlab(jupyterlab, tmp_path, record_property):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{jupyterlab}/lab/tree/explorers.ipynb")
            wait_for_kernel(page)
            page.click(".lm-MenuBar-item:has-text('Run')")
            page.click(".lm-Menu-item:has-text('Run All Cells')")
            try:
                page.wait_for_function(
                    "document.querySelectorAll('.widget-image').length === 3 && "
                    "[...document.querySelectorAll('.widget-image')].every(img => img.src.startsWith('blob:'))",
                    timeout=90_000,
                )
            except sync_api.TimeoutError as error:
                screenshot = tmp_path / "no-explorers.png"
                page.screenshot(path=screenshot)
                raise AssertionError(f"the explorers did not appear; screenshot: {screenshot}") from error
            images = page.query_selector_all(".widget-image")
            noise_src, latent_src, vae_src = (image.get_attribute("src") for image in images)

            # Noise explorer: 40 steps of 0.01 take the noise factor from 0.30 to 0.70.
            noise_slider = page.query_selector_all(".widget-hslider")[0]
            drag_slider(page, noise_slider, 40)
            assert wait_for_new_picture(page, 0, noise_src) != noise_src
            assert noise_slider.query_selector(".widget-readout").inner_text().strip() == "0.70"

            # Latent explorer: its first slider (z0) is the third slider on the page.
            z0 = page.query_selector_all(".widget-hslider")[2]
            assert "z0" in z0.inner_text()
            drag_slider(page, z0, 30)
            assert wait_for_new_picture(page, 1, latent_src) != latent_src

            # The VAE's explorer (notebook 7): its sliders span N(0, I)'s -3 to 3 from 0; 10 steps of 0.05.
            vae_z0 = [s for s in page.query_selector_all(".widget-hslider") if "z0" in s.inner_text()][1]
            assert vae_z0.query_selector(".widget-readout").inner_text().strip() == "0.00"
            drag_slider(page, vae_z0, 10)
            assert wait_for_new_picture(page, 2, vae_src) != vae_src
            assert vae_z0.query_selector(".widget-readout").inner_text().strip() == "0.50"

            # Latency from a key press to the new picture, for each explorer (reported, not asserted:
            # speed targets live in the benchmarks). z1, the fourth slider, still has room to move right.
            for name, slider_index, image_index in (("noise explorer", 0, 0), ("latent explorer", 3, 1)):
                page.query_selector_all(".widget-hslider")[slider_index].query_selector(".noUi-handle").click()
                for _ in range(25):  # back toward the left end first, so the moves below stay in range
                    page.keyboard.press("ArrowLeft")
                page.wait_for_timeout(1500)
                latencies = key_to_picture_latencies(page, page.query_selector_all(".widget-hslider")[slider_index],
                                                     image_index)
                assert len(latencies) == LATENCY_MOVES  # each press drew a new picture (else a timeout)
                median, p95 = statistics.median(latencies), sorted(latencies)[int(0.95 * (LATENCY_MOVES - 1))]
                record_property(f"{name} latency (s)", {"median": median, "p95": p95})
                print(f"\n{name}: key press to new picture, {LATENCY_MOVES} moves: "
                      f"median {median * 1000:.0f} ms, 95th percentile {p95 * 1000:.0f} ms")
        finally:
            browser.close()
