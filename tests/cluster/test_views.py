"""The "Cascade" views in the Airflow UI, and asset events downstream, on the real
deployment: the API server serves the plugin; headless Chromium logs in and opens them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.cluster.conftest import REPO, Cluster, DeferredRun

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster"), pytest.mark.compat("ui")]

SCREENSHOTS = REPO / ".ci" / "logs"


@pytest.fixture(scope="module")
def finished_run(deferred_delivery: DeferredRun) -> str:
    """A run of a send (20 messages) and of its deferrable delivery check."""
    return deferred_delivery.run_id


def _api(cluster: Cluster) -> str:
    return f"http://127.0.0.1:{cluster.env['AIRFLOW__API__PORT']}"


def _token(cluster: Cluster) -> str:
    response = requests.post(
        f"{_api(cluster)}/auth/token",
        json={"username": "admin", "password": cluster.env["CASCADE_CLUSTER_ADMIN_PASSWORD"]},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _paths(run_id: str) -> list[str]:
    run = quote(run_id, safe="")
    return [
        f"/cascade/ti/cluster_deferred_delivery/{run}/wait_for_delivery",
        f"/cascade/api/ti/cluster_deferred_delivery/{run}/send",
        f"/cascade/run/cluster_deferred_delivery/{run}",
        f"/cascade/api/run/cluster_deferred_delivery/{run}",
    ]


def test_without_a_valid_token_the_views_answer_401_never_the_report(cluster, finished_run):
    xcom = (
        f"/api/v2/dags/cluster_deferred_delivery/dagRuns/{quote(finished_run, safe='')}"
        "/taskInstances/send/xcomEntries/return_value"
    )
    for path in [*_paths(finished_run), xcom]:  # Airflow's own XCom endpoint alike
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = requests.get(_api(cluster) + path, headers=headers, timeout=30)
            assert response.status_code in (401, 403), (path, headers, response.status_code)
            assert "delivered" not in response.text and "sent" not in response.text.lower()
    token = {"Authorization": f"Bearer {_token(cluster)}"}
    for path in [*_paths(finished_run), xcom]:
        assert requests.get(_api(cluster) + path, headers=token, timeout=30).status_code == 200


def test_the_figures_are_the_tasks_and_hold_no_phone(cluster, finished_run):
    token = {"Authorization": f"Bearer {_token(cluster)}"}
    run = quote(finished_run, safe="")
    send = requests.get(
        f"{_api(cluster)}/cascade/api/ti/cluster_deferred_delivery/{run}/send",
        headers=token,
        timeout=30,
    ).json()
    assert (send["kind"], send["sent"], send["rejected"], send["in_doubt"]) == ("send", 20, 0, 0)
    assert send["timeline"] and send["timeline"][-1][1] == 20
    tasks = requests.get(
        f"{_api(cluster)}/cascade/api/run/cluster_deferred_delivery/{run}",
        headers=token,
        timeout=30,
    ).json()
    assert [task["task_id"] for task in tasks] == ["send", "wait_for_delivery"]
    delivery = tasks[1]["figures"]
    assert delivery["total"] == 20 and sum(delivery["by_status"].values()) == 20
    page = requests.get(
        f"{_api(cluster)}/cascade/ti/cluster_deferred_delivery/{run}/wait_for_delivery",
        headers=token,
        timeout=30,
    ).text
    assert "+380" not in page and "<script" not in page and "http" not in page.split("<svg")[0]


def test_a_finished_run_shows_the_cascade_tab_in_headless_chromium(cluster, finished_run):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromium-driver are not installed (scripts/system-deps.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    wait = WebDriverWait(browser, 60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        browser.get(f"{_api(cluster)}/auth/login")
        wait.until(until.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(
            cluster.env["CASCADE_CLUSTER_ADMIN_PASSWORD"] + Keys.ENTER
        )
        wait.until(lambda b: "/auth/login" not in b.current_url)
        run = quote(finished_run, safe="")
        for task_id, expected in (
            ("wait_for_delivery", {"messages": "20"}),
            ("send", {"sent": "20", "rejected": "0", "in doubt": "0"}),
        ):
            browser.get(
                f"{_api(cluster)}/dags/cluster_deferred_delivery/runs/{run}/tasks/{task_id}"
            )
            wait.until(
                until.element_to_be_clickable((By.XPATH, "//*[normalize-space(text())='Cascade']"))
            ).click()
            frame = wait.until(until.presence_of_element_located((By.TAG_NAME, "iframe")))
            browser.switch_to.frame(frame)
            chart = wait.until(until.presence_of_element_located((By.CSS_SELECTOR, "svg.chart")))
            assert chart.is_displayed()
            for name, value in expected.items():
                card = browser.find_element(By.CSS_SELECTOR, f"[data-figure='{name}'] .value")
                assert card.text == value, (task_id, name)
            assert "+380" not in browser.page_source
            browser.switch_to.default_content()
            time.sleep(0.5)  # the frame's layout settles before the picture
            browser.save_screenshot(str(SCREENSHOTS / f"cascade-view-{task_id}.png"))
    finally:
        browser.quit()
    assert Path(SCREENSHOTS / "cascade-view-wait_for_delivery.png").stat().st_size > 10_000


def test_a_dag_scheduled_on_the_sends_asset_receives_its_figures(cluster):
    cluster.sandbox.clear()
    run_id = cluster.trigger("cluster_asset_producer")
    assert cluster.wait("cluster_asset_producer", run_id) == "success"
    deadline = time.monotonic() + 120
    runs: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        runs = [
            (str(r), str(s))
            for r, s in cluster.sql(
                "SELECT run_id, state FROM dag_run WHERE dag_id = 'cluster_asset_consumer'"
            )
        ]
        if runs and runs[0][1] in ("success", "failed"):
            break
        time.sleep(2)
    [(consumer_run, state)] = runs
    assert state == "success"
    extra = cluster.xcom("cluster_asset_consumer", consumer_run, "follow_up")
    assert extra == {
        "sent": 12,
        "rejected": 1,
        "in_doubt": 0,
        "suppressed": 0,
        "route": "standard",
        "dry_run": False,
        "results_path": None,
    }
