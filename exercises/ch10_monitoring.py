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

FLOOR = 1e-4  # the smallest share a bin may have: an empty bin would make the logarithm infinite


def instrument(app: FastAPI, registry: CollectorRegistry) -> None:
    """Exercise 10.1: count and time every HTTP request that ``app`` answers.

    Register in ``registry`` (not the global default one) a counter ``gate_requests_total``
    labelled ``route``, ``method`` and ``status``, and a histogram
    ``gate_request_duration_seconds`` labelled ``route``. The route label is the route's
    *template* (``/travellers/{name}``, never ``/travellers/mina``); every path that matches no
    route shares the label ``"unmatched"``. Refusals (a 4xx from ``HTTPException``) are counted
    with their own status code.
    """
    # Hint: @app.middleware("http") wraps every request; request.scope["route"] is the matched
    # route once call_next has returned (it is missing when nothing matched).
    raise NotImplementedError(
        "Exercise 10.1 is not implemented yet: write it in exercises/ch10_monitoring.py")


def psi(reference: np.ndarray, live: np.ndarray, bins: int = 10) -> float:
    """Exercise 10.3: the Population Stability Index of ``live`` against ``reference``.

    Cut the values into ``bins`` bins at the quantiles of ``reference`` (so that each bin holds
    an equal share of it); values below the first edge or above the last join the end bins.
    With ``r`` and ``l`` the shares of ``reference`` and ``live`` in a bin, raised to at least
    ``FLOOR``, the PSI is the sum over the bins of ``(l - r) * ln(l / r)``. Raise ValueError
    when either sample is empty.
    """
    # Hint: np.quantile gives the edges, np.digitize the bin of every value.
    raise NotImplementedError(
        "Exercise 10.3 is not implemented yet: write it in exercises/ch10_monitoring.py")


def is_drifting(score: float) -> bool:
    """Exercise 10.3: should the alarm ring for this PSI?

    The score is your ``psi`` of the cheek colour (``vampire_detector.drift.cheek_saturation``)
    of 200 live portraits against 1000 clean training portraits. Choose the threshold so that a
    clean crowd never rings the alarm and a crowd wearing make-up always does.
    """
    # Hint: compute the score for a few clean and a few make-up windows before choosing.
    raise NotImplementedError(
        "Exercise 10.3 is not implemented yet: write it in exercises/ch10_monitoring.py")
