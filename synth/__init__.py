"""synth: LLM-driven SFT examples and preference triples from the factory's documents.

``python -m synth sft|preferences CONFIG.yaml``; see README.md (Synth) and docs/ARCHITECTURE.md.
"""
