"""The review app's handlers, one module per resource: session (sign in and out), review (the queue
and decisions), admin (counts, agreement, export)."""
