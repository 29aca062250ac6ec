"""``@task.cascade``: a TaskFlow function whose messages are sent by the task that makes them.

The function returns or **yields** messages; they are checked, guarded and sent batch by
batch in the same task, with :class:`~airflow_provider_cascade.operators.cascade.
CascadeSendOperator`'s arguments and guarantees. Nothing of the messages goes to XCom.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    DecoratedOperator,
    TaskDecorator,
    context_merge,
    determine_kwargs,
    task_decorator_factory,
)

from airflow_provider_cascade.operators.cascade import CascadeSendOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_cascade.send.campaign import WriteBack
    from airflow_provider_cascade.send.sources import Source

__all__ = ["cascade_task"]

#: The operator's sources, which the function replaces.
_SOURCE_FIELDS = ("messages", "sql", "parameters")


class _CascadeDecoratedOperator(DecoratedOperator, CascadeSendOperator):
    """Calls the function at run time and sends what it returns or yields (see
    :func:`cascade_task`)."""

    template_fields: Sequence[str] = (
        *DecoratedOperator.template_fields,
        *(name for name in CascadeSendOperator.template_fields if name not in _SOURCE_FIELDS),
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        "mark_sent_sql": "sql",
    }
    custom_operator_name = "@task.cascade"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs, **kwargs
        )

    def _check_source(
        self, messages: Any, sql: str | None, sql_conn_id: str | None, mark_sent_sql: str | None
    ) -> None:
        if messages is not None or sql is not None:
            raise ValueError(
                "@task.cascade sends what its function returns or yields: it takes no "
                "messages= or sql= (use CascadeSendOperator for those)"
            )
        if mark_sent_sql and not sql_conn_id:
            raise ValueError("mark_sent_sql= needs sql_conn_id=: the database it writes to")

    def execute(self, context: Context) -> dict[str, Any]:
        # The send's own execute: DecoratedOperator's would call the function and hand its
        # return value on, which here is the send's input, not the task's output.
        return CascadeSendOperator.execute(self, context)

    @contextmanager
    def _source(self, context: Context) -> Iterator[tuple[Source, WriteBack | None]]:
        from airflow_provider_cascade.constants import MARK_SENT_PARAMETERS
        from airflow_provider_cascade.sql import RowWriter

        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        # A generator function runs nothing yet: its first message is read by the send loop,
        # after mark_sent_sql was checked below.
        source = messages_source(self.python_callable(*self.op_args, **kwargs))
        if not self.mark_sent_sql:
            yield source, None
            return
        assert self.sql_conn_id is not None  # _check_source
        with RowWriter(self.sql_conn_id, self.mark_sent_sql, "mark_sent_sql") as writer:
            writer.check(MARK_SENT_PARAMETERS, self.log)
            yield source, writer


def messages_source(returned: Any) -> Source:
    """What the function returned as a source: a list (or its JSON text) whole, so that
    ``on_invalid="fail"`` checks it all before sending; any other iterable (a generator)
    batch by batch, never held whole.

    :raises CascadeValidationError: None, a single message, or something not iterable.
    """
    from airflow_provider_cascade.exceptions import CascadeValidationError, Problem
    from airflow_provider_cascade.messages import CascadeMessage
    from airflow_provider_cascade.send.sources import IterSource, ListSource, as_message_list

    if isinstance(returned, (str, Sequence)) and not isinstance(returned, bytes):
        return ListSource(as_message_list(returned))
    if isinstance(returned, Iterable) and not isinstance(returned, (Mapping, CascadeMessage)):
        return IterSource(returned)
    what = "None" if returned is None else f"a {type(returned).__name__}"
    raise CascadeValidationError(
        [
            Problem(
                "function",
                "return",
                f"is {what}: a @task.cascade function returns or yields messages "
                '(dicts or CascadeMessage), e.g. \'yield {"tracking_id": ..., "to_phone": ..., '
                '"text": ...}\'',
                "INVALID_BODY",
            )
        ]
    )


def cascade_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """Send the messages a function returns or yields, in the task that runs it.

    ::

        @task.cascade(from_name="YourShop", message_type="transaction")
        def confirmations(ds=None):
            for order in orders_of(ds):  # read as you go: never all in memory
                yield {
                    "tracking_id": f"order-{order.id}",  # stable: a retry skips what went
                    "to_phone": order.phone,
                    "text": f"Order {order.id} is confirmed",
                }

    The function's arguments are TaskFlow's (upstream outputs, context keys such as
    ``ds`` or ``ti``). It returns a list (or a JSON text of one) or yields messages: dicts
    with the fields of ``CascadeSendOperator(messages=...)``, or ``CascadeMessage``
    objects. A list is checked whole before anything is sent; yielded messages are read a
    batch at a time (``requests=CascadeRequests(batch_size=...)``), each batch checked and
    guarded before it goes, so a generator of millions runs in bounded memory.

    Takes every argument of :class:`~airflow_provider_cascade.operators.cascade.
    CascadeSendOperator` except its sources (``messages``, ``sql``, ``parameters``):
    ``from_name``, ``message_type``, ``ttl``, ``scheduled_sent``, ``route``, ``dry_run``,
    ``on_invalid``, ``on_uncertain``, ``guardrails``, ``requests``, ``results``,
    ``durable``, ``cascade_conn_id``, plus BaseOperator's.

    :param sql_conn_id: a common-sql connection, for ``mark_sent_sql`` (and a
        ``Suppression(sql=...)``).
    :param mark_sent_sql: run on ``sql_conn_id`` after each accepted batch, once per message
        with the named parameters ``message_id``, ``tracking_id`` (as the function gave it),
        ``sent_at``; committed per batch; checked before anything is sent. Templated.

    **Retries never re-send** (``durable=True``, Airflow 3.3+): the task's progress is kept
    by tracking id, so a retry calls the function again and skips every message an earlier
    try sent. The function must therefore give each message the same ``tracking_id`` on
    every call (an order number, not a counter or a time).

    **Caps on a generator**: it cannot be counted ahead, so ``max_messages`` (and, without
    ``results_path`` or ``mark_sent_sql``, ``xcom_inline_limit``) stop the send before the
    batch that passes them, with the batches before it sent; a list is counted first.

    :return: (XCom) the send's result, as ``CascadeSendOperator`` pushes it
        (:class:`~airflow_provider_cascade.results.CascadeSendResult` as a dict): never the
        messages. A send past ``xcom_inline_limit`` ids needs ``results_path`` or
        ``mark_sent_sql``.
    :raises CascadeValidationError: the function returned None or a single message, or a
        message is invalid (``on_invalid="fail"``); the other errors of the operator.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=False,
        decorated_operator_class=_CascadeDecoratedOperator,
        **kwargs,
    )
