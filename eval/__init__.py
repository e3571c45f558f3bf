"""eval: checkpoints compared on the same suites, one report (README.md, "Eval")."""
