"""The detection service: exactly what the serving image runs (Chapter 6, shipped in 7-9).

    uvicorn --factory vampire_detector.service.app:create_app

One concept per module: ``settings`` (configuration from the environment), ``runtimes`` (which
model runs and how), ``uploads`` (turning untrusted bytes into a portrait), ``decoding`` (where
and how many uploads decode at once), ``body_limit`` (the request-size and stalled-body guard),
``auth`` (API keys and rate limits), ``batcher`` (grouping concurrent requests into one model
call), ``errors`` (the one error body), ``schemas`` (what the responses look like), ``metrics``
(what Prometheus scrapes, Chapter 10), ``app`` (the factory, its lifespan and its routes) and
``lambda_handler`` (the same app behind AWS Lambda, Chapter 8).

The package imports only the torch-free core of the library (images, portraits, predictor, the
ONNX Runtime detector, drift), so that an image with ONNX Runtime and no PyTorch can run it;
``make lint`` enforces that rule (see ``.importlinter``). The tools that measure and drive the
service live in :mod:`vampire_detector.harness`.
"""
