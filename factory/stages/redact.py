"""PII redaction: datatrove's PII formatter for emails and public IPs, plus phone numbers.

datatrove has no phone rule, so one is added here with datatrove's own ``PIIReplacer``.
Placeholders come from config and must not themselves look like an email or a phone.
"""
from __future__ import annotations

import re

from factory.config import RedactConfig
from factory.stages.base import DocumentStepsStage
from factory.stages.document_steps import FormatterStep, TextFunctionStep

# +44 20 7946 0958, +1 (415) 555-2671, +49-30-123456, 0044 20 7946 0958
_INTERNATIONAL = r"(?:\+|\b00)\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,5}[ .\-]?\d{2,5}"
# (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671, 1-800-555-0199
_NORTH_AMERICAN = r"(?:\b1[ .\-])?(?:\(\d{3}\)[ .\-]?|\b\d{3}[ .\-])\d{3}[ .\-]\d{4}"
PHONE_PATTERN = rf"(?<![\w+.\-/])(?:{_INTERNATIONAL}|{_NORTH_AMERICAN})(?![\w\-/]|\.\d)"


def plausible_phone(match: str) -> bool:
    """7-15 digits (E.164), and not a year range or a date such as 2019-2021 or 2021.03.04."""
    digits = re.sub(r"\D", "", match)
    if not 7 <= len(digits) <= 15:
        return False
    return not re.fullmatch(r"(19|20)\d\d[ .\-](19|20)?\d\d([ .\-]\d\d)?", match.strip())


class Redact(DocumentStepsStage):
    name = "redact"
    config_section = "redact"

    @staticmethod
    def build_steps(config: RedactConfig) -> list:
        steps = [email_and_ip_step(config)] if config.emails or config.ips else []
        return steps + ([phone_step(config)] if config.phones else [])


def email_and_ip_step(config: RedactConfig) -> FormatterStep:
    from datatrove.pipeline.formatters import PIIFormatter

    return FormatterStep("pii", PIIFormatter(
        remove_emails=config.emails, remove_ips=config.ips,
        email_replacement=config.email_placeholder, ip_replacement=config.ip_placeholder,
    ))


def phone_step(config: RedactConfig) -> TextFunctionStep:
    from datatrove.pipeline.formatters.pii import PIIReplacer

    return TextFunctionStep("phones", PIIReplacer(PHONE_PATTERN, config.phone_placeholder, plausible_phone).replace)
