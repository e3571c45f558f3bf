"""quality: Great Expectations suites for every dataset kind, and the gate jobs run before they publish.

Modules: config (thresholds, one section per kind), datasets (where a kind's files are), scan (one
streaming pass over every file), meters (whole-dataset measurements, one idea each), uniqueness
(exact duplicate keys in bounded memory), suites (which checks each kind runs), expectations (the
measurements handed to GX, Data Docs), charts, gate (validate a dataset; the hook jobs call).
"""
