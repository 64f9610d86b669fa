"""The arithmetic count and the peak estimate, on a model and processors we can reason about."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vampire_detector.flops import count_flops, estimate_peak


class OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_a_convolution_costs_two_operations_per_multiply_add():
    # 8 output channels x 16 x 16 positions x (3 x 3 x 3) multiply-adds, two FLOPs each
    assert count_flops(OneConv(), image_size=16) == 2 * 8 * 16 * 16 * 27


def cpuinfo(flags: str, mhz: float = 2500.0, cores: int = 2) -> str:
    return "\n\n".join(f"processor\t: {i}\ncpu MHz\t\t: {mhz}\nflags\t\t: {flags}"
                       for i in range(cores))


@pytest.mark.parametrize(("flags", "fp32", "int8", "isa"), [
    ("sse sse2", 8, 16, "no VNNI"),
    ("avx avx2 fma", 32, 64, "no VNNI"),
    ("avx2 fma avx_vnni", 32, 128, "VNNI"),
    ("avx2 fma avx512f avx512_vnni", 64, 256, "VNNI"),
    ("avx2 fma avx512f avx512_vnni amx_int8", 64, 2048, "AMX"),
])
def test_the_peak_follows_the_vector_flags(flags, fp32, int8, isa):
    peak = estimate_peak(cpuinfo(flags))
    assert (peak.fp32_per_cycle, peak.int8_per_cycle, peak.int8_isa) == (fp32, int8, isa)
    assert peak.cores == 2 and peak.ghz == pytest.approx(2.5)
    assert peak.fp32_gflops == pytest.approx(2 * 2.5 * fp32)


def test_the_peak_of_this_machine_is_positive():
    peak = estimate_peak()
    assert peak.fp32_gflops > 0 and peak.int8_gops >= peak.fp32_gflops
