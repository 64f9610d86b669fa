"""The detection service: the FastAPI app that the border checkpoint calls (Chapter 6).

    uvicorn --factory vampire_detector.service.app:create_app

One concept per module: ``settings`` (configuration from the environment), ``runtimes`` (which
model runs and how), ``uploads`` (turning untrusted bytes into a portrait), ``batcher`` (grouping
concurrent requests into one model call), ``errors`` (the one error body), ``schemas`` (what the
responses look like) and ``app`` (the factory, its lifespan and its routes). ``naive`` is
Renfield's endpoint, kept as the benchmark's baseline.

Around the service, for measuring it (Chapters 6 and 11): ``launch`` (a real server on
loopback), ``hostile`` (bad uploads made on purpose), ``loadtest`` (servers under the same
load, taking turns), ``ledger`` (the performance ledger's steps), ``resources`` (memory and CPU
from ``/proc``), ``scrape`` (the service's own ``/metrics``) and ``soak`` (a long mixed run).
"""
