"""The grader's probes: public functions that run in the sandbox, beside the submission.

Some of what a submission makes cannot cross to the grader as plain data: a torch module, a
FastAPI app, a tensor on some device. A probe builds the scene the test describes there, calls
the submission, and returns what it observed as plain data (numbers, strings, numpy arrays).
The expected values are never computed here: the tests compute them in the grader's own
process and compare. Probes import only the course library and the submission; they hold
nothing secret, since the submission's code shares their process.
"""
