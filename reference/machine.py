"""What machine this is: its name, memory, free memory (recorded with every measurement)."""

from __future__ import annotations

import glob
import os


def machine_name(device: str) -> str:
    """The CPU model (from /proc/cpuinfo) or the CUDA device's name."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    from planners.devices import this_cpu

    return this_cpu()


def memory_capacity_bytes(device: str) -> int:
    """Total memory of the device (CUDA) or of the machine."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_properties(0).total_memory
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_memory_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def process_age_s() -> float:
    """Seconds since this process started (Linux: /proc/self/stat's start time against
    /proc/uptime, to the clock tick); 0.0 where the system does not say."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def last_level_cache_bytes(device: str) -> int:
    """The largest cache between the cores and memory: the CPU's last level (from sysfs), a CUDA
    device's L2; CACHE_FALLBACK_BYTES where the machine does not say."""
    if device == "cuda":
        import torch

        return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0)
                   or CACHE_FALLBACK_BYTES)
    sizes = []
    for entry in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            text = open(entry).read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KMG")) * scale)
        except (OSError, ValueError):
            continue
    return max(sizes, default=CACHE_FALLBACK_BYTES)


CACHE_FALLBACK_BYTES = 32 << 20
