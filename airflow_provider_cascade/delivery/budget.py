"""One status budget per connection: the account's data limit (50 requests/s, status and
balance alike) is one budget, however many waits look statuses up at once.

A wait that sets no rate of its own (``max_requests_per_second=None``, the default) paces
its look-ups at the connection's ``status_requests_per_second`` (default 40/s, under the
limit), and:

- within one process, every such wait on the connection draws from one shared pacer at
  that rate: a triggerer running four waits at once looks up 40/s in all, not 160/s;
- a mapped wait (``.partial().expand()``) divides the rate by the number of its instances
  that run at once (``max_active_tis_per_dagrun``, or the number of instances), as mapped
  sends divide theirs (:mod:`~airflow_provider_cascade.partitions`): instances on several
  workers or triggerers stay within the budget together.

A wait with an explicit ``max_requests_per_second`` keeps that rate and its own pacer: the
account's limit is then the DAG author's to respect. Waits in different processes that are
not instances of one mapped task (two triggerers, two DAGs polling in poke mode) each get
the whole rate: set the connection's ``status_requests_per_second`` to the limit divided
by how many may run at once.
"""

from __future__ import annotations

import threading

from airflow_provider_cascade.hooks.pacing import Pacer, SharedPacer

__all__ = ["connection_pacer", "status_pacer"]

_lock = threading.Lock()
_shared: dict[tuple[str, float], Pacer] = {}


def connection_pacer(conn_id: str, rate: float) -> Pacer:
    """This process's one pacer of the connection's status look-ups at ``rate``."""
    with _lock:
        pacer = _shared.get((conn_id, rate))
        if pacer is None:
            pacer = _shared[(conn_id, rate)] = Pacer(rate)
        return pacer


def status_pacer(conn_id: str, connection_rate: float, sharing: int = 1) -> Pacer:
    """The pacer of one wait that set no rate: its share of the connection's rate, within
    the process's one pacer for the connection.

    :param connection_rate: the connection's ``status_requests_per_second``.
    :param sharing: how many instances of the wait's mapped task run at once (1: unmapped).
    """
    shared = connection_pacer(conn_id, connection_rate)
    if sharing <= 1:
        return shared
    return SharedPacer(connection_rate / sharing, shared)
