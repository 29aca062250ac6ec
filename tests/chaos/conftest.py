"""The deployment the fault matrix runs on: scripts/cluster.sh with the chaos DAGs, the
metadata database behind a proxy the tests can cut, and Airflow's recovery timeouts set
low enough that each fault's recovery is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, running_cluster

DAGS = Path(__file__).resolve().parent / "dags"
#: The metadata database's proxy (``scripts/cluster.sh kill db-proxy`` cuts it).
DB_PROXY_PORT = 28544
#: How the deployment recovers, bounded:
RECOVERY = {
    # a task queued in a broker that lost it is queued again after 60 s (default 600; it
    # also bounds how long a task may wait for a free worker slot, hence not lower);
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    # a task whose heartbeats stop is failed (and retried) after 20 s (default 300);
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    # a trigger whose triggerer died is taken by the next one after 15 s (default 30).
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
}


@pytest.fixture(scope="session")
def chaos_cluster() -> Iterator[Cluster]:
    with running_cluster(
        dags=DAGS, CASCADE_CLUSTER_DB_PROXY_PORT=str(DB_PROXY_PORT), **RECOVERY
    ) as running:
        yield running
