"""The docs site as a reader meets it: built by Sphinx with warnings as errors (as
``make docs`` builds it), its index opened in headless Chromium, and every page linked from
it loaded there, each of its links and anchors leading somewhere."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urljoin
from urllib.request import urlopen

import pytest

from tests.conftest import REPO

pytest.importorskip("sphinx", reason="the docs extra (make docs) is installed in .venv only")
webdriver = pytest.importorskip("selenium.webdriver", reason="the cluster extra: .venv only")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The docs as ``make docs`` built them (``make test`` builds them first), or built here
    into a folder of their own when that build is missing or older than a source; served
    over HTTP on loopback."""
    html = REPO / "docs" / "_build" / "html"
    if not _fresh(html):
        html = tmp_path_factory.mktemp("docs") / "html"
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "sphinx",
                "-W",
                "--keep-going",
                "-q",
                "-b",
                "html",
                *(
                    str(REPO / "docs"),
                    str(html),
                ),
            ],
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def _fresh(html: Path) -> bool:
    """Whether a build in ``html`` is newer than every source of the docs."""
    index = html / "index.html"
    if not index.is_file():
        return False
    sources = [
        *(REPO / "docs").rglob("*.md"),
        *(REPO / "docs" / "snippets").glob("*.py"),
        *(REPO / "docs" / "data").glob("*"),
        REPO / "docs" / "conf.py",
        REPO / "benchmarks" / "RESULTS.md",
        REPO / "CHANGELOG.md",
        *(REPO / "airflow_provider_cascade").rglob("*.py"),
        *(REPO / "example_dags").glob("*.py"),
    ]
    built = index.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in sources if "_build" not in path.parts)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromium-driver are not installed (scripts/system-deps.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def _links(browser) -> list[str]:
    """Every link of the page, resolved (one call into the browser)."""
    return list(
        browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]'), a => a.href)"
        )
    )


def _ids(browser) -> set[str]:
    return set(
        browser.execute_script("return Array.from(document.querySelectorAll('[id]'), e => e.id)")
    )


def test_every_page_linked_from_the_index_loads_with_no_broken_link(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(site)
    assert "airflow-provider-cascade" in browser.title
    pages = sorted({urldefrag(link)[0] for link in _links(browser) if link.startswith(site)})
    expected = {
        "connection", "sending", "taskflow", "guardrails", "guarantees", "delivery",
        "replies", "ui", "notifications", "hook", "databases", "scaling-out", "sandbox",
        "examples", "benchmarks", "troubleshooting", "compatibility", "api",
        "architecture", "development", "changelog", "install", "metrics", "deadlines", "approvals",
    }  # fmt: skip
    assert {f"{site}{name}.html" for name in expected} <= set(pages)
    broken: list[str] = []
    anchors: dict[str, set[str]] = {}
    links: dict[str, list[str]] = {}
    for page in pages:  # each page as the browser shows it: its anchors and its links
        browser.get(page)
        if not browser.find_elements(By.CSS_SELECTOR, "h1") or "404" in browser.title:
            broken.append(f"{page}: no page")
            continue
        anchors[page], links[page] = _ids(browser), _links(browser)
    answered: dict[str, int] = {}  # target -> HTTP status, each fetched once
    for page, found in links.items():
        for link in found:
            target, fragment = urldefrag(urljoin(page, link))
            if not target.startswith(site):
                continue  # the web beyond the site (keepachangelog.com...) is not checked
            if target not in answered:
                try:
                    with urlopen(target, timeout=10) as response:
                        answered[target] = response.status
                except HTTPError as error:
                    answered[target] = error.code
            if answered[target] != 200:
                broken.append(f"{page}: {link} ({answered[target]})")
            elif fragment and target in anchors and fragment not in anchors[target]:
                broken.append(f"{page}: {link} (no #{fragment})")
    assert broken == []


def test_the_compatibility_page_renders_the_matrix_the_tests_read(site, browser):
    from selenium.webdriver.common.by import By

    from tests.compat import read_table

    browser.get(f"{site}compatibility.html")
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert len(rows) == len(read_table().cells)
    assert "task_state_store" in browser.find_element(By.CSS_SELECTOR, "table").text


def test_the_benchmarks_page_includes_the_generated_results(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{site}benchmarks.html")
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    first_figure = results.split("```\n", 2)[1].splitlines()[0]
    assert first_figure in browser.find_element(By.CSS_SELECTOR, "body").text
