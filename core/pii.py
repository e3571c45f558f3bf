"""The PII rules, in one place: the factory redacts what they match, and the quality gate looks for
anything they would still match. Emails and public IPs are datatrove's own patterns (its PIIFormatter);
datatrove has no phone rule, so ours is added with its ``PIIReplacer`` conventions (a pattern plus a
validator that a match must pass). Emails get a validator too: datatrove's pattern also matches metric
notations of CS papers (``mAP@0.5``, ``R1@0.7``), whose "domain" ends in a number."""
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


# a real top-level label is letters (com, edu, museum) or an IDN in punycode (xn--p1ai); never digits
_TOP_LEVEL_LABEL = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]+")


def plausible_email(match: str) -> bool:
    """An address literal (``x@[192.0.2.1]``) or a domain whose top-level label is alphabetic:
    ``x@uni-x.edu`` is an address, ``mAP@0.5`` and ``mAP@0.5:0.95`` (matched as ``mAP@0.5``) are not."""
    domain = match.rsplit("@", 1)[1]
    return domain.startswith("[") or _TOP_LEVEL_LABEL.fullmatch(domain.rsplit(".", 1)[-1]) is not None


@lru_cache(maxsize=1)
def _rules() -> dict[str, tuple[re.Pattern, Callable[[str], bool] | None]]:
    from datatrove.pipeline.formatters import PIIFormatter

    datatrove = PIIFormatter()  # its default: public IPs only
    return {
        "emails": (datatrove.emails_replacer.regex, plausible_email),
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
