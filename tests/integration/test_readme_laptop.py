"""The README's "Try it on your laptop" runs as written: its DAG file and its two scripts,
in an empty folder, in a virtualenv of their own that installs the provider from this
checkout (only the ports are changed, to free ones). Then the Cascade tab is opened as
the README says: logged in with the password the API server wrote."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from airflow_provider_cascade.version_compat import AIRFLOW_V_3_1_PLUS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()

pytestmark = [
    pytest.mark.integration,
    # The walk-through installs the newest Airflow in a venv of its own: once, on the
    # latest lane (the older lanes would install the same thing again).
    pytest.mark.skipif(
        not AIRFLOW_V_3_1_PLUS or os.environ.get("CASCADE_TEST_DATABASE", "test") != "test",
        reason="the laptop walk-through runs on the latest lane only",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def block(title: str) -> str:
    found = re.search(rf"```bash\n(# {re.escape(title)}.*?)```", README, re.DOTALL)
    assert found, f"the README lost its {title!r} block"
    return found.group(1)


# A fresh venv installs Airflow as a user's does (pip, from the index), while the lanes and
# the wheel check run beside it on the same cores: the suite's 300 s is not enough then.
@pytest.mark.timeout(900)
def test_try_it_on_your_laptop_works_as_written(tmp_path):
    dag = re.search(r"```python\n(# dags/my_first_campaign.py\n.*?)```", README, re.DOTALL)
    assert dag, "the README lost its first DAG"
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "my_first_campaign.py").write_text(dag.group(1))
    sandbox_port, api_port = str(free_port()), str(free_port())
    (tmp_path / "try-it.sh").write_text(
        block("Try it on your laptop: try-it.sh").replace("8765", sandbox_port)
    )
    (tmp_path / "open-ui.sh").write_text(
        block("Open the Cascade tab: open-ui.sh").replace("8080", api_port)
    )
    # A user's shell: none of the tests' own Airflow settings, venv or sandbox.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "CASCADE_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(REPO))
    )
    env["CASCADE_CHECKOUT"] = str(REPO)
    # Not the script's business: pip skips compiling every module it installs (CI time;
    # Python compiles what it imports anyway).
    env["PIP_NO_COMPILE"] = "1"
    done = subprocess.run(
        ["bash", "try-it.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    log = tmp_path / "dags-test.log"
    assert done.returncode == 0, (
        done.stdout + done.stderr + (log.read_text() if log.exists() else "")
    )
    assert "DAG run: success" in done.stdout
    assert "3 rows marked sent" in done.stdout
    assert '"accepted":3' in done.stdout and '"duplicate_tracking_ids":0' in done.stdout

    opened = subprocess.run(
        ["bash", "open-ui.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    pid = int((tmp_path / "api-server.pid").read_text())
    try:
        assert opened.returncode == 0, opened.stdout + opened.stderr
        password = re.search(r"user admin, password (\S+)", opened.stdout)
        assert password, opened.stdout
        api = f"http://127.0.0.1:{api_port}"
        token = requests.post(
            f"{api}/auth/token",
            json={"username": "admin", "password": password.group(1)},
            timeout=30,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        runs = requests.get(
            f"{api}/api/v2/dags/my_first_campaign/dagRuns", headers=headers, timeout=30
        ).json()["dag_runs"]
        run_id = quote(runs[0]["dag_run_id"], safe="")
        page = requests.get(
            f"{api}/cascade/ti/my_first_campaign/{run_id}/send", headers=headers, timeout=30
        )
        assert page.status_code == 200 and "data-figure='sent'" in page.text
        assert "+38050123456" not in page.text
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
