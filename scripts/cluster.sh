#!/usr/bin/env bash
# A real Airflow deployment on one machine, from the project's venv and the machine's
# services: the metadata database on PostgreSQL (its own database), the CeleryExecutor with
# a Redis of its own as broker (port 26379, nothing kept on disk: the machine's Redis is
# shared) and PostgreSQL as result backend, api-server, scheduler, dag-processor, triggerer,
# two Celery workers (worker-1, worker-2; concurrency 2 each) and a sandbox. With
# CASCADE_CLUSTER_DB_PROXY_PORT set, every process reaches the metadata database through a
# TCP proxy on that port (the `db-proxy` component): killing it makes the database
# unreachable for this deployment only, the machine's PostgreSQL running on for the rest.
#
#   scripts/cluster.sh up        start everything; return once the API server answers,
#                                both workers are registered and the DAGs are parsed
#   scripts/cluster.sh env       `export` lines: `.venv/bin/airflow dags trigger ...` in a
#                                shell that evals them talks to this deployment; the UI
#                                (http://127.0.0.1:28080) takes admin and
#                                $CASCADE_CLUSTER_ADMIN_PASSWORD
#   scripts/cluster.sh workers   each Celery worker's PID, one a line (each leads its own
#                                process group: its pool and the tasks it runs)
#   scripts/cluster.sh restart-workers
#                                start again any worker that died (a test killed it), and
#                                return once both are registered
#   scripts/cluster.sh kill NAME SIGKILL a component and its process tree (api-server,
#                                scheduler, dag-processor, triggerer, redis, db-proxy)
#   scripts/cluster.sh start NAME start it again
#   scripts/cluster.sh revive    what a supervisor (systemd's Restart=, Kubernetes) does:
#                                start again every Airflow component that exited (the
#                                scheduler, DAG processor and triggerer exit when the
#                                metadata database is unreachable); prints each one's name
#   scripts/cluster.sh down      stop everything it started, drop its database (idempotent)
#
# DAGs come from CASCADE_CLUSTER_DAGS (default example_dags/). Every AIRFLOW_CONN_* and
# AIRFLOW__* variable of the caller reaches every process (the caller's value wins over the
# defaults below). The sandbox gets the extra flags in CASCADE_SANDBOX_ARGS, and
# cascade_default points at it unless AIRFLOW_CONN_CASCADE_DEFAULT is set.
# Logs: .cluster/logs/<process>.log.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER=$ROOT/.cluster
VENV=${VENV:-$ROOT/.venv}
AIRFLOW=$VENV/bin/airflow
PY=$VENV/bin/python
DB_NAME=${CASCADE_CLUSTER_DB:-cascade_cluster}
API_PORT=${CASCADE_CLUSTER_API_PORT:-28080}
SANDBOX_PORT=${CASCADE_CLUSTER_SANDBOX_PORT:-28765}
REDIS_PORT=${CASCADE_CLUSTER_REDIS_PORT:-26379}
DB_PROXY_PORT=${CASCADE_CLUSTER_DB_PROXY_PORT:-}
WORKERS=(worker-1 worker-2)
STARTUP_TIMEOUT=${CASCADE_CLUSTER_TIMEOUT:-240}

log() { echo "cluster: $*" >&2; }

# --- the machine's services (their documented start commands) -------------------------

ensure_services() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        log "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
        for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    command -v redis-server >/dev/null || { log "redis-server is not installed"; exit 1; }
}

ensure_installed() {
    if [ ! -x "$AIRFLOW" ]; then
        make -C "$ROOT" -s install
    fi
    if ! "$PY" -c "import airflow.providers.celery" 2>/dev/null; then
        log "installing the cluster extra (apache-airflow-providers-celery)"
        mkdir -p "$CLUSTER/logs"
        "$PY" -m pip install -q -e "$ROOT[cluster]" > "$CLUSTER/logs/install.log" 2>&1 \
            || { cat "$CLUSTER/logs/install.log"; exit 1; }
    fi
}

# --- configuration: written once by `up`, read by every other command -----------------

