"""The "Cascade" views, served by the API server (Airflow 3.1+ ``fastapi_apps``).

``/cascade/ti/{dag_id}/{run_id}/{task_id}`` shows a send's or a delivery check's figures
from its XCom; ``/cascade/run/{dag_id}/{run_id}`` lists the run's Cascade tasks. The JSON
forms (``/cascade/api/...``) give the same figures. Every endpoint asks what Airflow's own
XCom endpoints ask: an authenticated user (a token in the ``Authorization`` header or
Airflow's session cookie) with read access to the DAG's XComs; anything else gets 401 or
403, never the report. Pages are rendered here, with their charts as inline SVG: nothing
is fetched from elsewhere.

Longer than 300 lines: the tab's two pages and their HTML; splitting markup from the two
routes that alone use it would scatter one page.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from airflow_provider_cascade.plugins.charts import bars, stacked_bar, timeline
from airflow_provider_cascade.replies.receiver import router as replies_router
from airflow_provider_cascade.results import FAILURE_KEY
from airflow_provider_cascade.send.guardrails import FIGURES

#: The operators whose tasks have a Cascade report.
CASCADE_OPERATORS = ("CascadeSendOperator", "CascadeDeliverySensor")
#: Rejected messages shown in the page (the XCom holds them all).
REJECTED_SHOWN = 20

_can_read_xcom = [Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))]

app = FastAPI(
    title="Cascade reports",
    description="The SMSBAT Cascade provider's views of sends and delivery checks.",
    # No page of this app is open without Airflow's authentication: no schema, no docs.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
# The replies receiver: SMSBAT cannot log in, so it is guarded by its token instead.
app.include_router(replies_router)


def _xcom(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> Any:
    row = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.map_index == map_index,
            XComModel.key == key,
        )
    ).first()
    if row is None:
        return None
    value = XComModel.deserialize_value(row)
    return json.loads(value) if isinstance(value, str) else value


def _return_value(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """The task's result, or the summary a failed send left (``FAILURE_KEY``)."""
    value = _xcom(session, dag_id, run_id, task_id, map_index, "return_value")
    if value is None:
        failed = _xcom(session, dag_id, run_id, task_id, map_index, FAILURE_KEY)
        if isinstance(failed, dict):
            return {"failure": failed}
    return value


def figures(value: Any) -> dict[str, Any] | None:
    """What the view shows of a task's XCom: a send's counts or a delivery report's; never
    a phone, a text or a message id. None when it is neither."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("failure"), dict):
        failure = value["failure"]
        return {
            "kind": "failed_send",
            "error": str(failure.get("error", "")),
            "first_line": str(failure.get("first_line", "")),
            "accepted": int(failure.get("accepted") or 0),
            "in_doubt": int(failure.get("in_doubt") or 0),
            "unmarked": int(failure.get("unmarked") or 0),
            "problem_count": int(failure.get("problem_count") or 0),
            "first_rejected": [
                {key: problem.get(key) for key in ("ref", "field", "rule", "code")}
                for problem in (failure.get("problems") or [])[:REJECTED_SHOWN]
            ],
        }
    if "route" in value and "sent" in value:
        return {
            "kind": "send",
            "route": value.get("route"),
            "dry_run": bool(value.get("dry_run")),
            "sent": value.get("sent", 0),
            "batches": value.get("batches", 0),
            "rejected": len(value.get("rejected") or []),
            "in_doubt": len(value.get("in_doubt") or []),
            # What each guardrail did, by its counts (the lists may be offloaded).
            "guardrails": {label: value.get(field) or 0 for field, label in FIGURES.items()},
            "first_rejected": [
                {key: problem.get(key) for key in ("ref", "field", "rule", "code")}
                for problem in (value.get("rejected") or [])[:REJECTED_SHOWN]
            ],
            "timeline": value.get("timeline") or [],
            "results_path": value.get("results_path"),
            "forecast": value.get("forecast"),
        }
    if "by_status" in value and "total" in value:
        return {
            "kind": "delivery",
            "total": value.get("total", 0),
            "by_status": value.get("by_status") or {},
            "by_channel": value.get("by_channel") or {},
            "cost": value.get("cost") or {},
            "estimate": value.get("estimate"),
            "results_path": value.get("results_path"),
        }
    return None


def _task_figures(
    session: Any, dag_id: str, run_id: str, task_id: str, map_index: int
) -> dict[str, Any]:
    found = figures(_return_value(session, dag_id, run_id, task_id, map_index))
    if found is None:
        raise HTTPException(404, f"{task_id} has no Cascade result in run {run_id}")
    return found


def _map_index(value: str) -> int:
    """The UI leaves ``{MAP_INDEX}`` as it is for a task that is not mapped."""
    try:
        return int(value)
    except ValueError:
        return -1


@app.get("/api/ti/{dag_id}/{run_id}/{task_id}", dependencies=_can_read_xcom)
def task_figures(
    dag_id: str, run_id: str, task_id: str, session: SessionDep, map_index: str = "-1"
) -> dict[str, Any]:
    """A Cascade task's figures, as JSON."""
    return _task_figures(session, dag_id, run_id, task_id, _map_index(map_index))


