"""Personal data kept out of logs, errors and UI previews: phone numbers are masked."""

from __future__ import annotations

import re

_PHONE_LIKE = re.compile(r"\+?[0-9]{7,}")


def mask_phone(phone: object) -> str:
    """Show a phone number as ``+380*****4567``: enough to recognise it, not to dial it."""
    text = str(phone)
    if len(text) <= 8:
        return "*" * len(text)
    return f"{text[:4]}{'*' * (len(text) - 8)}{text[-4:]}"


def redact_phones(text: str) -> str:
    """Mask every run of 7 or more digits (a possible phone number) in free text."""
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), text)
