"""The service's own account of a run, read from its ``/metrics`` page.

Introduced in Chapter 15.

A load generator sees latencies from outside; the service's counters say what happened
inside: how many requests it answered with which status, how large its batches were, how long
the model and the queue took. When the two disagree (the client counted more failures than the
server answered), the difference was lost on the way: refused connections, timeouts.
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample in a Prometheus text page: name -> [(labels, value), ...]."""
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].append((sample.labels, sample.value))
    return found


def total(found: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels start with the given values (``status="4"``)."""
    return sum(value for sample_labels, value in found.get(name, [])
               if all(sample_labels.get(k, "").startswith(v) for k, v in labels.items()))


def difference(after: dict, before: dict) -> dict:
    """Counters and histograms of ``after`` minus ``before``: what happened between scrapes."""
    found = {}
    for name, series in after.items():
        earlier = {tuple(sorted(labels.items())): value for labels, value in before.get(name, [])}
        found[name] = [(labels, value - earlier.get(tuple(sorted(labels.items())), 0.0))
                       for labels, value in series]
    return found


def mean(found: dict, histogram: str, **labels: str) -> float:
    """A histogram's mean: its ``_sum`` over its ``_count``."""
    count = total(found, f"{histogram}_count", **labels)
    return total(found, f"{histogram}_sum", **labels) / count if count else float("nan")


def service_report(text: str, baseline: str | None = None,
                   route: str = "/predict") -> dict[str, float]:
    """What the service counted on ``route`` (since the ``baseline`` scrape, if given):
    answers by status class, mean batch size, model call, queue wait and request time."""
    found = samples(text)
    if baseline is not None:
        found = difference(found, samples(baseline))
    answered = {f"{cls}xx": total(found, "vampire_http_requests_total", route=route,
                                  status=str(cls)) for cls in (2, 4, 5)}
    return {"requests": sum(answered.values()), **answered,
            "mean batch size": mean(found, "vampire_batch_size"),
            "mean model call ms": 1000 * mean(found, "vampire_model_inference_seconds"),
            "mean queue wait ms": 1000 * mean(found, "vampire_queue_wait_seconds"),
            "mean request ms": 1000 * mean(found, "vampire_http_request_duration_seconds",
                                           route=route)}