write_env() {
    local dags secret api_key
    dags=$(cd "${CASCADE_CLUSTER_DAGS:-$ROOT/example_dags}" && pwd)
    secret=$("$PY" -c "import secrets; print(secrets.token_urlsafe(32))")
    api_key=${CASCADE_SANDBOX_API_KEY:-$("$PY" -c "import secrets; print(secrets.token_hex(16))")}
    local pg="postgres@127.0.0.1:${DB_PROXY_PORT:-5432}/$DB_NAME"
    local admin_password
    admin_password=$("$PY" -c "import secrets; print(secrets.token_urlsafe(12))")
    echo "{\"admin\": \"$admin_password\"}" > "$CLUSTER/passwords.json"
    local sandbox_url="http://127.0.0.1:$SANDBOX_PORT"
    local conn
    # The sandbox stands for the account: its --rate-limit is the connection's budget.
    conn=${AIRFLOW_CONN_CASCADE_DEFAULT:-$("$PY" - "$sandbox_url" "$api_key" "${CASCADE_SANDBOX_ARGS-}" <<'PYTHON'
import argparse, json, shlex, sys
parser = argparse.ArgumentParser(add_help=False)
parser.add_argument("--rate-limit", type=float)
known, _ = parser.parse_known_args(shlex.split(sys.argv[3]))
extra = {} if known.rate_limit is None else {"max_requests_per_second": known.rate_limit}
print(json.dumps({"conn_type": "cascade", "host": sys.argv[1], "password": sys.argv[2], "extra": extra}))
PYTHON
)}
    local defaults
    defaults=$(cat <<EOF
AIRFLOW__CORE__EXECUTOR=CeleryExecutor
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://$pg
AIRFLOW__CELERY__BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
AIRFLOW__CELERY__RESULT_BACKEND=db+postgresql://$pg
AIRFLOW__CELERY__WORKER_CONCURRENCY=2
AIRFLOW__CORE__DAGS_FOLDER=$dags
AIRFLOW__CORE__LOAD_EXAMPLES=False
AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$API_PORT/execution/
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$CLUSTER/passwords.json
AIRFLOW__API__HOST=127.0.0.1
AIRFLOW__API__PORT=$API_PORT
AIRFLOW__API__SECRET_KEY=$secret
AIRFLOW__API_AUTH__JWT_SECRET=$secret
AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1
AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=20
AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL=5
EOF
)
    {
        echo "export AIRFLOW_HOME=$(printf %q "$CLUSTER/home")"
        echo "export CASCADE_CLUSTER_DAGS=$(printf %q "$dags")"
        echo "export CASCADE_SANDBOX_URL=$sandbox_url"
        echo "export CASCADE_SANDBOX_API_KEY=$api_key"
        # The UI's one user: admin, with this password (Airflow's simple auth manager).
        echo "export CASCADE_CLUSTER_ADMIN_PASSWORD=$admin_password"
        echo "export AIRFLOW_CONN_CASCADE_DEFAULT=$(printf %q "$conn")"
        # Defaults the caller's own AIRFLOW__* values override.
        while IFS='=' read -r name value; do
            if [ -z "${!name+set}" ]; then
                echo "export $name=$(printf %q "$value")"
            else
                echo "export $name=$(printf %q "${!name}")"
            fi
        done <<< "$defaults"
        # The caller's other settings and connections: a component started later (start,
        # revive) from any shell runs with the configuration `up` gave it.
        local name
        for name in $(compgen -e | grep -E '^AIRFLOW(__|_CONN_)'); do
            [ "$name" = AIRFLOW_CONN_CASCADE_DEFAULT ] && continue
            grep -q "^$name=" <<< "$defaults" || echo "export $name=$(printf %q "${!name}")"
        done
    } > "$CLUSTER/env.sh"
}

load_env() {
    if [ ! -f "$CLUSTER/env.sh" ]; then
        log "not up (no $CLUSTER/env.sh): run scripts/cluster.sh up"
        exit 1
    fi
    # shellcheck disable=SC1091
    source "$CLUSTER/env.sh"
}

# --- processes: each in its own session, so `down` stops its whole tree ---------------