@app.get("/api/run/{dag_id}/{run_id}", dependencies=_can_read_xcom)
def run_figures(dag_id: str, run_id: str, session: SessionDep) -> list[dict[str, Any]]:
    """Every Cascade task of the run (mapped instances apart), with its figures."""
    tasks = session.execute(
        select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.operator.in_(CASCADE_OPERATORS),
        )
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
    ).all()
    listed = []
    for task_id, map_index, state in tasks:
        found = figures(_return_value(session, dag_id, run_id, task_id, map_index))
        listed.append(
            {"task_id": task_id, "map_index": map_index, "state": state, "figures": found}
        )
    return listed


@app.get("/ti/{dag_id}/{run_id}/{task_id}", dependencies=_can_read_xcom)
def task_page(
    dag_id: str, run_id: str, task_id: str, session: SessionDep, map_index: str = "-1"
) -> HTMLResponse:
    """The task instance's "Cascade" tab."""
    index = _map_index(map_index)
    found = figures(_return_value(session, dag_id, run_id, task_id, index))
    title = f"{task_id}" + (f" [{index}]" if index >= 0 else "")
    if found is None:
        body = (
            "<p class='empty'>No Cascade report here: this task is not a finished (or "
            "failed) CascadeSendOperator, nor a finished CascadeDeliverySensor.</p>"
        )
    elif found["kind"] == "send":
        body = _send_section(found)
    elif found["kind"] == "failed_send":
        body = _failed_section(found)
    else:
        body = _delivery_section(found)
    return HTMLResponse(_page(title, body))


@app.get("/run/{dag_id}/{run_id}", dependencies=_can_read_xcom)
def run_page(dag_id: str, run_id: str, session: SessionDep) -> HTMLResponse:
    """The run's "Cascade" tab: one section per Cascade task."""
    sections = []
    for task in run_figures(dag_id, run_id, session):
        name = task["task_id"] + (f" [{task['map_index']}]" if task["map_index"] >= 0 else "")
        found = task["figures"]
        if found is None:
            inner = f"<p class='empty'>{escape(str(task['state']))}: no result yet</p>"
        elif found["kind"] == "send":
            inner = _cards(_send_cards(found))
        elif found["kind"] == "failed_send":
            inner = _failed_section(found)
        else:
            inner = _cards({"messages": found["total"], **found["by_status"]})
        sections.append(f"<section><h2>{escape(name)}</h2>{inner}</section>")
    body = "".join(sections) or "<p class='empty'>This run has no Cascade task.</p>"
    return HTMLResponse(_page(f"Run {run_id}", body))


def _send_cards(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "would send" if found["dry_run"] else "sent": found["sent"],
        "rejected": found["rejected"],
        "in doubt": found["in_doubt"],
        **{label.replace("_", " "): count for label, count in found["guardrails"].items()},
        "requests": found["batches"],
    }


