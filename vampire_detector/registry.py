"""The model registry: ONNX versions of the detector in MLflow, with aliases that say which runs.

Introduced in Chapter 13.

Every candidate the release gate passes becomes a *version* of one registered model, with the
gate's measurements stored beside it (accuracy per population as metrics of its run; parity,
size and latency as tags of the version). Two *aliases* name the versions that matter:
``champion`` (what the gate serves) and ``challenger`` (what is being tried in the shadows and
on the canary). Promoting moves ``champion`` to the challenger's version; rolling back moves it
to the previous one. Nothing is copied or deleted: a version, once registered, stays.
``retire`` is the automatic rollback's part (``vampire_detector.rollback``): it removes the
``challenger`` alias and, if the challenger was already promoted, moves ``champion`` back.

The service never imports MLflow. Before it starts, ``python -m vampire_detector.registry
resolve`` (an init container in Kubernetes, a line in a start script elsewhere) asks the
registry which version an alias names, downloads that ONNX file, and writes the two variables
the service reads: ``VAMPIRE_MODEL_PATH`` and ``VAMPIRE_MODEL_VERSION``. A malformed or unknown
alias stops it with a message, before any pod could serve the wrong model.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "vampire-detector"
EXPERIMENT = "release-gate"
CHAMPION, CHALLENGER = "champion", "challenger"
ARTIFACT = "model.onnx"
PROMOTED_FROM, RETIRED = "promoted_from", "retired"  # version tags: promotion's trail, rollback's
# MLflow's own rule for alias names, checked here first so that the message says what is wrong.
ALIAS = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
RESERVED = re.compile(r"^(latest|v\d+|version\d+)$", re.IGNORECASE)
_QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
          "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


class RegistryError(RuntimeError):
    """The registry cannot give what was asked: the message says why and what to do."""


@dataclass(frozen=True)
class Resolved:
    alias: str
    version: str
    path: Path  # the downloaded ONNX file


def check_alias(alias: str) -> str:
    """``alias`` if MLflow accepts it as an alias name; a ``RegistryError`` that says why not."""
    if not isinstance(alias, str) or not ALIAS.match(alias):
        raise RegistryError(f"malformed alias {alias!r}: use letters, digits, '_' and '-' "
                            f"only (for example {CHAMPION!r} or {CHALLENGER!r})")
    if RESERVED.match(alias):
        raise RegistryError(f"{alias!r} is reserved by MLflow (it names versions, not "
                            "aliases): use an alias such as 'champion'")
    return alias


def connect(tracking_uri: str):
    """An ``MlflowClient`` for ``tracking_uri``: telemetry off, few retries, fast failures."""
    for name, value in _QUIET.items():
        os.environ.setdefault(name, value)
    import mlflow  # here, so that importing this module stays cheap

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def register(client, onnx_path: str | Path, *, metrics: Mapping[str, float],
             tags: Mapping[str, object] = (), name: str = MODEL_NAME) -> str:
    """Log ``onnx_path`` with ``metrics`` in a run and register it as a new version of ``name``;
    ``tags`` (parity, size, latency, ...) are set on the version. Returns the version number."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise RegistryError(f"cannot register {onnx_path}: no such file")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(EXPERIMENT))
    run = client.create_run(experiment_id, tags={"model": name})
    run_id = run.info.run_id
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))
    with tempfile.TemporaryDirectory() as folder:  # the artifact keeps one name in every run
        staged = Path(folder) / ARTIFACT
        shutil.copyfile(onnx_path, staged)
        client.log_artifact(run_id, str(staged), artifact_path="model")
    client.set_terminated(run_id)
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run_id,
        tags={key: str(value) for key, value in dict(tags).items()})
    return str(version.version)


def set_alias(client, alias: str, version: str, name: str = MODEL_NAME) -> None:
    """Point ``alias`` at ``version`` of ``name`` (moving it if it pointed elsewhere)."""
    client.set_registered_model_alias(name, check_alias(alias), str(version))


def version_of(client, alias: str, name: str = MODEL_NAME) -> str | None:
    """The version ``alias`` names, or ``None`` when no version carries it."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, check_alias(alias)).version)
    except MlflowException as error:
        if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def promote(client, name: str = MODEL_NAME) -> tuple[str | None, str]:
    """Move ``champion`` to the challenger's version; returns (previous champion, new one)."""
    challenger = version_of(client, CHALLENGER, name)
    if challenger is None:
        raise RegistryError(f"{name} has no {CHALLENGER!r} to promote: pass the gate first")
    previous = version_of(client, CHAMPION, name)
    set_alias(client, CHAMPION, challenger, name)
    if previous is not None and previous != challenger:  # where `retire` can roll back to
        client.set_model_version_tag(name, challenger, PROMOTED_FROM, previous)
    return previous, challenger


