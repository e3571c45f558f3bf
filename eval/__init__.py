"""eval: see ../shared/DESIGN.md; built by a later issue."""
