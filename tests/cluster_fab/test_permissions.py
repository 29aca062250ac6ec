"""The "Cascade" views under a real per-DAG permission model: the deployment with
Airflow's FAB auth manager (``apache-airflow-providers-fab``), a role that may read one DAG
only. Its own deployment (another auth manager), so it runs in a pytest run of its own,
after tests/cluster (``scripts/test-all.sh``)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from tests.cluster.conftest import Cluster, running_cluster

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster"), pytest.mark.compat("ui")]

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
READABLE, HIDDEN = "cluster_asset_producer", "cluster_deferred_delivery"
READER, READER_PASSWORD = "reader_a", "reader-a-password-71c"


@pytest.fixture(scope="module")
def fab_cluster() -> Iterator[Cluster]:
    with running_cluster(AIRFLOW__CORE__AUTH_MANAGER=FAB) as cluster:
        cluster.airflow("roles", "create", "CascadeReaderA")
        cluster.airflow(
            "roles", "add-perms", "CascadeReaderA", "-a", "can_read",
            "-r", f"DAG:{READABLE}", "XComs", "DAG Runs", "Task Instances",
        )  # fmt: skip
        cluster.airflow(
            "users", "create", "--username", READER, "--password", READER_PASSWORD,
            "--role", "CascadeReaderA", "--firstname", "Reader", "--lastname", "A",
            "--email", "reader-a@example.com",
        )  # fmt: skip
        yield cluster


@pytest.fixture(scope="module")
def runs(fab_cluster: Cluster) -> dict[str, str]:
    finished = {}
    for dag_id in (READABLE, HIDDEN):
        run_id = fab_cluster.trigger(dag_id)
        assert fab_cluster.wait(dag_id, run_id) == "success"
        finished[dag_id] = run_id
    return finished


def _token(cluster: Cluster) -> str:
    api = f"http://127.0.0.1:{cluster.env['AIRFLOW__API__PORT']}"
    answer = requests.post(
        f"{api}/auth/token",
        json={"username": READER, "password": READER_PASSWORD},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _get(cluster: Cluster, path: str, token: str) -> requests.Response:
    api = f"http://127.0.0.1:{cluster.env['AIRFLOW__API__PORT']}"
    return requests.get(f"{api}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_reader_of_one_dag_sees_its_cascade_views_and_gets_403_for_another(fab_cluster, runs):
    token = _token(fab_cluster)
    seen = quote(runs[READABLE], safe="")
    for path in (
        f"/cascade/ti/{READABLE}/{seen}/send",
        f"/cascade/run/{READABLE}/{seen}",
        f"/cascade/api/ti/{READABLE}/{seen}/send",
    ):
        answer = _get(fab_cluster, path, token)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    assert _get(fab_cluster, f"/cascade/api/ti/{READABLE}/{seen}/send", token).json()["sent"] == 12
    hidden = quote(runs[HIDDEN], safe="")
    for path in (
        f"/cascade/ti/{HIDDEN}/{hidden}/send",
        f"/cascade/run/{HIDDEN}/{hidden}",
        f"/cascade/api/run/{HIDDEN}/{hidden}",
    ):
        answer = _get(fab_cluster, path, token)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "+380" not in answer.text
