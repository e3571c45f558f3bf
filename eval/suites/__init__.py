"""One module per suite: build the items' inputs, stream them through the model actors for every
checkpoint, and reduce the per-item scores to the report's metrics. Each writes its per-item
results beside the report (``items/<suite>/<set>/<checkpoint>.parquet``)."""
