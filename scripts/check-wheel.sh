#!/usr/bin/env bash
# The package as users get it: the sdist and the wheel built (python -m build), checked by
# twine, the wheel installed (not -e) into a fresh venv, and used from a folder that holds
# nothing of the checkout: scripts/check_wheel.py (copied there) checks the provider, its
# connection type, TaskFlow decorator and plugin load, that the console scripts answer,
# and that an example DAG runs end to end against the installed sandbox. A file missing
# from the wheel (py.typed...) or a dropped entry point fails it: shown once on a clone with
# airflow_provider_cascade/py.typed deleted ("FAIL  py.typed is installed (PEP 561)") and
# once with the airflow.plugins entry point dropped ("FAIL  the airflow.plugins entry point").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$REPO/.ci/wheel
rm -rf "$WORK" && mkdir -p "$WORK/dist" "$WORK/run/dags"

.venv/bin/python -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log"; exit 1; }
.venv/bin/python -m twine check --strict "$WORK"/dist/*

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip > "$WORK/install.log" 2>&1
wheel=$(ls "$WORK"/dist/*.whl)
# What the example needs beside the provider: SQLite's provider, the sandbox's extra.
# --no-compile: CI time (Python compiles what it imports anyway).
"$WORK/venv/bin/python" -m pip install -q --no-compile "${wheel}[sandbox]" \
    apache-airflow-providers-sqlite \
    >> "$WORK/install.log" 2>&1 || { tail -n 30 "$WORK/install.log"; exit 1; }

cp scripts/check_wheel.py "$WORK/run/"
cp example_dags/otp_flashcall.py "$WORK/run/dags/"
cd "$WORK/run"
env -u PYTHONPATH PATH="$WORK/venv/bin:$PATH" AIRFLOW_HOME="$WORK/run/home" \
    AIRFLOW__CORE__DAGS_FOLDER="$WORK/run/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False \
    "$WORK/venv/bin/python" check_wheel.py "$REPO"
