"""Chapter 14's wrong answers: TorchServe's handler, SageMaker's functions, Vertex AI's parser."""

from tests.grading.mistakes import Mistake

MISTAKES = [
    Mistake("one-model-call-per-image", "14.1", "one call",
            replace=(("            return softmax(self.model(batch).numpy())",
                      "            return np.concatenate([softmax(self.model(batch[i:i + 1])"
                      ".numpy()) for i in range(len(batch))])"),)),
    Mistake("raises-on-a-bad-request", "14.1", "raised",
            replace=(("            except ClientError as error:\n"
                      "                errors.append(error)",
                      "            except ClientError:\n                raise"),)),
    Mistake("no-status-for-a-bad-request", "14.1", "set a status",
            replace=(("                context.set_response_status(error.status, error.message, "
                      "index)", "                pass"),)),
    Mistake("drops-refused-answers", "14.1", "one answer per request",
            replace=(('            else:\n                out.append({"error": error.message})\n',
                      ""),)),
    Mistake("pixels-not-normalised", "14.1", "normalised pixels",
            replace=(("        return (to_batch(np.stack(images)) if images else None), errors",
                      "        return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)"
                      ".float() if images else None), errors"),)),
    Mistake("copies-the-library", "14.1", "write it yourself",
            append="from vampire_detector.torchserve_handler import VampireHandler  # noqa\n"),
    Mistake("loads-the-committed-weights", "14.2", "model_dir",
            replace=(('    return load_model("vampirenet", path=Path(model_dir) / "vampirenet.pt", '
                      'device=CPU)', '    return load_model("vampirenet", device=CPU)'),)),
    Mistake("crashes-on-unknown-content-type", "14.2", "not a ClientError",
            replace=(('        raise ClientError(415, f"send {\', \'.join(IMAGE_TYPES)} or '
                      'application/json, not "', '        raise ValueError(f"send {\', '
                      '\'.join(IMAGE_TYPES)} or application/json, not "'),)),
    Mistake("json-body-not-checked", "14.2", "not a ClientError",
            replace=(("    try:\n        payload = json.loads(request_body.decode(\"utf-8\"))\n"
                      "    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError "
                      "are ValueErrors\n        raise "
                      'ClientError(400, "the body is not JSON") from error\n    instances = '
                      'payload.get("instances") if isinstance(payload, dict) else None',
                      '    instances = json.loads(request_body)["instances"]'),)),
    Mistake("accept-ignored", "14.2", "must be refused",
            replace=(('    if not kinds & {"", "*/*", "application/json"}:',
                      "    if False:"),)),
    Mistake("autograd-on", "14.2", "without autograd",
            replace=(("    with torch.inference_mode():\n        return softmax(model(input_data)"
                      ".numpy())", "    return softmax(model(input_data).detach().numpy())"),)),
    Mistake("threshold-ignored", "14.3", "parameters.threshold",
            replace=(('    threshold = parameters.get("threshold", 0.5)', "    threshold = 0.5"),)),
    Mistake("strict-threshold", "14.3", "at or above",
            replace=(('"vampire" if p >= threshold else "human"',
                      '"vampire" if p > threshold else "human"'),)),
    Mistake("lenient-base64", "14.3", "must be refused",
            replace=(('        return base64.b64decode(value["b64"], validate=True)',
                      '        return base64.b64decode(value["b64"])'),)),
    Mistake("no-instance-limit", "14.3", "must be refused",
            replace=(("    if len(instances) > max_instances:", "    if False:"),)),
    Mistake("threshold-not-validated", "14.3", "must be refused",
            replace=(("    if isinstance(threshold, bool) or not isinstance(threshold, (int, "
                      "float)) \\\n            or not 0 < threshold < 1:", "    if False:"),)),
    Mistake("copies-the-library", "14.3", "write it yourself",
            append=("from vampire_detector.service.uploads import instances_of  # noqa\n\n\n"
                    "def parse_vertex_request(body, max_instances=16):\n"
                    "    return instances_of(body, max_instances), 0.5\n")),
]