start() {
    local name=$1
    shift
    setsid "$@" > "$CLUSTER/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$CLUSTER/pids/$name.pid"
}

wait_for() {
    local what=$1
    shift
    local deadline=$(( $(date +%s) + STARTUP_TIMEOUT ))
    until "$@" > /dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "timed out waiting for $what; the logs are in $CLUSTER/logs:"
            tail -n 20 "$CLUSTER"/logs/*.log >&2
            down
            exit 1
        fi
        for pidfile in "$CLUSTER"/pids/*.pid; do
            if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
                log "$(basename "$pidfile" .pid) exited while waiting for $what:"
                tail -n 40 "$CLUSTER/logs/$(basename "$pidfile" .pid).log" >&2
                down  # no half-started deployment left behind (the logs stay)
                exit 1
            fi
        done
        sleep 1
    done
    log "$what: ready"
}

api_answers() {
    "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "http://127.0.0.1:$API_PORT/api/v2/monitor/health"
}

sandbox_answers() {
    grep -q "^Cascade sandbox listening on " "$CLUSTER/logs/sandbox.log"
}

start_worker() {
    local worker=${WORKERS[$1]}
    # Its own name (task instances say which worker ran them) and log server port.
    start "$worker" env CASCADE_WORKER_NAME="$worker" PYTHONPATH="$ROOT/scripts" \
        AIRFLOW__CORE__HOSTNAME_CALLABLE=cluster_helpers.worker_hostname \
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$((8795 + $1)) \
        "$AIRFLOW" celery worker --concurrency 2 --celery-hostname "$worker@%h"
}

restart_workers() {
    load_env
    for number in "${!WORKERS[@]}"; do
        local pidfile="$CLUSTER/pids/${WORKERS[$number]}.pid"
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true  # what is left of it
            mv "$CLUSTER/logs/${WORKERS[$number]}.log" \
                "$CLUSTER/logs/${WORKERS[$number]}.$(date +%s).log"
            start_worker "$number"
        fi
    done
    wait_for "the workers ${WORKERS[*]}" "$PY" "$ROOT/scripts/cluster_helpers.py" \
        workers-ready "${WORKERS[@]}"
}

# SIGKILL one component (api-server, scheduler, dag-processor, triggerer) and every process
# under it, as when its machine dies.
kill_component() {
    load_env
    local pidfile="$CLUSTER/pids/$1.pid"
    [ -f "$pidfile" ] || { echo "no component $1" >&2; exit 2; }
    kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
    log "$1: killed"
}

# The broker: a Redis of this deployment's own, keeping nothing (a restart loses what
# was queued, as a broker without persistence does).
start_redis() {
    start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir "$CLUSTER"
}

redis_answers() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
}

start_db_proxy() {
    start db-proxy "$PY" "$ROOT/scripts/cluster_helpers.py" proxy "$DB_PROXY_PORT" 5432
}

db_proxy_answers() {
    pg_isready -q -h 127.0.0.1 -p "$DB_PROXY_PORT"
}

# Start a component again after kill (its earlier log kept beside the new one).
start_component() {
    load_env
    local name=$1
    case "$name" in
        redis) start_redis ;;
        db-proxy)
            [ -n "$DB_PROXY_PORT" ] || { echo "no db-proxy: CASCADE_CLUSTER_DB_PROXY_PORT" >&2; exit 2; }
            start_db_proxy ;;
        api-server) start api-server "$AIRFLOW" api-server --port "$API_PORT" ;;
        scheduler|dag-processor|triggerer) start "$name" "$AIRFLOW" "$name" ;;
        *) echo "cannot start $name" >&2; exit 2 ;;
    esac
    log "$name: started"
}

# Start again each Airflow component that exited, as its supervisor would; name each.
revive() {
    load_env
    local name
    for name in api-server scheduler dag-processor triggerer; do
        if ! kill -0 "$(cat "$CLUSTER/pids/$name.pid")" 2>/dev/null; then
            mv "$CLUSTER/logs/$name.log" "$CLUSTER/logs/$name.$(date +%s).log"
            start_component "$name"
            echo "$name"
        fi
    done
    local dead=0
    for name in "${WORKERS[@]}"; do
        if ! kill -0 "$(cat "$CLUSTER/pids/$name.pid")" 2>/dev/null; then
            echo "$name"
            dead=1
        fi
    done
    if [ "$dead" -eq 1 ]; then restart_workers; fi
}

up() {
    down  # whatever an earlier `up` left
    ensure_services
    ensure_installed
    # A fresh deployment's logs only: the earlier one's would muddle a log scan.
    rm -rf "$CLUSTER/logs" "$CLUSTER/home/logs"
    mkdir -p "$CLUSTER/logs" "$CLUSTER/pids" "$CLUSTER/home"
    write_env
    load_env
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE \"$DB_NAME\"" > /dev/null
    start_redis
    wait_for "Redis on port $REDIS_PORT" redis_answers
    if [ -n "$DB_PROXY_PORT" ]; then
        start_db_proxy
        wait_for "the metadata database's proxy on port $DB_PROXY_PORT" db_proxy_answers
    fi
    log "migrating the metadata database ($DB_NAME)"
    "$AIRFLOW" db migrate > "$CLUSTER/logs/db-migrate.log" 2>&1 \
        || { tail -n 40 "$CLUSTER/logs/db-migrate.log"; exit 1; }

    # shellcheck disable=SC2086  # CASCADE_SANDBOX_ARGS is a list of flags
    start sandbox "$PY" -m airflow_provider_cascade.sandbox --port "$SANDBOX_PORT" \
        ${CASCADE_SANDBOX_ARGS-}
    start api-server "$AIRFLOW" api-server --port "$API_PORT"
    start scheduler "$AIRFLOW" scheduler
    start dag-processor "$AIRFLOW" dag-processor
    start triggerer "$AIRFLOW" triggerer
    for number in "${!WORKERS[@]}"; do
        start_worker "$number"
    done
    wait_for "the sandbox on $CASCADE_SANDBOX_URL" sandbox_answers
    wait_for "the API server on port $API_PORT" api_answers
    wait_for "the workers ${WORKERS[*]}" "$PY" "$ROOT/scripts/cluster_helpers.py" \
        workers-ready "${WORKERS[@]}"
    wait_for "the DAGs of $CASCADE_CLUSTER_DAGS" "$PY" "$ROOT/scripts/cluster_helpers.py" \
        dags-parsed "$CASCADE_CLUSTER_DAGS"
    log "up: eval \"\$(scripts/cluster.sh env)\" to use it"
}

down() {
    if [ -d "$CLUSTER/pids" ]; then
        for pidfile in "$CLUSTER"/pids/*.pid; do
            [ -f "$pidfile" ] || continue
            kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
        done
        for _ in $(seq 20); do
            alive=0
            for pidfile in "$CLUSTER"/pids/*.pid; do
                [ -f "$pidfile" ] || continue
                kill -0 -- "-$(cat "$pidfile")" 2>/dev/null && alive=1
            done
            [ "$alive" -eq 0 ] && break
            sleep 0.5
        done
        for pidfile in "$CLUSTER"/pids/*.pid; do
            [ -f "$pidfile" ] || continue
            kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        done
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        psql -q -h 127.0.0.1 -U postgres -d postgres \
            -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" > /dev/null
    fi
    rm -f "$CLUSTER/env.sh"
    log "down"
}

case "${1-}" in
    up) up ;;
    down) down ;;
    restart-workers) restart_workers ;;
    revive) revive ;;
    kill) kill_component "$2" ;;
    start) [ -f "$CLUSTER/logs/$2.log" ] && mv "$CLUSTER/logs/$2.log" "$CLUSTER/logs/$2.$(date +%s).log"
        start_component "$2" ;;
    env) load_env; cat "$CLUSTER/env.sh" ;;
    workers)
        load_env
        for worker in "${WORKERS[@]}"; do cat "$CLUSTER/pids/$worker.pid"; done
        ;;
    *) echo "usage: scripts/cluster.sh up|env|workers|restart-workers|kill NAME|start NAME|revive|down" >&2
        exit 2 ;;
esac
