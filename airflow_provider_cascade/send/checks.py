"""The checks: each raw batch of the source validated against the contract's rules
(:mod:`~airflow_provider_cascade.messages`), and what to do with the invalid ones.

``on_invalid="fail"`` stops the send before an invalid batch goes out, with ONE error
listing every problem; ``"skip"`` lists them in the result's ``rejected`` and goes on.
Tracking ids are unique within a send, across batches (and a retry, reading the source in
the same order, decides as the first try did).
"""

from __future__ import annotations

from typing import Any, cast

from airflow_provider_cascade.exceptions import CascadeValidationError, Problem
from airflow_provider_cascade.messages import CascadeMessage, check_messages
from airflow_provider_cascade.seen_ids import SeenIds
from airflow_provider_cascade.send.guardrails.base import Batch, Log, Tally
from airflow_provider_cascade.send.settings import CampaignSettings
from airflow_provider_cascade.send.sources import RawBatch

__all__ = ["Checks"]


class Checks:
    """Validates a send's batches, one after another; keeps the rejected ones."""

    def __init__(self, settings: CampaignSettings, log: Log) -> None:
        self.settings = settings
        self.log = log
        #: The messages left out as invalid (``on_invalid="skip"``), as the result lists them.
        self.rejected: list[dict[str, Any]] = []
        self._seen_ids = SeenIds()
        self._read = 0

    def check(self, raw: RawBatch) -> tuple[Batch, list[Problem]]:
        """The valid messages of a batch (with each one's key as the source gave it) and
        the problems of the others."""
        if raw.checked:
            messages = cast(list[CascadeMessage], list(raw.items))
            return Batch(messages, [message.tracking_id for message in messages]), []
        keys: list[Any] = []
        messages, problems = check_messages(
            raw.items,
            label=raw.label,
            start=raw.start,
            defaults=self.settings.defaults,
            recommended_ttl=self.settings.recommended_ttl,
            seen=self._seen_ids,
            spelling=raw.spelling,
            source_keys=keys,
        )
        return Batch(messages, keys), problems

    def settle(self, problems: list[Problem], read: int, sent: int) -> Tally:
        """Fail on the batch's problems or reject them, as ``on_invalid`` says.

        :param read: how many messages the batch had.
        :param sent: how many the service accepted so far (for the log).
        :raises CascadeValidationError: a problem with ``on_invalid="fail"``.
        """
        if problems:
            if self.settings.on_invalid == "fail":
                if sent:
                    self.log.error(
                        "Stopping before an invalid batch; %d message(s) of earlier batches "
                        "were already sent",
                        sent,
                    )
                raise CascadeValidationError(problems)
            self.rejected.extend(problem.to_json() for problem in problems)
            self.log.warning("Skipped %d invalid message(s): %s", len(problems), problems[0])
        self._read += read
        return Tally(self._read, self.rejected, sent)
