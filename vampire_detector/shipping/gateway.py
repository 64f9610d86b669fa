"""API Gateway events, built by hand, so a Lambda handler can be invoked on a laptop.

Introduced in Chapter 8.

Lambda hands a function behind API Gateway a JSON event: REST APIs send version 1, HTTP APIs
version 2, and binary bodies arrive base64-encoded. These builders make such events for images.
"""

from __future__ import annotations

import asyncio
import base64

BOUNDARY = "----grader-5b2e9f"


def multipart(data: bytes, field: str = "image", filename: str = "portrait.png",
              content_type: str = "image/png") -> bytes:
    """One file in a multipart/form-data body, as a browser or ``requests`` would send it."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def gateway_event(version: int, method: str, path: str, body: bytes | None = None) -> dict:
    """An API Gateway proxy event: REST API (``version=1``) or HTTP API (``version=2``)."""
    headers = {"host": "gate.example.com", "accept": "application/json",
               "x-forwarded-proto": "https", "x-forwarded-port": "443"}
    if body is not None:
        headers["content-type"] = f"multipart/form-data; boundary={BOUNDARY}"
    encoded = base64.b64encode(body).decode() if body is not None else None
    if version == 2:
        return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
                "headers": headers, "body": encoded, "isBase64Encoded": body is not None,
                "requestContext": {"http": {"method": method, "path": path,
                                            "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
                                   "stage": "$default", "requestId": "grader"}}
    return {"resource": "/{proxy+}", "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
            "requestContext": {"httpMethod": method, "path": f"/prod{path}", "stage": "prod",
                               "identity": {"sourceIp": "203.0.113.9"}, "requestId": "grader"},
            "body": encoded, "isBase64Encoded": body is not None}


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what a handler left running on its event loop (the batcher), then close it."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()
