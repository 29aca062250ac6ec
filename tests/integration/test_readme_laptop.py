"""The README's "Try it on your laptop" runs as written: its DAG file and its shell lines,
in an empty folder, with a fresh Airflow home (only the port is changed, to a free one)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_try_it_on_your_laptop_works_as_written(tmp_path):
    dag = re.search(r"```python\n(# dags/my_first_campaign.py\n.*?)```", README, re.DOTALL)
    script = re.search(r"```bash\n(# Try it on your laptop\n.*?)```", README, re.DOTALL)
    assert dag and script, "the README lost its 'Try it on your laptop' blocks"
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "my_first_campaign.py").write_text(dag.group(1))
    port = str(free_port())
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "CASCADE_SANDBOX"))  # the tests' own home and DAGs
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-e", "-c", script.group(1).replace("8765", port)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = (tmp_path / "dags-test.log").read_text() if (tmp_path / "dags-test.log").exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    assert "DAG run: success" in done.stdout
    assert "3 rows marked sent" in done.stdout
    assert '"accepted":3' in done.stdout and '"duplicate_tracking_ids":0' in done.stdout
