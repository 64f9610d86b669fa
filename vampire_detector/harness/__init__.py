"""Tools that drive and measure the service from outside; never shipped (Chapters 6, 10-13).

``launch`` (a real server on loopback), ``naive`` (Renfield's endpoint, the baseline),
``hostile`` (bad uploads made on purpose), ``loadtest`` (servers under the same load, taking
turns), ``ledger`` (the performance ledger's steps), ``resources`` (memory and CPU from
``/proc``), ``scrape`` (the service's own ``/metrics``), ``soak`` (a long mixed run),
``prometheus`` (a real Prometheus server scraping the service) and ``siege`` (attacks on a
running server, and what they cost it).

Benchmarks, tests, the autograder and the chapters import this package; nothing in the library
does (``make lint`` enforces it).
"""
