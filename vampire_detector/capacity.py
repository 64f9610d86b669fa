"""The capacity plan on paper: how many replicas a load needs, and what it costs a month.

Introduced in Chapter 15.

Pure arithmetic over measured inputs, so that every number in the plan can be traced to a
formula and a measurement. Prices are *list prices at a date*, for the reader to check against
the provider's current price page; they are inputs, never constants hidden in a formula.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

HOURS_PER_MONTH = 730  # 8,760 hours a year / 12, the convention of cloud price pages
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class Prices:
    """List prices (USD) assumed by the plan, with the date they were read."""

    as_of: str = "2026-11"
    lambda_gb_second: float = 0.0000166667  # x86, first pricing tier
    lambda_per_million_requests: float = 0.20
    api_per_million_requests: float = 1.00  # API Gateway HTTP API, Lambda's front door
    node_hour: float = 0.17  # an on-demand 4-vCPU, 8 GiB general-purpose node (c6i.xlarge class)
    node_cores: int = 4
    cluster_hour: float = 0.10  # a managed control plane (EKS), per cluster
    load_balancer_hour: float = 0.0225  # an application load balancer, before its traffic units


def sustainable_rate(points: Iterable[tuple[float, float]], p95_slo_ms: float) -> float:
    """The highest throughput measured with p95 latency within the SLO; 0 if none was.

    ``points`` are (requests per second, p95 ms) at increasing concurrency: past the knee,
    throughput stops rising and only the queue, and so the latency, grows.
    """
    return max((rate for rate, p95 in points if p95 <= p95_slo_ms), default=0.0)


def replicas_needed(peak_rps: float, per_replica_rps: float, utilisation: float = 0.6,
                    spares: int = 1) -> int:
    """ceil(peak / (per-replica rate x target utilisation)) + spares (N+1 for ``spares=1``).

    The target utilisation leaves headroom for bursts within a scrape interval and for the time
    the autoscaler needs to add a pod; the spare keeps the peak served while one replica is
    being replaced (a rolling update, a node failure).
    """
    if per_replica_rps <= 0 or not 0 < utilisation <= 1:
        raise ValueError("need a positive rate per replica and a utilisation in (0, 1]")
    return math.ceil(peak_rps / (per_replica_rps * utilisation)) + spares


def kubernetes_monthly(replicas: int, cores_per_replica: float, prices: Prices) -> float:
    """(nodes x node-hour price + control plane + load balancer) x 730 h, for a month.

    nodes = ceil(replicas x cores per replica / cores per node); a real cluster also reserves
    some of each node for the system, so this is a floor.
    """
    nodes = math.ceil(replicas * cores_per_replica / prices.node_cores)
    return (nodes * prices.node_hour + prices.cluster_hour
            + prices.load_balancer_hour) * HOURS_PER_MONTH


def lambda_monthly(mean_rps: float, duration_s: float, memory_gb: float,
                   prices: Prices) -> float:
    """requests x (duration x memory x GB-second price + request prices), for a month.

    The request prices are Lambda's own and its front door's (API Gateway). Lambda bills each
    request's duration (rounded up to the millisecond) times its memory, whether the function
    computes or waits; it runs one request per instance at a time, so micro-batching does not
    help it.
    """
    requests = mean_rps * SECONDS_PER_MONTH
    billed_s = math.ceil(duration_s * 1000) / 1000
    per_million = prices.lambda_per_million_requests + prices.api_per_million_requests
    return requests * (billed_s * memory_gb * prices.lambda_gb_second + per_million / 1e6)
