"""Test doubles that are real parts: an OpenAI-compatible HTTP server on loopback."""
