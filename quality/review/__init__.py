"""The annotator review app: annotators judge chosen/rejected pairs in a browser, and their decisions
become the DPO set.

Modules: store (what the app needs from storage, as an interface), sqlite_store (SQLite in WAL mode,
with versioned migrations), auth (login tokens, sessions, CSRF), rendering (model output as safe
Markdown), app (the Starlette app; its handlers in routes/, one module per resource, sharing web.py's
require_session), agreement (kappas, agreement with the judge), loading and
export (preference triples in, the reviewed preference dataset out), config (its settings).
"""
