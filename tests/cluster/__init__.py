"""Jobs submitted with ``ray job submit`` to one multi-node Ray cluster on loopback, shared by every test of
this package (started once: 2 cores carry one cluster, and its start-up is paid once)."""
