"""What a misnamed key or argument most likely meant: by meaning first, then by spelling.

Spelling alone misleads: ``message`` is closest to ``message_type`` when the author meant
``text``, and ``sender`` resembles nothing. So the words people write for each field
(``body``, ``msisdn``, ``sender``...) are looked up first, and ``difflib`` only after.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Collection, Mapping

#: Words DAG authors write for a message field, by meaning (keys folded: lower case, ``_``).
FIELD_SYNONYMS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "message",
            "body",
            "content",
            "msg",
            "sms",
            "message_text",
            "text_message",
            "message_body",
        ),
        "text",
    ),
    **dict.fromkeys(
        (
            "phone",
            "phone_number",
            "msisdn",
            "mobile",
            "mobile_number",
            "number",
            "recipient",
            "to",
            "tel",
            "telephone",
            "destination",
            "cell",
        ),
        "to_phone",
    ),
    **dict.fromkeys(
        ("sender", "from", "sender_name", "sender_id", "alpha_name", "alphaname", "originator"),
        "from_name",
    ),
    **dict.fromkeys(("type", "kind", "category", "channel_type"), "message_type"),
    **dict.fromkeys(
        ("schedule", "send_at", "scheduled_at", "send_time", "deliver_at", "scheduled"),
        "scheduled_sent",
    ),
    **dict.fromkeys(("options", "answers", "choices", "survey"), "survey_options"),
    **dict.fromkeys(("expiry", "validity", "time_to_live", "expires_in", "lifetime"), "ttl"),
    **dict.fromkeys(("reference", "ref", "external_id", "order_id", "key"), "tracking_id"),
}

#: Words DAG authors write for an operator argument, by meaning.
ARGUMENT_SYNONYMS: Mapping[str, str] = {
    **{
        word: field
        for word, field in FIELD_SYNONYMS.items()
        if field in ("from_name", "message_type")
    },
    **dict.fromkeys(
        ("conn_id", "connection_id", "cascade_conn", "http_conn_id"), "cascade_conn_id"
    ),
    **dict.fromkeys(("query", "sql_query", "select"), "sql"),
    **dict.fromkeys(("conn", "database_conn_id", "db_conn_id", "postgres_conn_id"), "sql_conn_id"),
    **dict.fromkeys(("recipients", "payload", "data", "rows"), "messages"),
    **dict.fromkeys(
        ("rate", "rate_limit", "requests_per_second", "rps"), "max_requests_per_second"
    ),
    **dict.fromkeys(("concurrency", "parallelism", "in_flight"), "max_in_flight"),
    **dict.fromkeys(("write_back_sql", "update_sql", "mark_sql"), "mark_sent_sql"),
    **dict.fromkeys(("params_sql", "sql_parameters", "query_parameters"), "parameters"),
    # The flat names of 0.1, inside the argument groups that hold them now.
    "results_path": "path",
    "suppress_sql": "sql",
    "suppress_phones": "phones",
    "suppress_conn_id": "conn_id",
    "quiet_hours_types": "types",
    "quiet_hours_zones": "zones",
    "quiet_hours_policy": "policy",
    "suppression": "suppress",
    "suppress_list": "suppress",
}


def _folded(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def nearest(name: str, choices: Collection[str], synonyms: Mapping[str, str]) -> str | None:
    """The choice ``name`` most likely meant, or None when nothing is close."""
    folded = _folded(name)
    meant = synonyms.get(folded)
    if meant is not None and meant in choices:
        return meant
    close = difflib.get_close_matches(folded, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def check_arguments(
    operator: type,
    given: Collection[str],
    synonyms: Mapping[str, str],
    moved: Mapping[str, str] | None = None,
) -> None:
    """Refuse the arguments neither ``operator`` nor ``BaseOperator`` takes, each with the
    one it most likely meant (``sender=`` -> ``from_name=``), at DAG parse.

    :param moved: arguments of earlier releases -> where they are now
        (``dedupe`` -> ``guardrails=CascadeGuardrails(dedupe=...)``).
    :raises TypeError: as Python does for an unexpected keyword argument.
    """
    accepted = _accepted_arguments(operator)
    unknown = [name for name in given if name not in accepted and not name.startswith("_")]
    if not unknown:
        return
    own = [name for name in _own_arguments(operator) if not name.startswith("_")]
    hints, unplaced = [], False
    for name in unknown:
        if moved and name in moved:
            hints.append(f"{name}= (now {moved[name]})")
            continue
        meant = nearest(name, own, synonyms) or nearest(name, accepted, {})
        hints.append(f"{name}= (did you mean {meant}=?)" if meant else f"{name}=")
        unplaced = unplaced or meant is None
    listing = f"; its own are {', '.join(own)}, besides BaseOperator's" if unplaced else ""
    raise TypeError(f"{operator.__name__} got unexpected argument(s): {', '.join(hints)}{listing}")


@functools.cache
def _own_arguments(operator: type) -> tuple[str, ...]:
    import inspect

    init = next(vars(cls)["__init__"] for cls in operator.__mro__ if "__init__" in vars(cls))
    parameters = inspect.signature(init).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in parameters if p.kind in kinds and p.name != "self")


@functools.cache
def _accepted_arguments(operator: type) -> frozenset[str]:
    """Every keyword the operator's ``__init__`` and its bases' (BaseSensorOperator,
    BaseOperator...) take; worked out once per class (every DAG parse makes operators)."""
    import inspect

    names: set[str] = set()
    for cls in operator.__mro__:
        if "__init__" in vars(cls) and cls is not object:
            for p in inspect.signature(vars(cls)["__init__"]).parameters.values():
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
                    names.add(p.name)
    return frozenset(names)


def reject_unknown(group: type, given: Collection[str]) -> None:
    """Refuse the arguments an argument group (``CascadeGuardrails``, ``QuietHours``...)
    does not take, each with the one it most likely meant, at DAG parse.

    :raises TypeError: as Python does for an unexpected keyword argument.
    """
    if not given:
        return
    own = [name for name in _own_arguments(group) if not name.startswith("_")]
    hints = []
    for name in given:
        meant = nearest(name, own, ARGUMENT_SYNONYMS)
        hints.append(f"{name}= (did you mean {meant}=?)" if meant else f"{name}=")
    raise TypeError(
        f"{group.__name__} got unexpected argument(s): {', '.join(hints)}; it takes "
        f"{', '.join(own)}"
    )
