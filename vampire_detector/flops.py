"""How much arithmetic the model needs, and a paper estimate of how much the processor can do.

Introduced in Chapter 15.

Throughput alone does not say whether a service is good: 300 portraits per second may be
excellent on one core and poor on sixty-four. Dividing the arithmetic done per second by the
processor's *peak* (cores x clock x operations per cycle) says how much of the hardware the
service really uses. The peak here is an estimate from ``/proc/cpuinfo``: its flags give the
vector width (AVX2: 8 FP32 lanes, AVX-512: 16) and the instructions (FMA: a multiply and an add
in one; VNNI: four 8-bit products summed into each 32-bit lane), but not how many vector units
each core has, nor whether a 512-bit instruction runs in one pass or as two 256-bit halves (as
on AMD's Zen 4), nor the clock under load. We assume two units and the clock that cpuinfo
reports, so the estimate is an upper bound: treat it as "at most", not as a specification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vampire_detector.portraits import IMAGE_SIZE

VECTOR_UNITS = 2  # FMA units per core: true of most recent server cores, not told by cpuinfo


def count_flops(model: nn.Module, image_size: int = IMAGE_SIZE) -> int:
    """Floating-point operations of one image's forward pass (a multiply-add counts as two)."""
    model = model.eval()
    example = torch.zeros(1, 3, image_size, image_size,
                          device=next(model.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return counter.get_total_flops()


@dataclass(frozen=True)
class PeakEstimate:
    """The processor's peak arithmetic, estimated from its flags, clock and core count."""

    cores: int
    ghz: float
    vector_isa: str  # the widest vector instructions found
    fp32_per_cycle: int  # FLOPs per cycle per core
    int8_per_cycle: int  # 8-bit operations per cycle per core
    int8_isa: str

    @property
    def fp32_gflops(self) -> float:
        return self.cores * self.ghz * self.fp32_per_cycle

    @property
    def int8_gops(self) -> float:
        return self.cores * self.ghz * self.int8_per_cycle


def estimate_peak(cpuinfo: str | None = None, cores: int | None = None) -> PeakEstimate:
    """Peak = cores x clock x operations per cycle, from ``/proc/cpuinfo`` (or its text).

    Per core and cycle: FP32 lanes (4 SSE, 8 AVX2, 16 AVX-512) x 2 for FMA x ``VECTOR_UNITS``.
    INT8 with VNNI: each 32-bit lane sums four 8-bit products, 8 operations, so 4x FP32; with
    AMX, a tile multiply does 1,024 8-bit multiply-adds per cycle. Without VNNI, 8-bit needs a
    three-instruction sequence, which we count as 2x FP32.
    """
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    mhz = [float(line.split(":", 1)[1]) for line in text.splitlines()
           if line.startswith("cpu MHz")]
    cores = cores or sum(line.startswith("processor") for line in text.splitlines()) or 1
    isa, lanes = (("AVX-512", 16) if "avx512f" in flags else ("AVX2", 8) if "avx2" in flags
                  else ("SSE", 4))
    fma = 2 if ("fma" in flags or "avx512f" in flags) else 1
    fp32 = lanes * fma * VECTOR_UNITS
    if "amx_int8" in flags:
        int8, int8_isa = 2048, "AMX"
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        int8, int8_isa = 4 * (lanes if "avx512_vnni" in flags else 8) * 2 * VECTOR_UNITS, "VNNI"
    else:
        int8, int8_isa = 2 * fp32, "no VNNI"
    return PeakEstimate(cores, max(mhz, default=2000.0) / 1000, isa, fp32, int8, int8_isa)
