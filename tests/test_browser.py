"""The website, a gradebook and JupyterLab, opened in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium). Skipped, with one line, where they are not installed: `make browser` installs
them, and `.ci/run` does before `make test`. Screenshots go to docs/_build/screenshots/.

The site is built here as `make docs` builds it (Sphinx -W -n, then the internal-link check), into a temporary folder,
from the executed notebooks of `make quick` when results/executed/ has all ten, else from those of the session's one
quick run on a small demo (the `quick_run` fixture that tests/test_notebooks.py checks).
"""

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER and HAVE_SELENIUM),
                                reason="no headless Chromium here: `make browser` installs chromium and chromium-driver")

SHOTS = ROOT / "docs" / "_build" / "screenshots"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000")
NOTEBOOKS = ("assignment", "01_text_models", "02_audio_models", "03_multimodal_models", "04_multi_subject",
             "05_window_pooling_sweeps", "06_brain_maps", "07_nonlinear_and_decoding", "08_brain_tuned_models",
             "09_speech_interpretation")

# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    """serve(folder) -> base URL of a local HTTP server of that folder (a browser blocks fetch() on file://)."""
    servers = []

    def start(folder):
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()


def console_errors(driver):
    """SEVERE console entries of the page (the browser's own request for /favicon.ico is not the page's)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "/favicon.ico" not in entry["message"]]


def open_page(driver, url, shot):
    """Open ``url``, scroll through it so every image loads, screenshot it; return its console errors."""
    driver.get_log("browser")  # drop the previous page's entries
    driver.get(url)
    driver.execute_script("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; });")
    height = driver.execute_script("return document.body.scrollHeight")
    for y in range(0, height, 800):
        driver.execute_script(f"window.scrollTo(0, {y})")
    deadline = time.time() + 20
    while time.time() < deadline and driver.execute_script(
            "return [...document.images].some(i => !i.complete)"):
        time.sleep(0.2)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / shot))
    return console_errors(driver)


def images(driver):
    """(loaded, broken) image URLs of the page: loaded means complete with naturalWidth > 0."""
    found = driver.execute_script(
        "return [...document.images].map(i => [i.currentSrc || i.src, i.complete && i.naturalWidth > 0])")
    return [src for src, ok in found if ok], [src for src, ok in found if not ok]


def unresolved_links(driver, base):
    """Links of the page into ``base`` that the server does not answer with 200, or whose #fragment is missing."""
    return driver.execute_async_script("""
        const [base, done] = arguments;
        const bad = [];
        const links = [...new Set([...document.querySelectorAll('a[href]')].map(a => a.href))]
            .filter(h => h.startsWith(base));
        const pages = {};
        for (const href of links) {
            const url = new URL(href);
            const page = url.origin + url.pathname;
            if (!(page in pages)) {
                const r = await fetch(page).catch(e => null);
                pages[page] = r && r.ok ? new DOMParser().parseFromString(await r.text(), 'text/html') : null;
            }
            const doc = pages[page];
            if (doc === null) { bad.push(href + ' (not found)'); continue; }
            const id = decodeURIComponent(url.hash.slice(1));
            if (id && page.endsWith('.html') && !doc.getElementById(id) && !doc.getElementsByName(id).length) {
                bad.push(href + ' (no such id)');
            }
        }
        done(bad);
    """, base)


# ---------------------------------------------------------------- (a) the website


@pytest.fixture(scope="module")
def executed_notebooks(request):
    """A folder with an executed copy of each notebook: $KIT_DOCS_EXECUTED (as docs/conf.py reads it), else
    `make quick`'s, else the session's quick run's."""
    if os.environ.get("KIT_DOCS_EXECUTED"):
        return Path(os.environ["KIT_DOCS_EXECUTED"])
    mine = ROOT / "results" / "executed"
    if all((mine / f"{name}.ipynb").exists() for name in NOTEBOOKS):
        return mine
    kit, proc = request.getfixturevalue("quick_run")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return kit / "results" / "executed"


