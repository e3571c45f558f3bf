"""Is an endpoint there at all? Asked once before a job sends thousands of requests: a server that was
never started would otherwise turn every item into a reject, after every retry's backoff."""
from __future__ import annotations

import urllib.error
import urllib.request


def unreachable(base_url: str, timeout_s: float = 5.0) -> str | None:
    """None when something answers HTTP at ``base_url`` (any status: 401 and 404 still mean a server is there);
    else why not (connection refused, unknown host, timeout)."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def unreachable_endpoints(endpoints: dict[str, dict]) -> list[str]:
    """``name (base_url): reason`` for each endpoint nothing answers at."""
    found = []
    for name, endpoint in endpoints.items():
        url = endpoint.get("base_url", "")
        if (reason := unreachable(url)) is not None:
            found.append(f"{name} ({url}): {reason}")
    return found
