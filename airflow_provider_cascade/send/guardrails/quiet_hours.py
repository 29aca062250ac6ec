"""Quiet hours in the recipient's local time: when a promo may reach a person.

The recipient's zone comes from the number (the ``phonenumbers`` library's time-zone data,
by country and area code). A number the library places in several zones gets the time
allowed in all of them; where they share none (a Russian mobile maps to sixteen zones,
UTC+2 to UTC+12) or the library cannot place the number, the zone the user set for its
country calling code (``QuietHours(zones={"7": "Europe/Moscow"})``) is used, else the
message is held, with that reason.

Light to import (a DAG file builds :class:`QuietHours` at every parse):
``phonenumbers`` is imported on the first look-up.

Longer than 300 lines: the window, the zone look-up and the step that applies them are one
rule, read together; the zone arithmetic has no other user.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, ClassVar, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_cascade.constants import MAX_SCHEDULE_AHEAD
from airflow_provider_cascade.exceptions import Problem
from airflow_provider_cascade.send.guardrails.base import Batch, Guardrail, Screened, left_out
from airflow_provider_cascade.suggestions import reject_unknown
from airflow_provider_cascade.validation import MessageType

__all__ = ["DEFAULT_QUIET_TYPES", "KeepQuiet", "Placement", "QuietHours", "QuietPolicy"]

QuietPolicy = Literal["schedule", "skip"]
#: What quiet hours hold by default: an OTP or an order confirmation is never held.
DEFAULT_QUIET_TYPES = (MessageType.PROMO, MessageType.VIBER_SURVEY)
#: How far ahead a common allowed time is looked for (a day and its two neighbours).
_SEARCH = timedelta(days=2)


class Placement(NamedTuple):
    """When a message may be delivered: ``due`` (UTC; the same instant when it was not in
    quiet hours), or None with the ``reason`` it is held."""

    due: datetime | None
    reason: str | None = None


class QuietHours:
    """Quiet hours: messages of ``types`` are not delivered between ``start`` and ``end``
    in the recipient's local time (past midnight when ``end`` is earlier than ``start``).

    ``QuietHours("21:00", "08:00")`` holds promos and Viber surveys from 21:00 to 08:00.

    :param start: when the window opens, ``"HH:MM"`` (or a ``datetime.time``).
    :param end: when it closes.
    :param types: the message types it holds (default ``promo`` and ``viber_survey``: an
        OTP or an order confirmation is never held).
    :param zones: country calling code -> IANA zone (``{"7": "Europe/Moscow"}``), used where
        the number's own zones share no allowed time or the library cannot place it;
        without one such a message is held, listed in the result's ``held`` with why.
    :param policy: ``schedule`` (default): ``scheduled_sent`` becomes the window's end in
        UTC (also for a message already scheduled inside it; moved past the 30-day limit it
        is rejected); ``skip``: it is not sent and is listed in ``held``.
    :raises ValueError: a time that is not ``HH:MM``, an empty window, an unknown type,
        policy or zone (at DAG parse).
    """

    def __init__(
        self,
        start: str | time,
        end: str | time,
        *,
        types: Collection[str | MessageType] | None = None,
        zones: Mapping[str, str] | None = None,
        policy: QuietPolicy = "schedule",
        **unknown: Any,
    ) -> None:
        reject_unknown(type(self), unknown)
        self.start, self.end = _clock_time(start), _clock_time(end)
        if self.start == self.end:
            raise ValueError(f"QuietHours({start!r}, {end!r}) is empty: start and end are equal")
        known = {kind.value: kind for kind in MessageType}
        given = [types] if isinstance(types, str) else types
        chosen = [_type_name(kind) for kind in (DEFAULT_QUIET_TYPES if given is None else given)]
        strange = sorted(kind for kind in chosen if kind not in known)
        if strange:
            raise ValueError(
                f"QuietHours(types=...): unknown message type(s) {strange}; known: {sorted(known)}"
            )
        if policy not in ("schedule", "skip"):
            raise ValueError(f"QuietHours(policy=...) must be 'schedule' or 'skip', not {policy!r}")
        self.types = frozenset(known[kind] for kind in chosen)
        self.policy: QuietPolicy = policy
        self.zones = _checked_zones(zones or {})

    def __repr__(self) -> str:
        types = sorted(kind.value for kind in self.types)
        return (
            f"QuietHours({self.start:%H:%M}, {self.end:%H:%M}, types={types}, "
            f"zones={dict(self.zones)}, policy={self.policy!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuietHours) and repr(self) == repr(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def place(self, phone: str, due: datetime) -> Placement:
        """When a message to ``phone`` (E.164), due at ``due`` (aware), may be delivered."""
        zones = library_zones(phone)
        if zones:
            allowed = _allowed_from(self.start, self.end, zones, due)
            if allowed is not None:
                return Placement(allowed)
        own = self._user_zone(phone)
        if own is not None:
            allowed = _allowed_from(self.start, self.end, (own,), due)
            assert allowed is not None  # one zone always has time outside the window
            return Placement(allowed)
        code = calling_code(phone)
        hint = (
            f"set QuietHours(zones={{'{code}': ...}})"
            if code
            else "its country calling code is unknown, so QuietHours(zones=...) cannot place it"
        )
        if zones:
            reason = (
                f"its {len(zones)} time zones ({_offset_range(zones, due)}) share no time "
                f"outside quiet hours {self.label}: {hint}"
            )
        else:
            reason = f"its time zone is unknown to the phonenumbers library: {hint}"
        return Placement(None, reason)

    def _user_zone(self, phone: str) -> str | None:
        digits = phone.lstrip("+")
        for length in (1, 2, 3):  # calling codes are prefix-free
            zone = self.zones.get(digits[:length])
            if zone is not None:
                return zone
        return None


def _type_name(kind: object) -> str:
    return kind.value if isinstance(kind, MessageType) else str(kind)


class KeepQuiet(Guardrail):
    """Moves (or, with ``policy="skip"``, leaves out) the messages quiet hours hold."""

    name = "quiet_hours"
    labels: ClassVar[dict[str, str]] = {
        "rescheduled": "scheduled_by_quiet_hours",
        "held_count": "held",
    }

    def __init__(self, quiet: QuietHours) -> None:
        self.quiet = quiet
        self._rescheduled = 0
        self._held = 0

    def screen(self, batch: Batch, now: datetime) -> Screened:
        """A message moved out of quiet hours gets its new ``scheduled_sent``; one moved
        past the 30-day limit is a problem like any other."""
        quiet = self.quiet
        kept = Batch([], [])
        screened = Screened(kept)
        for message, key in zip(batch.messages, batch.keys, strict=True):
            if message.message_type in quiet.types:
                due = _utc(message.scheduled_sent) if message.scheduled_sent else now
                placement = quiet.place(message.to_phone, due)
                why = placement.reason
                if placement.due is not None and placement.due != due:
                    until = _iso(placement.due)
                    if quiet.policy == "skip":
                        why = (
                            f"inside quiet hours {quiet.label} in the recipient's zone until "
                            f"{until}"
                        )
                    elif placement.due > now + MAX_SCHEDULE_AHEAD:
                        screened.problems.append(
                            Problem(
                                message.tracking_id,
                                "scheduled_sent",
                                f"quiet hours {quiet.label} move it to {until}, more than 30 "
                                "days ahead",
                                "INVALID_SCHEDULED_SENT",
                            )
                        )
                        continue
                    else:
                        self._rescheduled += 1
                        message = message._replace(scheduled_sent=until)
                if why is not None:
                    screened.left_out.append(left_out(message.tracking_id, held=why))
                    continue
            kept.messages.append(message)
            kept.keys.append(key)
        self._held += len(screened.left_out)
        return screened

    def figures(self) -> dict[str, int]:
        return {"rescheduled": self._rescheduled, "held_count": self._held}


def _utc(moment: str) -> datetime:
    """A checked ``scheduled_sent`` (``YYYY-MM-DDTHH:MM:SSZ``) as an aware datetime."""
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _checked_zones(zones: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for code, name in zones.items():
        code_text = str(code).lstrip("+")
        if not (code_text.isdigit() and 1 <= len(code_text) <= 3):
            raise ValueError(
                f"QuietHours(zones=...): {code!r} is not a country calling code (1 to 3 digits)"
            )
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"QuietHours(zones=...)[{code!r}]: {name!r} is not an IANA time zone "
                "(e.g. 'Europe/Moscow')"
            ) from None
        checked[code_text] = name
    return checked


def _clock_time(value: object) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"QuietHours: {value!r} is not a time of day as 'HH:MM'") from None


@lru_cache(maxsize=262_144)
def library_zones(phone: str) -> tuple[str, ...]:
    """The IANA zones the ``phonenumbers`` library gives the number; () when it cannot
    place it (an invalid or non-geographic number without a country-wide zone)."""
    import phonenumbers
    from phonenumbers import timezone as number_zones

    try:
        parsed = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return ()
    found = number_zones.time_zones_for_number(parsed)
    return tuple(zone for zone in found if zone != "Etc/Unknown")


def calling_code(phone: str) -> str | None:
    """The number's country calling code (``380`` of ``+380...``), None if none is known."""
    digits = phone.lstrip("+")
    known = _calling_codes()
    for length in (1, 2, 3):  # calling codes are prefix-free
        if digits[:length] in known:
            return digits[:length]
    return None


