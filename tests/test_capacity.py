"""The capacity plan's arithmetic, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest

from vampire_detector.capacity import (
    HOURS_PER_MONTH,
    Prices,
    kubernetes_monthly,
    lambda_monthly,
    replicas_needed,
    sustainable_rate,
)


def test_the_sustainable_rate_is_the_fastest_point_within_the_slo():
    points = [(100.0, 20.0), (300.0, 90.0), (350.0, 240.0), (360.0, 400.0)]
    assert sustainable_rate(points, 250.0) == 350.0
    assert sustainable_rate(points, 50.0) == 100.0
    assert sustainable_rate(points, 10.0) == 0.0


def test_replicas_leave_headroom_and_a_spare():
    assert replicas_needed(1000, 200, utilisation=0.5, spares=1) == 11  # 1000/100 + 1
    assert replicas_needed(1001, 200, utilisation=0.5, spares=1) == 12  # rounds up
    assert replicas_needed(100, 200, utilisation=1.0, spares=0) == 1
    with pytest.raises(ValueError):
        replicas_needed(100, 0)
    with pytest.raises(ValueError):
        replicas_needed(100, 10, utilisation=1.5)


def test_kubernetes_pays_for_whole_nodes_and_the_control_plane():
    prices = Prices(node_hour=1.0, node_cores=4, cluster_hour=0.5, load_balancer_hour=0.25)
    assert kubernetes_monthly(5, 1, prices) == pytest.approx((2 + 0.75) * HOURS_PER_MONTH)
    assert kubernetes_monthly(4, 1, prices) == pytest.approx((1 + 0.75) * HOURS_PER_MONTH)
    assert kubernetes_monthly(4, 2, prices) == pytest.approx((2 + 0.75) * HOURS_PER_MONTH)


def test_lambda_bills_duration_times_memory_plus_requests():
    prices = Prices(lambda_gb_second=1e-5, lambda_per_million_requests=0.2,
                    api_per_million_requests=1.0)
    one_per_second = 730 * 3600  # requests a month at 1 request per second
    cost = lambda_monthly(1.0, 0.0101, 2.0, prices)  # billed as 11 ms
    assert cost == pytest.approx(one_per_second * (0.011 * 2.0 * 1e-5 + 1.2e-6))
    assert lambda_monthly(2.0, 0.0101, 2.0, prices) == pytest.approx(2 * cost)
