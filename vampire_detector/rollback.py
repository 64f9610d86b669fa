"""The automatic rollback: a webhook that Alertmanager calls when the canary misbehaves.

Introduced in Chapter 13.

Prometheus watches the canary (``deploy/prometheus/alerts.yml``, group ``vampire-canary``);
Alertmanager sends the alerts labelled ``action: rollback`` to this receiver
(``deploy/alertmanager/alertmanager.yml``). For a *firing* alert it runs the rollback actions it
was given, in order, for instance:

- ``route_to_stable``: the canary's HTTPRoute sends every traveller to the champion again
  (weights 100/0, written to the overlay's weights file, with the ``kubectl patch`` that does
  the same to a live cluster);
- ``retire_challenger``: the registry's ``challenger`` alias is removed, and ``champion`` goes
  back to the version it replaced if the challenger had already been promoted.

Alertmanager repeats a notification while the alert fires and sends it again when the alert
resolves; the receiver acts once per firing episode (an alert's fingerprint and start time) and
ignores resolved alerts: a rollback is not undone because the alarm went quiet. A malformed
payload is answered 400 with the reason; a failing action 503, so that Alertmanager retries.
Only the standard library serves it (``http.server``): the receiver has one route and must
keep working when everything else is on fire.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROLLBACK_LABEL, ROLLBACK_VALUE = "action", "rollback"  # the label the canary's alerts carry
STATUSES = ("firing", "resolved")
MAX_BODY = 1 << 20  # Alertmanager's notifications are a few KB; refuse anything absurd


class PayloadError(ValueError):
    """The request is not an Alertmanager webhook notification: the message says why."""


@dataclass(frozen=True)
class Alert:
    """One alert of a notification, with what the receiver needs to decide."""

    name: str
    status: str
    labels: Mapping[str, str]
    fingerprint: str
    starts_at: str

    @property
    def episode(self) -> tuple[str, str, str]:
        """The same firing alert, however often it is repeated; a new start is a new episode."""
        return self.name, self.fingerprint, self.starts_at

    @property
    def wants_rollback(self) -> bool:
        return self.status == "firing" and self.labels.get(ROLLBACK_LABEL) == ROLLBACK_VALUE


def _text_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise PayloadError(f"{what} must be an object of strings")
    return value


def parse_notification(body: bytes) -> list[Alert]:
    """The alerts of an Alertmanager webhook notification (payload version 4)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError(f"the body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PayloadError("the body must be a JSON object (Alertmanager's notification)")
    if payload.get("version") != "4":
        raise PayloadError(f"unsupported payload version {payload.get('version')!r}: "
                           "this receiver reads Alertmanager's version \"4\"")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("'alerts' must be a list")
    parsed = []
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise PayloadError(f"alerts[{i}] must be an object")
        labels = _text_map(alert.get("labels"), f"alerts[{i}].labels")
        if not labels.get("alertname"):
            raise PayloadError(f"alerts[{i}] has no alertname label")
        if alert.get("status") not in STATUSES:
            raise PayloadError(f"alerts[{i}].status must be 'firing' or 'resolved', "
                               f"not {alert.get('status')!r}")
        starts_at = alert.get("startsAt")
        if not isinstance(starts_at, str) or not starts_at:
            raise PayloadError(f"alerts[{i}] has no startsAt time")
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            # Alertmanager always sends one; without it, the labels identify the alert
            fingerprint = json.dumps(labels, sort_keys=True)
        parsed.append(Alert(labels["alertname"], alert["status"], labels, fingerprint, starts_at))
    return parsed


Action = Callable[[Alert], str]  # performs one rollback step for an alert; says what it did


def route_to_stable(weights_file: str | Path, stable_service: str = "vampire-detector") -> Action:
    """An action that sends the whole route to ``stable_service``: the HTTPRoute patch in
    ``weights_file`` (the canary overlay's ``httproute-weights.yaml``) is rewritten with weights
    100 and 0, and the ``kubectl patch`` that does the same on a live cluster is returned."""
    weights_file = Path(weights_file)

    def act(alert: Alert) -> str:
        route = yaml.safe_load(weights_file.read_text())
        patch, before = [], []
        for r, rule in enumerate(route["spec"]["rules"]):
            for b, backend in enumerate(rule.get("backendRefs", [])):
                weight = 100 if backend["name"] == stable_service else 0
                before.append(str(backend.get("weight", 1)))
                if backend.get("weight") != weight:
                    backend["weight"] = weight
                    patch.append({"op": "replace", "value": weight,
                                  "path": f"/spec/rules/{r}/backendRefs/{b}/weight"})
        if not patch:
            return f"route already sends every traveller to {stable_service}"
        header = (f"# Rolled back by {alert.name} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: "
                  f"every traveller meets {stable_service}.\n")
        weights_file.write_text(header + yaml.safe_dump(route, sort_keys=False))
        meta = route["metadata"]
        command = (f"kubectl -n {meta.get('namespace', 'default')} patch httproute "
                   f"{meta['name']} --type=json -p '{json.dumps(patch)}'")
        return (f"route weights {'/'.join(before)} -> 100/0 in {weights_file.name}; "
                f"on the cluster: {command}")

    return act


def retire_challenger(client, name: str | None = None) -> Action:
    """An action that retires the registry's challenger (``registry.retire``), giving the
    alert's name as the reason."""
    from vampire_detector import registry

    def act(alert: Alert) -> str:
        done = registry.retire(client, f"{alert.name} at {alert.starts_at}",
                               name or registry.MODEL_NAME)
        if done["retired"] is None:
            return f"no challenger to retire; champion is version {done['champion']}"
        return (f"challenger version {done['retired']} retired; champion is version "
                f"{done['champion']}")

    return act


@dataclass
class RollbackReceiver:
    """Runs ``actions`` once for each new firing alert that asks for a rollback."""

    actions: Sequence[Action]
    log: list[dict] = field(default_factory=list)  # one entry per rollback performed
    _seen: set = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: bytes) -> tuple[int, dict]:
        """The HTTP status and JSON answer for one notification."""
        try:
            alerts = parse_notification(body)
        except PayloadError as error:
            return 400, {"error": str(error)}
        ignored = [{"alert": a.name, "why": "resolved" if a.status == "resolved"
                    else f"no {ROLLBACK_LABEL}={ROLLBACK_VALUE} label"}
                   for a in alerts if not a.wants_rollback]
        with self._lock:  # Alertmanager may send two groups at once: act once, in order
            wanted = [a for a in alerts if a.wants_rollback]
            fresh = [a for a in wanted if a.episode not in self._seen]
            ignored += [{"alert": a.name, "why": "already rolled back for this alert"}
                        for a in wanted if a.episode in self._seen]
            if not fresh:
                return 200, {"acted": [], "ignored": ignored}
            done = []
            for action in self.actions:
                try:
                    done.append(action(fresh[0]))
                except Exception as error:  # the rollback failed: say so, let Alertmanager retry
                    return 503, {"error": f"rollback action failed: {error!r}", "done": done}
            self._seen.update(a.episode for a in fresh)
            entry = {"alerts": [a.name for a in fresh], "labels": dict(fresh[0].labels),
                     "actions": done, "at": time.time()}
            self.log.append(entry)
        return 200, {"acted": [entry], "ignored": ignored}


def _handler(receiver: RollbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/-/ready":
                self._answer(200, {"status": "ready"})
            elif self.path == "/log":
                self._answer(200, receiver.log)
            else:
                self._answer(404, {"error": f"no {self.path} here: POST alerts to /alerts"})

        def do_POST(self) -> None:
            if self.path != "/alerts":
                self._answer(404, {"error": f"no {self.path} here: POST alerts to /alerts"})
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, {"error": "a Content-Length header is required"})
                return
            if not 0 <= length <= MAX_BODY:
                self._answer(413, {"error": f"the body must be at most {MAX_BODY} bytes"})
                return
            try:
                status, answer = receiver.handle(self.rfile.read(length))
            except Exception as error:  # never a bare 500 without a reason
                status, answer = 503, {"error": f"the receiver failed: {error!r}"}
            self._answer(status, answer)

        def log_message(self, format: str, *args: object) -> None:  # quiet: the log says it
            pass

    return Handler


def make_server(receiver: RollbackReceiver, host: str = "127.0.0.1",
                port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for ``receiver`` (``port=0``: any free port); call ``serve_forever``."""
    return ThreadingHTTPServer((host, port), _handler(receiver))


@contextlib.contextmanager
def serving(receiver: RollbackReceiver, host: str = "127.0.0.1",
            port: int = 0) -> Iterator[str]:
    """Serve ``receiver`` on a background thread; yield its base URL; always stop it."""
    server = make_server(receiver, host, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vampire_detector.rollback",
        description="Receive Alertmanager's rollback alerts and roll the canary back.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--weights", type=Path, help="the canary overlay's "
                        "httproute-weights.yaml, rewritten to 100/0 on a rollback")
    parser.add_argument("--tracking-uri", help="the MLflow registry whose challenger is retired")
    args = parser.parse_args(argv)
    actions: list[Action] = []
    if args.weights:
        actions.append(route_to_stable(args.weights))
    if args.tracking_uri:
        from vampire_detector import registry

        actions.append(retire_challenger(registry.connect(args.tracking_uri)))
    if not actions:
        parser.error("nothing to roll back: pass --weights, --tracking-uri or both")
    server = make_server(RollbackReceiver(actions), args.host, args.port)
    print(f"rollback receiver on http://{args.host}:{server.server_address[1]}/alerts")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
