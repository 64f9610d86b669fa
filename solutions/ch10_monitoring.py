"""Chapter 10 exercises: monitoring and the drift alarm.

Fill in the function bodies below, and the alert rules in ch10_alerts/alerts.yml, then grade
them with

    pytest autograder/test_ch10_monitoring.py
"""

from __future__ import annotations

import time

import numpy as np
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Histogram

SLO_SECONDS = 0.3  # the gate's promise: a traveller has an answer within 300 ms
# The methods HTTP defines (RFC 9110, and PATCH); any other token a client sends is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                     "PATCH"})
RING_ABOVE = 0.25  # a PSI above this: the crowd has moved, and the alarm rings
CLEAR_BELOW = 0.1  # a PSI below this: the crowd is back to normal, and the alarm stops


def instrument(app: FastAPI, registry: CollectorRegistry) -> None:
    """Exercise 10.1: count and time every HTTP request that ``app`` answers, for its SLO.

    The gate promises an answer within ``SLO_SECONDS``. Register in ``registry`` (not the
    global default one):

    - a counter ``gate_requests_total`` labelled ``route``, ``method`` and ``status``;
    - a histogram ``gate_request_duration_seconds`` labelled ``route`` alone, observed in
      seconds, with bucket edges of your choice around the SLO: 0.3 must be one of them, with
      at least two edges below it and two above.

    Every label takes few values, whatever the clients send:

    - ``route``: the template of the route that answered (``/travellers/{name}``, never
      ``/travellers/mina``); every path that matches no route is ``"unmatched"``;
    - ``method``: the request's method if it is one of ``METHODS``, else ``"other"``;
    - ``status``: the status code answered: a refusal raised with ``HTTPException`` keeps its
      own, and a request whose handler raised any other exception counts as ``"500"``.
    """
    # BEGIN SOLUTION
    # Hint: @app.middleware("http") wraps every request; request.scope["route"] is the matched
    # route once call_next has returned (it is missing when nothing matched), and call_next
    # raises whatever the handler raised.
    answered = Counter("gate_requests", "Requests answered at the gate",
                       ["route", "method", "status"], registry=registry)
    duration = Histogram("gate_request_duration_seconds", "Time to answer a request",
                         ["route"], buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),
                         registry=registry)

    @app.middleware("http")
    async def count_and_time(request: Request, call_next):
        started, status = time.perf_counter(), 500  # a handler that raises answers 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            matched = request.scope.get("route")  # set by routing, inside call_next
            template = matched.path if matched is not None else "unmatched"
            method = request.method if request.method in METHODS else "other"
            answered.labels(template, method, str(status)).inc()
            duration.labels(template).observe(time.perf_counter() - started)
    # END SOLUTION


def psi(reference: np.ndarray, live: np.ndarray, bins: int = 10) -> float:
    """Exercise 10.3: the Population Stability Index of ``live`` against ``reference``.

    Cut both samples into ``bins`` bins at the quantiles of ``reference``: the inner edges are
    ``np.quantile(reference, [1/bins, 2/bins, ..., (bins-1)/bins])``, a value equal to an edge
    joins the bin above it, and values beyond the first or last edge join the end bins. A bin
    that holds none of a sample counts as half a value: its share is ``0.5 / n``, with ``n``
    that sample's size, so that no logarithm is infinite. With ``r`` and ``l`` the shares of
    ``reference`` and ``live`` in a bin, the PSI is the sum over the bins of
    ``(l - r) * ln(l / r)``. Raise ValueError when either sample is empty.
    """
    # BEGIN SOLUTION
    # Hint: np.quantile gives the edges, np.digitize the bin of every value.
    reference, live = np.asarray(reference, np.float64), np.asarray(live, np.float64)
    if reference.size == 0 or live.size == 0:
        raise ValueError("PSI needs values in both the reference and the live sample")
    edges = np.quantile(reference, np.arange(1, bins) / bins)

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.digitize(values, edges), minlength=bins)
        return np.maximum(counts, 0.5) / values.size

    was, now = shares(reference), shares(live)
    return float(np.sum((now - was) * np.log(now / was)))
    # END SOLUTION


def alarm(scores: list[float]) -> list[bool]:
    """Exercise 10.3: is the drift alarm ringing after each window's score?

    ``scores`` are the PSIs of successive live windows, oldest first. The alarm starts quiet.
    It rings when a score is above ``RING_ABOVE``; once ringing, it stays on until a score is
    below ``CLEAR_BELOW``. A score between the two changes nothing, so a crowd that hovers
    around one threshold does not switch the alarm on and off window after window.
    """
    # BEGIN SOLUTION
    ringing, states = False, []
    for score in scores:
        if score > RING_ABOVE:
            ringing = True
        elif score < CLEAR_BELOW:
            ringing = False
        states.append(ringing)
    return states
    # END SOLUTION
