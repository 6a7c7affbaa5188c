"""Resident memory of the benchmark's worker processes (Linux first).

A worker reads its own peak resident set size (`VmHWM`) after a point has
run. Each point normally runs in a fresh process, so the peak is that
point's; where points share a process (`--quick`), the peak is reset
between them through `/proc/self/clear_refs` and the row says so.
"""

import os
import resource
import sys

MIB = 1024 * 1024


def _status_kib(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes():
    """Peak resident memory of this process so far."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes


def current_rss_bytes():
    """Resident memory of this process now (the peak where unknown)."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else peak_rss_bytes()


def reset_peak():
    """Resets the peak to the current resident memory; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def available_bytes():
    """Memory a new process may use now (`MemAvailable`), or `None`."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