def _failed_section(found: dict[str, Any]) -> str:
    """A failed send: its error's first line, what was accepted before, the problems."""
    parts = [
        f"<p class='failed'><strong>{escape(found['error'])}</strong>: "
        f"{escape(found['first_line'])}</p>",
        _cards(
            {
                "accepted before it failed": found["accepted"],
                "problems": found["problem_count"],
                "in doubt": found["in_doubt"],
                "not written back": found["unmarked"],
            }
        ),
    ]
    if found["first_rejected"]:
        parts.append(_problems_table(found["first_rejected"], found["problem_count"], "Problems"))
    return "".join(parts)


def _problems_table(problems: list[dict[str, Any]], total: int, title: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(problem[key]))}</td>" for key in problem) + "</tr>"
        for problem in problems
    )
    return (
        f"<h2>{title} ({len(problems)} of {total})</h2>"
        "<table><tr><th>message</th><th>field</th><th>rule</th><th>code</th></tr>"
        f"{rows}</table>"
    )


def _send_section(found: dict[str, Any]) -> str:
    parts = [
        f"<p class='meta'>route {escape(str(found['route']))}"
        + (" &middot; dry run: nothing was sent" if found["dry_run"] else "")
        + "</p>",
        _cards(_send_cards(found)),
    ]
    if found["timeline"]:
        parts.append(timeline(found["timeline"], title="Messages sent over time"))
    if found["first_rejected"]:
        parts.append(_problems_table(found["first_rejected"], found["rejected"], "First rejected"))
    if found["forecast"]:
        forecast = found["forecast"]
        parts.append(bars(forecast.get("by_type") or {}, title="Messages by type"))
        parts.append(bars(forecast.get("by_calling_code") or {}, title="By calling code"))
    return "".join(parts)


def _delivery_section(found: dict[str, Any]) -> str:
    parts = [
        _cards({"messages": found["total"], **found["by_status"]}),
        stacked_bar(found["by_status"], title="Status of every message"),
    ]
    if found["by_channel"]:
        parts.append(bars(found["by_channel"], title="Delivered by channel"))
    estimate = found["estimate"]
    if estimate:
        rows = "".join(
            f"<tr><td>{escape(name)}</td><td>{share['share']:.1%}</td>"
            f"<td>{share['low']:.1%} to {share['high']:.1%}</td></tr>"
            for name, share in {**estimate["by_status"], **estimate["by_channel"]}.items()
        )
        parts.append(
            f"<h2>Estimated for all {estimate['population']:,} messages "
            f"(a sample of {estimate['sample_size']:,})</h2><table><tr><th></th>"
            f"<th>share</th><th>95% interval</th></tr>{rows}</table>"
        )
    if found["cost"]:
        rows = "".join(
            f"<tr><td>{escape(currency)}</td><td>{sums.get('cost', 0):,.2f}</td>"
            f"<td>{sums.get('bill_amount', 0):,.2f}</td></tr>"
            for currency, sums in found["cost"].items()
        )
        parts.append(
            "<h2>Cost</h2><table><tr><th>currency</th><th>cost</th><th>billed</th></tr>"
            f"{rows}</table>"
        )
    return "".join(parts)


def _cards(values: dict[str, Any]) -> str:
    return (
        "<div class='cards'>"
        + "".join(
            f"<div class='card' data-figure='{escape(str(name))}'><div class='value'>"
            f"{value:,}</div><div class='name'>{escape(str(name))}</div></div>"
            for name, value in values.items()
        )
        + "</div>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #1f2933; background: #fff; }
h1 { font-size: 18px; margin: 0 0 8px; } h2 { font-size: 15px; margin: 20px 0 8px; }
.meta, .empty { color: #52606d; } .failed { color: #a61b1b; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 16px; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; padding: 8px 12px; min-width: 90px; }
.card .value { font-size: 22px; font-weight: 600; } .card .name { color: #52606d; }
table { border-collapse: collapse; } td, th { border: 1px solid #d9e2ec; padding: 4px 8px;
text-align: left; font-size: 13px; }
svg.chart { display: block; margin: 12px 0; } svg .title { font-size: 13px; font-weight: 600; }
svg .label, svg .legend, svg .tick { font-size: 12px; fill: #334e68; }
svg .axis { stroke: #9fb3c8; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Cascade: {escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Cascade: {escape(title)}</h1>{body}</body></html>"
    )