@lru_cache(maxsize=1)
def _calling_codes() -> frozenset[str]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


@lru_cache(maxsize=4_096)
def _allowed_from(start: time, end: time, zones: tuple[str, ...], due: datetime) -> datetime | None:
    """The first instant from ``due`` outside the window in every one of ``zones``, or
    None when they share none within :data:`_SEARCH`."""
    moment = due
    while moment - due <= _SEARCH:
        latest = moment
        for name in zones:
            window_end = _quiet_until(start, end, ZoneInfo(name), moment)
            if window_end is not None and window_end > latest:
                latest = window_end
        if latest == moment:
            return moment
        moment = latest
    return None


def _quiet_until(start: time, end: time, zone: ZoneInfo, moment: datetime) -> datetime | None:
    """The end (UTC) of the quiet window ``moment`` falls in, in ``zone``; None if outside."""
    local = moment.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start < end:
        quiet, ends_today = start <= now < end, True
    else:  # the window spans midnight
        quiet, ends_today = (now >= start or now < end), now < end
    if not quiet:
        return None
    day = local.date() if ends_today else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(timezone.utc)


def _offset_range(zones: tuple[str, ...], moment: datetime) -> str:
    offsets = sorted(moment.astimezone(ZoneInfo(name)).utcoffset() or timedelta() for name in zones)
    return f"UTC{_offset(offsets[0])} to UTC{_offset(offsets[-1])}"


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}" if not rest else f"{sign}{hours}:{rest:02d}"
