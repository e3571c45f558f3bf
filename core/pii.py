"""The PII rules, in one place: the factory redacts what they match, and the quality gate looks for
anything they would still match. Emails and public IPs are datatrove's own rules (its PIIFormatter);
datatrove has no phone rule, so ours is added with its ``PIIReplacer`` conventions (a pattern plus a
validator that a match must pass)."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

# +44 20 7946 0958, +1 (415) 555-2671, +49-30-123456, 0044 20 7946 0958
_INTERNATIONAL = r"(?:\+|\b00)\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,5}[ .\-]?\d{2,5}"
# (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671, 1-800-555-0199
_NORTH_AMERICAN = r"(?:\b1[ .\-])?(?:\(\d{3}\)[ .\-]?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}"
PHONE_PATTERN = rf"(?<![\w+.\-/])(?:{_INTERNATIONAL}|{_NORTH_AMERICAN})(?![\w\-/]|\.\d)"

# Cheap RE2 patterns (pyarrow compute) that every match of the rules above also matches: texts without
# one cannot hold PII, so the exact rules run on the few that do.
PREFILTERS = {"emails": r"@", "ips": r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", "phones": r"\d[\d .()\-]{5,}\d"}


def plausible_phone(match: str) -> bool:
    """7-15 digits (E.164), and not a year range or a date such as 2019-2021 or 2021.03.04."""
    digits = re.sub(r"\D", "", match)
    if not 7 <= len(digits) <= 15:
        return False
    return not re.fullmatch(r"(19|20)\d\d[ .\-](19|20)?\d\d([ .\-]\d\d)?", match.strip())


@lru_cache(maxsize=1)
def _rules() -> dict[str, tuple[re.Pattern, Callable[[str], bool] | None]]:
    from datatrove.pipeline.formatters import PIIFormatter

    datatrove = PIIFormatter()  # its default: public IPs only
    return {
        "emails": (datatrove.emails_replacer.regex, datatrove.emails_replacer.validator),
        "ips": (datatrove.ip_replacer.regex, datatrove.ip_replacer.validator),
        "phones": (re.compile(PHONE_PATTERN), plausible_phone),
    }


def find_pii(text: str, kinds: tuple[str, ...] = ("emails", "ips", "phones")) -> tuple[str, str] | None:
    """(kind, matched text) of the first PII the rules would redact in ``text``, or None."""
    for kind in kinds:
        pattern, validator = _rules()[kind]
        for match in pattern.finditer(text):
            if validator is None or validator(match.group(0)):
                return kind, match.group(0)
    return None
