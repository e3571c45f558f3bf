"""Export from inside the running app. The gate's libraries (Great Expectations, pandas, matplotlib) take
longer to import and set up than a small export takes to run, so the app exports once into a scratch
folder in the background when it starts, and every export after that runs warm."""
from __future__ import annotations

import tempfile
import threading
from typing import Callable

from core import progress
from core.errors import exit_code
from quality.review.export import ExportConfig, export
from quality.review.store import ReviewStore


class WarmExport:
    def __init__(self, store: ReviewStore):
        self.store = store
        self.lock = threading.Lock()  # one export at a time: same folder, and the gate's charts are not thread-safe

    def run(self, to: ExportConfig, show: Callable[[str], None]) -> str | None:
        """Export, its lines to ``show`` (the admin page's list); the message of an expected error that stopped it
        (a failed gate, a folder it must not replace)."""
        with self.lock, progress.lines_to(show):
            try:
                export(self.store, to)
            except Exception as error:
                if exit_code(error) is None:
                    raise
                return str(error)
        return None

    def warm_up(self, to: ExportConfig) -> None:
        with tempfile.TemporaryDirectory(prefix="review-warm-up-") as scratch:
            self.run(to.model_copy(update={"output_dir": f"{scratch}/reviewed"}), show=lambda _: None)

    def start_warm_up(self, to: ExportConfig) -> None:
        threading.Thread(target=self.warm_up, args=(to,), name="warm-up-export", daemon=True).start()
