"""The service's settings, read once from ``VAMPIRE_*`` environment variables.

Introduced in Chapter 6.

The same image runs on a laptop, in a container and on Kubernetes; only the environment
differs. Every knob that an operator may turn lives here, typed and validated at startup, so a
typo in a deployment fails loudly before the first traveller arrives rather than at 3 a.m.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vampire_detector.portraits import IMAGE_SIZE
from vampire_detector.service.uploads import MAX_BYTES, MAX_JPEG_SCANS, MAX_PIXELS

Runtime = Literal["eager", "torchscript", "onnx"]
Provider = Literal["auto", "cpu", "cuda"]  # runtimes.PROVIDERS says what each one means


class ServiceSettings(BaseSettings):
    """Settings of one service process; ``VAMPIRE_RUNTIME=eager`` sets ``runtime``, and so on."""

    model_config = SettingsConfigDict(env_prefix="VAMPIRE_", frozen=True, extra="ignore")

    runtime: Runtime = Field("onnx", description="eager PyTorch, TorchScript, or ONNX Runtime "
                             "(any .onnx file, INT8 ones included)")
    model_path: Path | None = Field(None, description="weights (eager), a TorchScript file or "
                                    "an ONNX file; unset: the committed VampireNet")
    arch: str = Field("vampirenet", description="the architecture of eager weights")
    model_version: str | None = Field(None, description="reported with every prediction; "
                                      "default: derived from the model file")
    image_size: int = Field(IMAGE_SIZE, ge=8, le=1024,
                            description="the model's input side, in pixels")
    provider: Provider = Field("auto", description="where ONNX Runtime "
                                                    "runs: auto (CUDA when this build has it "
                                                    "and it loads, else the CPU), cpu, or cuda "
                                                    "(refuse to start without it)")
    threads: int = Field(1, ge=1, le=64, description="intra-op threads of the one model call "
                         "that runs at a time")
    max_batch_size: int = Field(16, ge=1, le=1024, description="most images per model call")
    max_wait_ms: float = Field(2.0, ge=0, le=1000, description="how long a request may wait "
                               "for others to share its model call")
    max_queue: int = Field(256, ge=1, description="images waiting at most; more get 503")
    max_batch_files: int = Field(32, ge=1, le=1024, description="images per /predict/batch")
    max_upload_bytes: int = Field(MAX_BYTES, ge=1024, description="largest image file accepted")
    max_pixels: int = Field(MAX_PIXELS, ge=64, description="largest decoded image (bomb guard)")
    max_jpeg_scans: int = Field(MAX_JPEG_SCANS, ge=1, description="most scans in a "
                                "progressive JPEG; each one costs a pass over the whole image")
    max_decodes: int = Field(2, ge=1, le=64, description="large images decoded at once, on "
                             "worker threads: bounds the memory that decoding holds")
    max_decodes_waiting: int = Field(16, ge=0, description="large images waiting for a "
                                     "decoder; more get 503 with Retry-After")
    body_idle_timeout_s: float = Field(10.0, gt=0, description="longest pause between two "
                                       "parts of a request body before a 408")
    warmup_batches: int = Field(3, ge=0, description="model calls made before /ready says yes")
    api_keys_sha256: str = Field("", description="SHA-256 hex digests of the API keys that may "
                                 "call /predict, separated by commas. With neither this nor "
                                 "api_keys_file, anyone may call: for a laptop only; production "
                                 "must set keys")
    api_keys_file: Path | None = Field(None, description="a file of such digests, one per "
                                       "line: a mounted Kubernetes Secret")
    rate_limit_per_s: float = Field(0.0, ge=0, description="requests per second for each API "
                                    "key (each client address without keys); 0: no limit")
    rate_limit_burst: int = Field(20, ge=1, description="requests a caller may send at once "
                                  "before the rate limit applies")
    docs: bool = Field(True, description="serve /docs, /redoc and /openapi.json")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="serve /metrics on this "
                                     "port only, from a thread (unset: on the service's port)")
    metrics_host: str = Field("0.0.0.0", description="the address the metrics port listens on")
    access_log: bool = Field(True, description="one log line per request, on stderr (Chapter "
                             "10); off: the request ids are still given and echoed")
    log_format: Literal["json", "text"] = Field("json", description="the access log's lines: "
                                                "JSON objects, or key=value pairs for a "
                                                "terminal")
    shadow_model_path: Path | None = Field(None, description="an ONNX challenger that judges "
                                           "a copy of the traffic in the shadows: counted and "
                                           "logged, never answered (Chapter 10)")
    shadow_share: float = Field(1.0, ge=0, le=1, description="the share of requests copied to "
                                "the shadow challenger, chosen by their request id")

    @model_validator(mode="after")
    def _files_exist(self) -> ServiceSettings:
        if self.model_path is not None and not self.model_path.is_file():
            raise ValueError(f"VAMPIRE_MODEL_PATH={self.model_path} is not a file")
        if self.shadow_model_path is not None and not self.shadow_model_path.is_file():
            raise ValueError(f"VAMPIRE_SHADOW_MODEL_PATH={self.shadow_model_path} is not a file")
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"VAMPIRE_API_KEYS_FILE={self.api_keys_file} is not a file")
        return self