def rollback(client, version: str, name: str = MODEL_NAME) -> None:
    """Point ``champion`` back at ``version`` (the one it named before a promotion)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, str(version))
    except MlflowException as error:
        if error.error_code not in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise
        raise RegistryError(f"{name} has no version {version!r} to roll back to") from None
    set_alias(client, CHAMPION, version, name)


def retire(client, reason: str, name: str = MODEL_NAME) -> dict[str, str | None]:
    """Take the challenger out of the release: the automatic rollback's registry half.

    The ``challenger`` alias is removed (nothing resolves it any more) and its version is
    tagged ``retired`` with ``reason``. If it had already been promoted, ``champion`` goes back
    to the version it replaced (the ``promoted_from`` tag that ``promote`` left). Idempotent:
    with no challenger left, nothing changes. Returns the retired version (``None`` when there
    was none) and the champion's version afterwards.
    """
    challenger = version_of(client, CHALLENGER, name)
    if challenger is not None:
        champion = version_of(client, CHAMPION, name)
        if champion == challenger:
            previous = client.get_model_version(name, challenger).tags.get(PROMOTED_FROM)
            if previous:
                rollback(client, previous, name)
        client.set_model_version_tag(name, challenger, RETIRED, reason)
        client.delete_registered_model_alias(name, CHALLENGER)
    return {"retired": challenger, "champion": version_of(client, CHAMPION, name)}


def resolve(client, alias: str, folder: str | Path, name: str = MODEL_NAME) -> Resolved:
    """Download the ONNX file that ``alias`` names into ``folder``."""
    version = version_of(client, alias, name)
    if version is None:
        raise RegistryError(f"{name} has no version with the alias {alias!r}: nothing to "
                            "serve (register one and set the alias first)")
    import mlflow

    source = client.get_model_version(name, version).source
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=scratch, tracking_uri=client.tracking_uri))
        files = sorted(downloaded.rglob("*.onnx")) if downloaded.is_dir() else [downloaded]
        if not files:
            raise RegistryError(f"version {version} of {name} holds no .onnx file")
        path = folder / ARTIFACT
        shutil.copyfile(files[0], path)
    return Resolved(alias, version, path)


def service_environment(resolved: Resolved, name: str = MODEL_NAME) -> dict[str, str]:
    """The variables the service reads to load ``resolved`` and report its version."""
    return {"VAMPIRE_RUNTIME": "onnx", "VAMPIRE_MODEL_PATH": str(resolved.path),
            "VAMPIRE_MODEL_VERSION": f"{name}-v{resolved.version}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vampire_detector.registry",
        description="Resolve a registry alias to an ONNX file before the service starts.")
    parser.add_argument("command", choices=["resolve", "promote", "rollback"],
                        help="resolve: write the alias's file and service.env; promote: move "
                        "champion to the challenger; rollback: move champion to --version")
    parser.add_argument("--alias", default=CHAMPION)
    parser.add_argument("--out", type=Path, help="folder for model.onnx and service.env "
                        "(VAMPIRE_MODEL_PATH, VAMPIRE_MODEL_VERSION); resolve only")
    parser.add_argument("--version", help="the version champion returns to; rollback only")
    parser.add_argument("--name", default=MODEL_NAME)
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("set MLFLOW_TRACKING_URI or pass --tracking-uri")
    if args.command == "resolve" and args.out is None:
        parser.error("resolve needs --out, the folder the service will read")
    if args.command == "rollback" and not args.version:
        parser.error("rollback needs --version, the version champion returns to")
    try:
        client = connect(args.tracking_uri)
        if args.command == "promote":
            previous, new = promote(client, args.name)
            print(f"champion moved from version {previous} to {new}")
            return 0
        if args.command == "rollback":
            rollback(client, args.version, args.name)
            print(f"champion is version {args.version} again")
            return 0
        check_alias(args.alias)
        resolved = resolve(client, args.alias, args.out, args.name)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    environment = service_environment(resolved, args.name)
    (args.out / "service.env").write_text("".join(f"{k}={v}\n" for k, v in environment.items()))
    print(f"{args.alias} is version {resolved.version}: {resolved.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
