"""Quiet hours in the recipient's local time: when a promo may reach a person.

The recipient's zone comes from the number (the ``phonenumbers`` library's time-zone data,
by country and area code). A number the library places in several zones gets the time
allowed in all of them; where they share none (a Russian mobile maps to sixteen zones,
UTC+2 to UTC+12) or the library cannot place the number, the zone the user set for its
country calling code (``quiet_hours_zones={"7": "Europe/Moscow"}``) is used, else the
message is held, with that reason.

Light to import (the operator builds :class:`QuietHours` at every DAG parse):
``phonenumbers`` is imported on the first look-up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_cascade.validation import MessageType

__all__ = ["DEFAULT_QUIET_TYPES", "Placement", "QuietHours", "QuietPolicy"]

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


@dataclass(frozen=True)
class QuietHours:
    """The window ``start`` to ``end`` (local time; past midnight when ``end < start``)
    in which messages of ``types`` are not delivered.

    :param policy: ``schedule``: deliver at the window's end; ``skip``: leave it out.
    :param zones: country calling code -> IANA zone, where the number's own zones do not do.
    """

    start: time
    end: time
    types: frozenset[MessageType] = frozenset(DEFAULT_QUIET_TYPES)
    policy: QuietPolicy = "schedule"
    zones: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        window: Sequence[str],
        types: Collection[str] | None = None,
        zones: Mapping[str, str] | None = None,
        policy: str = "schedule",
    ) -> QuietHours:
        """From the operator's arguments.

        :raises ValueError: a window that is not two ``HH:MM`` times, an unknown type,
            policy or zone.
        """
        if isinstance(window, str) or len(window) != 2:
            raise ValueError(
                f"quiet_hours must be (start, end) as 'HH:MM' texts, e.g. ('21:00', '08:00'), "
                f"not {window!r}"
            )
        start, end = (_clock_time(value) for value in window)
        if start == end:
            raise ValueError(f"quiet_hours {tuple(window)!r} is empty: start and end are equal")
        known = {kind.value: kind for kind in MessageType}
        chosen = [_type_name(kind) for kind in (DEFAULT_QUIET_TYPES if types is None else types)]
        unknown = sorted(kind for kind in chosen if kind not in known)
        if unknown:
            raise ValueError(
                f"quiet_hours_types: unknown message type(s) {unknown}; known: {sorted(known)}"
            )
        if policy not in ("schedule", "skip"):
            raise ValueError(f"quiet_hours_policy must be 'schedule' or 'skip', not {policy!r}")
        checked_zones: dict[str, str] = {}
        for code, name in (zones or {}).items():
            code_text = str(code).lstrip("+")
            if not (code_text.isdigit() and 1 <= len(code_text) <= 3):
                raise ValueError(
                    f"quiet_hours_zones: {code!r} is not a country calling code (1 to 3 digits)"
                )
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"quiet_hours_zones[{code!r}]: {name!r} is not an IANA time zone "
                    "(e.g. 'Europe/Moscow')"
                ) from None
            checked_zones[code_text] = name
        return cls(
            start,
            end,
            frozenset(known[kind] for kind in chosen),
            policy,  # type: ignore[arg-type]
            checked_zones,
        )

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def applies_to(self, message_type: MessageType) -> bool:
        return message_type in self.types

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
            f"set quiet_hours_zones={{'{code}': ...}}"
            if code
            else "its country calling code is unknown, so quiet_hours_zones cannot place it"
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


def _clock_time(value: object) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"quiet_hours: {value!r} is not a time of day as 'HH:MM'") from None


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
