"""Talking to OpenAI-compatible endpoints, shared by synth (generation, judging) and eval (the judge):
endpoint settings, an async client with retries, a durable answer cache, and resolving a batch of
requests in one process or on a Ray Data actor pool."""
