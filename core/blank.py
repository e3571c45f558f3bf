"""What counts as blank text, for every job: nothing a reader would see. Spaces of any kind, control
characters (tabs, line breaks) and invisible format characters (zero-width space, BOM), which
``str.strip`` and pyarrow's ``utf8_trim_whitespace`` both keep. One definition, two forms: Python for
one text (synth), an RE2 pattern for pyarrow compute over a column (the quality gate)."""
from __future__ import annotations

import unicodedata

# Unicode general categories: separators (Zs, Zl, Zp), control (Cc), format (Cf)
BLANK_CATEGORIES = ("Z", "Cc", "Cf")
BLANK_PATTERN = "^[" + "".join(rf"\p{{{c}}}" for c in BLANK_CATEGORIES) + "]*$"


def is_blank(text: str | None) -> bool:
    return text is None or all(unicodedata.category(c).startswith(BLANK_CATEGORIES) for c in text)
