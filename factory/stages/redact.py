"""PII redaction: datatrove's PII formatter for emails and public IPs, plus phone numbers.

Emails keep datatrove's pattern with our validator (``core.pii.plausible_email``): its pattern alone
also replaces metric notations such as ``mAP@0.5``.

datatrove has no phone rule, so one is added with datatrove's own ``PIIReplacer`` (the rule lives in
``core.pii``, shared with the quality gate). Placeholders come from config and must not themselves
look like an email or a phone.
"""
from __future__ import annotations

from core.pii import PHONE_PATTERN, plausible_email, plausible_phone
from factory.config import RedactConfig
from factory.stages.base import DocumentStepsStage
from factory.stages.document_steps import FormatterStep, TextFunctionStep


class Redact(DocumentStepsStage):
    name = "redact"
    config_section = "redact"

    @staticmethod
    def build_steps(config: RedactConfig) -> list:
        steps = [email_and_ip_step(config)] if config.emails or config.ips else []
        return steps + ([phone_step(config)] if config.phones else [])


def email_and_ip_step(config: RedactConfig) -> FormatterStep:
    from datatrove.pipeline.formatters import PIIFormatter

    formatter = PIIFormatter(
        remove_emails=config.emails, remove_ips=config.ips,
        email_replacement=config.email_placeholder, ip_replacement=config.ip_placeholder,
    )
    formatter.emails_replacer.validator = plausible_email  # the same rule the quality gate applies
    return FormatterStep("pii", formatter)


def phone_step(config: RedactConfig) -> TextFunctionStep:
    from datatrove.pipeline.formatters.pii import PIIReplacer

    return TextFunctionStep("phones", PIIReplacer(PHONE_PATTERN, config.phone_placeholder, plausible_phone).replace)