@pytest.fixture(scope="module")
def site(tmp_path_factory, executed_notebooks):
    """The website, built as `make docs` builds it (warnings are errors, nitpicky, then the internal-link check)."""
    out = tmp_path_factory.mktemp("site") / "html"
    env = {**os.environ, "KIT_DOCS_EXECUTED": str(executed_notebooks), "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    build = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-q",
                            "docs", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-5000:]
    check = subprocess.run([sys.executable, "docs/check_links.py", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    print(f"site built in {time.perf_counter() - start:.0f} s")
    return out


@pytest.mark.parametrize("page, shot, min_images", [
    ("index.html", "site_index.png", 1),
    ("notebooks/assignment.html", "site_notebook_assignment.png", 2),
    ("api.html", "site_api.png", 0),
])
def test_site_pages_load_without_errors_with_their_figures_and_links(browser, serve, site, page, shot, min_images):
    base = serve(site)
    errors = open_page(browser, base + page, shot)
    assert errors == [], errors
    assert browser.title and "404" not in browser.title
    loaded, broken = images(browser)
    assert broken == [], broken
    assert len(loaded) >= min_images, f"{page}: {len(loaded)} images"
    assert unresolved_links(browser, base) == []


def test_the_api_page_links_every_utils_name_to_its_docstring(browser, serve, site):
    import utils

    base = serve(site)
    open_page(browser, base + "api.html", "site_api.png")
    linked = set(browser.execute_script(
        "return [...document.querySelectorAll('a.reference.internal code')].map(c => c.textContent)"))
    functions = {f"utils.{n}" for n in utils.__all__ if callable(getattr(utils, n))}
    assert functions <= linked, sorted(functions - linked)[:10]
    browser.get(base + "_generated/api_encoding.html")
    assert "Examples" in browser.find_element("css selector", "body").text


# ---------------------------------------------------------------- (b) a gradebook


def test_gradebook_thumbnails_load_and_links_to_executed_copies_resolve(browser, serve, tmp_path):
    from encoding_kit.grading import grade
    from encoding_kit.grading.synthetic import FIGURE, WRITE_RESULTS, notebook

    notebook(tmp_path / "class" / "alice" / "assignment.ipynb", WRITE_RESULTS, FIGURE)
    notebook(tmp_path / "class" / "bob" / "assignment.ipynb", "x = 1", "raise ValueError('planted failure')")
    (tmp_path / "data").mkdir()
    grade(tmp_path / "class", tmp_path / "grading", data_dir=tmp_path / "data", quick=True, timeout=120, jobs=2)
    base = serve(tmp_path / "grading")
    errors = open_page(browser, base + "gradebook.html", "gradebook.png")
    assert errors == [], errors
    loaded, broken = images(browser)
    assert broken == [] and len(loaded) >= 1, (loaded, broken)
    hrefs = browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
    executed = [h for h in hrefs if h.endswith((".ipynb", ".html")) and "gradebook" not in h]
    assert len(executed) >= 2, hrefs  # alice's and bob's executed copies
    assert unresolved_links(browser, base) == []


# ---------------------------------------------------------------- (c) make lab


@pytest.fixture
def lab(tmp_path, small_demo):
    """`make lab` headless on a free port with a token, serving a copy of assignment.ipynb; yields (url, token)."""
    from jupyter_client.kernelspec import KernelSpecManager

    from encoding_kit.run.kernel import KERNEL_NAME, install_kernel

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "assignment.ipynb", work)
    port, token = free_port(), "kit-browser-test"
    env = {**os.environ, "KIT_DATA_DIR": str(small_demo), "KIT_RESULTS_DIR": str(tmp_path / "results"),
           "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        install_kernel(tmp_path / "kernel")
        env["JUPYTER_PATH"] = str(tmp_path / "kernel" / "share" / "jupyter")
    bin_dir = Path(sys.executable).parent
    # `make lab` as a student types it, with the ARGS the docs give for a headless machine; `-o` keeps make from
    # (re)installing the venv, BIN points at the Python running these tests.
    args = f"--no-browser --port {port} --IdentityProvider.token={token} --ServerApp.root_dir={work}"
    proc = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "lab", f"BIN={bin_dir}", f"ARGS={args}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"make lab exited {proc.returncode}: {proc.stdout.read()[-3000:]}")
            time.sleep(0.5)
    else:
        pytest.fail("JupyterLab did not answer within 120 s")
    yield url, token
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


def test_make_lab_opens_the_assignment_in_the_kit_kernel_and_its_first_cells_run(browser, lab):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, token = lab
    browser.get(f"{url}/lab/tree/assignment.ipynb?token={token}")
    wait = WebDriverWait(browser, 180)
    wait.until(lambda d: "Python (encoding-kit)" in d.find_element(By.CSS_SELECTOR, "body").text)
    wait.until(lambda d: "Idle" in d.find_element(By.CSS_SELECTOR, "body").text)
    cells = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
    ActionChains(browser).click(cells[0]).send_keys(Keys.ESCAPE).perform()
    for _ in range(3):  # the title (markdown), the parameters cell, the cell that loads the story and describes it
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    wait.until(lambda d: "data: demo" in " ".join(
        o.text for o in d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")))
    browser.save_screenshot(str(SHOTS / "lab_assignment.png"))
    outputs = " ".join(o.text for o in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))
    assert "subjects x" in outputs and "TRs x 360 ROIs" in outputs, outputs[:2000]
    assert "Error" not in outputs, outputs[:2000]
