"""Chapter 8's wrong answers: the Lambda handler, the break-even arithmetic, the S3 batch."""

from tests.grading.mistakes import Mistake

LIFESPAN = ("    loop.run_until_complete(stack.enter_async_context("
            "app.router.lifespan_context(app)))\n")
PING = ('        if event.get("source") == "aws.events" and event.get("detail-type") == '
        '"Scheduled Event":\n            return {"warm": True}\n')
HEADER = ('        response.setdefault("headers", {})["x-cold-start"] = '
          'str(invocations == 1).lower()\n')
GB_SECONDS = "gb_seconds = math.ceil(duration_ms) / 1000 * memory_mb / 1024"
KEY = 'key = unquote_plus(record["s3"]["object"]["key"])'
READ = ('                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()\n'
        '                verdict = detect(data)\n')

MISTAKES = [
    Mistake("copies-the-library", "8.1", "write it yourself",
            append="from vampire_detector.service.lambda_handler import make_handler  # noqa\n"),
    Mistake("mangum-default-lifespan", "8.1", "loaded",
            replace=((LIFESPAN, ""), ('Mangum(app, lifespan="off")', "Mangum(app)"))),
    Mistake("lifespan-not-kept", "8.1", "later invocation",
            replace=(("    app.state.lambda_exit_stack = stack  # collected, it would shut the "
                      "batcher down\n", ""),)),
    Mistake("ping-reaches-mangum", "8.1", "warm-up ping", replace=((PING, ""),)),
    Mistake("ping-served-by-the-app", "8.1", "reached the app",
            replace=((PING, '        if event.get("source") == "aws.events":\n'
                            '            serve({"version": "2.0", "rawPath": "/health", '
                            '"rawQueryString": "", "headers": {}, "isBase64Encoded": False,\n'
                            '                   "requestContext": {"http": {"method": "GET", '
                            '"path": "/health", "sourceIp": "127.0.0.1"}}}, context)\n'
                            '            return {"warm": True}\n'),)),
    Mistake("status-codes-lost", "8.1", "status code",
            replace=((HEADER + "        return response\n",
                      '        return {"statusCode": 200, "headers": {**response["headers"], '
                      '"x-cold-start": str(invocations == 1).lower()},\n'
                      '                "body": response["body"], '
                      '"isBase64Encoded": response.get("isBase64Encoded", False)}\n'),)),
    Mistake("cold-start-every-time", "8.1", "no cold start",
            replace=((HEADER, '        response.setdefault("headers", {})["x-cold-start"] = '
                              '"true"\n'),)),
    Mistake("mb-milliseconds", "8.2", "GB-second",
            replace=((GB_SECONDS, "gb_seconds = math.ceil(duration_ms) * memory_mb"),)),
    Mistake("gigabyte-of-1000-mb", "8.2", "1024",
            replace=((GB_SECONDS,
                      "gb_seconds = math.ceil(duration_ms) / 1000 * memory_mb / 1000"),)),
    Mistake("no-rounding", "8.2", "round",
            replace=((GB_SECONDS, "gb_seconds = duration_ms / 1000 * memory_mb / 1024"),)),
    Mistake("rounds-to-nearest", "8.2", "round each request's duration up",
            replace=((GB_SECONDS, "gb_seconds = round(duration_ms) / 1000 * memory_mb / 1024"),)),
    Mistake("forgets-the-request-fee", "8.2", "fee",
            replace=(("per_request = gb_seconds * price_per_gb_second + price_per_million / "
                      "1_000_000", "per_request = gb_seconds * price_per_gb_second"),)),
    Mistake("key-not-decoded", "8.3", "decode each key",
            replace=((KEY, 'key = record["s3"]["object"]["key"]'),)),
    Mistake("key-unquoted-without-plus", "8.3", "decode each key",
            replace=((KEY, 'key = unquote(record["s3"]["object"]["key"])'),
                     ("    from urllib.parse import unquote_plus\n",
                      "    from urllib.parse import unquote\n"))),
    Mistake("scores-its-own-results", "8.3", "trigger it again",
            replace=(("            if key.startswith(results_prefix):\n"
                      "                report[\"skipped\"].append(key)\n"
                      "                continue\n", ""),)),
    Mistake("one-bad-portrait-fails-the-batch", "8.3", "raised instead of reporting",
            replace=(("            try:\n" + READ + "            except Exception as error:  "
                      "# one unreadable portrait, not a failed batch\n"
                      "                report[\"failed\"][key] = f\"{type(error).__name__}: "
                      "{error}\"\n                continue\n",
                      READ.replace("                ", "            ")),)),
    Mistake("catches-only-missing-keys", "8.3", "raised instead of reporting",
            replace=(("except Exception as error:  # one unreadable portrait",
                      "except s3.exceptions.NoSuchKey as error:  # one unreadable portrait"),)),
    Mistake("reads-before-checking-the-size", "8.3", "before reading",
            replace=(("            if record[\"s3\"][\"object\"].get(\"size\", 0) > max_bytes:\n"
                      "                report[\"failed\"][key] = f\"larger than {max_bytes} "
                      "bytes\"\n                continue\n", ""),
                     ("                verdict = detect(data)\n",
                      "                if len(data) > max_bytes:\n"
                      "                    raise ValueError(\"too large\")\n"
                      "                verdict = detect(data)\n"))),
    Mistake("timestamped-result-keys", "8.3", "new keys",
            replace=(('Key=f"{results_prefix}{key}.json"',
                      'Key=f"{results_prefix}{key}.{__import__(\'time\').time_ns()}.json"'),)),
]
