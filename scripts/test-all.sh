#!/usr/bin/env bash
# The whole test suite on the latest Airflow (.venv), and at the same time the older-Airflow
# lanes (.venv-2.11, .venv-3.0: see docs/compatibility.md) in their own venvs, each
# installed from its lock file. Fails if any lane fails or collects no test.
set -uo pipefail
cd "$(dirname "$0")/.."
LANES=${AIRFLOW_LANES-"2.11 3.0"}
mkdir -p .ci/logs

# What no Airflow version changes, run on the latest lane only (CI's time: the lanes
# share 2 cores with it): the sandbox server itself, the docs and layout checks, and the
# fault soak (the send loop against an in-memory state store, no Airflow run).
LANE_SKIP="--ignore=tests/sandbox --ignore=tests/test_docs_site.py
    --ignore=tests/test_docs_parameters.py --ignore=tests/test_architecture.py
    --ignore=tests/test_changelog.py --ignore=tests/reliability/test_fault_soak.py"

declare -A pids
for lane in $LANES; do
    (
        set -e
        # One install at a time where flock exists: each writes the egg-info in this folder.
        if command -v flock >/dev/null; then
            flock .ci/logs/install.lock make -s ".venv-$lane/.installed"
        else
            make -s ".venv-$lane/.installed"
        fi
        # Its own database on the shared PostgreSQL/MariaDB servers: the lanes run at once.
        # At a lower priority than the latest lane, the longest of the three: they share
        # the cores, and the run ends when the latest lane does.
        CASCADE_TEST_DATABASE="cascade_airflow_${lane//./_}" \
            nice -n 5 ".venv-$lane/bin/python" -m pytest -p no:cacheprovider --ignore=tests/cluster \
            --ignore=tests/cluster_fab --ignore=tests/chaos $LANE_SKIP \
            --durations=25 ${LANE_PYTEST_ARGS-}
    ) > ".ci/logs/airflow-$lane.log" 2>&1 &
    pids[$lane]=$!
done

# The package as users install it: built, twine-checked, the wheel in a fresh venv
# (scripts/check-wheel.sh), beside the lanes.
nice -n 15 bash scripts/check-wheel.sh > .ci/logs/wheel.log 2>&1 &
wheel_pid=$!

# The cluster tests (tests/cluster: a real deployment, scripts/cluster.sh) run after the
# lanes, alone: they measure a rate on a 2-core machine that the lanes would share.
.venv/bin/python -m pytest --ignore=tests/cluster --ignore=tests/cluster_fab --ignore=tests/chaos \
    --durations=25 "$@"
status=$?

for lane in $LANES; do
    wait "${pids[$lane]}"
    lane_status=$?
    log=".ci/logs/airflow-$lane.log"
    if [ "$lane_status" -eq 0 ]; then
        echo "Airflow $lane lane: $(tail -n 1 "$log")"
        grep '^SKIPPED' "$log" | sed 's/^/    /' || true
    else
        echo "Airflow $lane lane FAILED (exit $lane_status); the end of $log:"
        tail -n 60 "$log"
        status=1
    fi
done
if wait "$wheel_pid"; then
    echo "Wheel check: $(grep -c '^ok ' .ci/logs/wheel.log) checks passed"
else
    echo "Wheel check FAILED; the end of .ci/logs/wheel.log:"
    tail -n 40 .ci/logs/wheel.log
    status=1
fi
if [ -z "${CASCADE_SKIP_CLUSTER-}" ]; then
    .venv/bin/python -m pytest -p no:cacheprovider --durations=25 tests/cluster || status=1
    # Another deployment (the FAB auth manager: per-DAG roles), after the first is down.
    .venv/bin/python -m pytest -p no:cacheprovider tests/cluster_fab || status=1
    # The fault matrix (issue 28): one component of a third deployment failed during a
    # 100,000-message campaign, one on_uncertain mode of each fault (make chaos: both).
    .venv/bin/python -m pytest -p no:cacheprovider --durations=10 tests/chaos || status=1
fi
exit "$status"
