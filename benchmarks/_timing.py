"""What the benchmark scripts share: a clock that waits for the device, and one line that
says where they ran. Imported by sibling scripts (benchmarks/ is not a package)."""

from __future__ import annotations

import platform
import time

import torch


def sync(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """``(seconds, fn())``, the device synchronized before and after."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def device_name(device) -> str:
    """The GPU's name, or the CPU's."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def describe(device) -> str:
    """The GPU's name, or the CPU's with torch's thread count."""
    if torch.device(device).type == "cuda":
        return device_name(device)
    return f"{torch.get_num_threads()} threads, {device_name(device)}"
