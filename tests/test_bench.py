import pytest

from vampire_detector.bench import Timing, markdown_table, time_calls, timing_row


class SteppingClock:
    """Each fake call of the workload takes the next scripted number of seconds."""

    def __init__(self, seconds):
        self.now, self.seconds, self.calls = 0.0, list(seconds), 0

    def __call__(self):
        return self.now

    def work(self):
        self.now += self.seconds[self.calls]
        self.calls += 1


def test_warmup_is_run_but_not_timed():
    clock = SteppingClock([1.0, 1.0] + [0.002] * 10)
    timing = time_calls(clock.work, warmup=2, iters=10, clock=clock)
    assert clock.calls == 12
    assert timing.samples_ms == pytest.approx((2.0,) * 10)


def test_percentiles_and_throughput():
    timing = Timing(tuple([1.0] * 98 + [20.0, 30.0]), items=8)
    assert timing.p50 == 1.0 and timing.p99 > 19
    assert timing.throughput == pytest.approx(8000 / timing.mean)


def test_rows_and_tables():
    slow, fast = Timing((4.0, 4.0)), Timing((1.0, 1.0))
    row = timing_row("fast", fast, baseline=slow)
    assert row["speed-up"] == "4.00x"
    table = markdown_table([timing_row("slow", slow), {**row}])
    assert table.splitlines()[0].startswith("|  | p50 ms")
    assert markdown_table([]) == ""


def test_iters_must_be_positive():
    with pytest.raises(ValueError):
        time_calls(lambda: None, iters=0)


def test_quick_mode_makes_fewer_calls(monkeypatch):
    monkeypatch.setenv("VAMPIRE_QUICK", "1")
    clock = SteppingClock([0.001] * 100)
    timing = time_calls(clock.work, warmup=5, iters=50, clock=clock)
    assert len(timing.samples_ms) == 10 and clock.calls == 12
