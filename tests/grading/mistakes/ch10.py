"""Chapter 10's wrong answers: the request metrics, the alert rules and the drift alarm."""

from tests.grading.mistakes import Mistake

ALERTS = "ch10_alerts/alerts.yml"
ERROR_SHARE = ('sum(rate(vampire_http_requests_total{status=~"5.."}[5m]))\n'
               "            / sum(rate(vampire_http_requests_total[5m]))")

LIBRARY_MIDDLEWARE = '''
from vampire_detector.service.metrics import RequestMetrics, ServiceMetrics


def instrument(app, registry):
    app.add_middleware(RequestMetrics, metrics=ServiceMetrics(registry), known_paths=set())
'''

NO_FINALLY = '''
def instrument(app, registry):
    answered = Counter("gate_requests", "Requests answered at the gate",
                       ["route", "method", "status"], registry=registry)
    duration = Histogram("gate_request_duration_seconds", "Time to answer a request",
                         ["route"], buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),
                         registry=registry)

    @app.middleware("http")
    async def count_and_time(request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        matched = request.scope.get("route")
        template = matched.path if matched is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        answered.labels(template, method, str(response.status_code)).inc()
        duration.labels(template).observe(time.perf_counter() - started)
        return response
'''

COUNTED_FIRST = '''
def instrument(app, registry):
    answered = Counter("gate_requests", "Requests answered at the gate",
                       ["route", "method", "status"], registry=registry)
    duration = Histogram("gate_request_duration_seconds", "Time to answer a request",
                         ["route"], buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),
                         registry=registry)

    @app.middleware("http")
    async def count_and_time(request, call_next):
        started = time.perf_counter()
        matched = request.scope.get("route")
        template = matched.path if matched is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        answered.labels(template, method, "200").inc()
        try:
            return await call_next(request)
        finally:
            duration.labels(template).observe(time.perf_counter() - started)
'''

LIBRARY_DRIFT = '''
from vampire_detector.drift import Reference, is_drifting
from vampire_detector.drift import psi as library_psi


def psi(reference, live, bins=10):
    return library_psi(Reference.from_values(reference, bins), live)


def alarm(scores):
    return [is_drifting(score) for score in scores]
'''

MISTAKES = [
    # 10.1: the request metrics
    Mistake("copies-the-library", "10.1", "write it yourself", append=LIBRARY_MIDDLEWARE),
    Mistake("default-buckets", "10.1", "not a bucket edge",
            replace=(("buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),\n", ""),)),
    Mistake("milliseconds-observed", "10.1", "milliseconds",
            replace=(("observe(time.perf_counter() - started)",
                      "observe((time.perf_counter() - started) * 1000)"),)),
    Mistake("raw-paths-as-labels", "10.1", "raw paths",
            replace=(('template = matched.path if matched is not None else "unmatched"',
                      "template = request.url.path"),)),
    Mistake("crashes-not-counted", "10.1", "raised", append=NO_FINALLY),
    Mistake("counted-before-the-handler-ran", "10.1", "before the handler ran",
            append=COUNTED_FIRST),
    # 10.2: the alert rules
    Mistake("alert-without-for", "10.2", "blip", file=ALERTS,
            replace=(("        for: 5m\n", ""),)),
    Mistake("client-errors-count", "10.2", "4xx", file=ALERTS,
            replace=(('{status=~"5.."}', '{status=~"[45].."}'),)),
    Mistake("rate-over-one-minute", "10.2", "come and go", file=ALERTS,
            replace=((ERROR_SHARE, ERROR_SHARE.replace("[5m]", "[1m]")),)),
    Mistake("tail-as-p95", "10.2", "p99", file=ALERTS,
            replace=(("histogram_quantile(0.99,", "histogram_quantile(0.95,"),)),
    Mistake("alert-per-route", "10.2", "once for the service", file=ALERTS,
            replace=((ERROR_SHARE, ERROR_SHARE.replace("sum(rate", "sum by (route) (rate")),)),
    # 10.3: the drift score and its alarm
    Mistake("copies-the-library", "10.3", "write it yourself", append=LIBRARY_DRIFT),
    Mistake("bins-from-the-live-sample", "10.3", "quantiles of the live sample",
            replace=(("edges = np.quantile(reference, np.arange(1, bins) / bins)",
                      "edges = np.quantile(live, np.arange(1, bins) / bins)"),)),
    Mistake("log10", "10.3", "natural logarithm",
            replace=(("np.sum((now - was) * np.log(now / was))",
                      "np.sum((now - was) * np.log10(now / was))"),)),
    Mistake("empty-bins-unfloored", "10.3", "empty bin",
            replace=(("np.maximum(counts, 0.5) / values.size", "counts / values.size"),)),
    Mistake("alarm-at-the-threshold", "10.3", "exactly 0.25",
            replace=(("if score > RING_ABOVE:", "if score >= RING_ABOVE:"),)),
    Mistake("alarm-without-hysteresis", "10.3", "hysteresis",
            replace=(("        elif score < CLEAR_BELOW:\n", "        else:\n"),)),
]
