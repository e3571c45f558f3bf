"""Noticing a server that ignores ``response_format``. Some OpenAI-compatible servers accept the field and
answer free text anyway (``transformers serve`` logs "Ignoring unsupported fields", older llama.cpp builds,
some proxies): every answer is then malformed or off its schema, asked again, and rejected, and the user sees
only the rejects. So each endpoint's first answers to schema requests are checked as they arrive, and when most
do not fit the schema that was sent, the user is told once, early, which setting to change."""
from __future__ import annotations

from dataclasses import dataclass

from core import progress
from core.llm.json_answers import parse_json_answer
from core.llm.settings import EndpointConfig

FIRST_ANSWERS = 8  # answers per endpoint judged before the verdict (fewer when a round has fewer)
MOSTLY = 0.5  # this share or more off-schema: the endpoint is not honouring response_format


@dataclass
class EndpointTally:
    answers: int = 0
    off_schema: int = 0
    said: bool = False  # the verdict is given once per endpoint and process


# per process, not per Resolver: a job makes a Resolver per round of requests (and per Ray actor), and the user
# is told once. Keyed by what makes an endpoint: its name, server, model and structured_output setting
_TALLIES: dict[tuple, EndpointTally] = {}


class StructuredOutputWatch:
    def __init__(self, endpoints: dict[str, EndpointConfig]):
        self.endpoints = endpoints

    def tally(self, name: str) -> EndpointTally:
        e = self.endpoints[name]
        return _TALLIES.setdefault((name, e.base_url, e.model, e.structured_output), EndpointTally())

    def answered(self, endpoint: str, schema: dict | None, text: str, finish_reason: str | None) -> None:
        if schema is None or endpoint not in self.endpoints or self.endpoints[endpoint].structured_output == "none":
            return
        tally = self.tally(endpoint)
        if tally.said or tally.answers >= FIRST_ANSWERS:
            return
        tally.answers += 1
        tally.off_schema += off_schema(text, schema, finish_reason)
        if tally.answers == FIRST_ANSWERS:
            self.verdict(endpoint, tally)

    def round_done(self) -> None:
        """The end of a round of requests: endpoints with fewer answers than FIRST_ANSWERS are judged on those."""
        for name in self.endpoints:
            if self.endpoints[name].structured_output != "none" and self.tally(name).answers >= 2:
                self.verdict(name, self.tally(name))

    def verdict(self, endpoint: str, tally: EndpointTally) -> None:
        if tally.said or tally.off_schema < MOSTLY * tally.answers:
            return
        tally.said = True
        mode = self.endpoints[endpoint].structured_output
        instead = "json_object, or none" if mode == "json_schema" else "none"
        progress.warn(f"endpoint {endpoint!r} seems not to honour structured output: {tally.off_schema} of its first "
                      f"{tally.answers} answers do not fit the JSON schema sent as response_format ({mode}). Servers "
                      "that ignore response_format (transformers serve, older llama.cpp builds, some proxies) answer "
                      f"free text. Try endpoints.{endpoint}.structured_output: {instead} (the prompt asks for JSON "
                      "either way, and answers are parsed tolerantly and asked again when off-schema).")


def off_schema(text: str, schema: dict, finish_reason: str | None) -> bool:
    """Does this answer show that the schema was not followed? An answer cut at max_tokens cannot parse; but a
    server that decodes under the schema starts it as JSON, and free text does not start with a brace."""
    if finish_reason == "length":
        return not text.lstrip().startswith("{")
    return parse_json_answer(text, schema)[1] is not None
