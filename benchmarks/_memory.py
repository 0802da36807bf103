"""Peak memory of the running benchmark process."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB: ``VmHWM`` where Linux gives it (``ru_maxrss`` carries
    a parent's peak across fork and exec), else ``ru_maxrss``."""
    if STATUS.exists():
        for text in STATUS.read_text().splitlines():
            if text.startswith("VmHWM:"):
                return int(text.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
