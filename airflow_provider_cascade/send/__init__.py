"""The send side: the pipeline a message travels (``sources`` -> ``checks`` ->
``guardrails`` -> ``dispatch`` -> ``sinks``, wired by ``campaign``), and the argument groups
a DAG gives the send operator. Light to import: DAG files import the groups from here.

``from airflow_provider_cascade.send import CascadeGuardrails, CascadeRequests,
CascadeResults, QuietHours, Suppression``
"""

from __future__ import annotations

from airflow_provider_cascade.send.guardrails import CascadeGuardrails, QuietHours, Suppression
from airflow_provider_cascade.send.options import CascadeRequests, CascadeResults

__all__ = ["CascadeGuardrails", "CascadeRequests", "CascadeResults", "QuietHours", "Suppression"]
