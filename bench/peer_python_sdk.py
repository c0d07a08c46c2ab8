#!/usr/bin/env python3
"""The peer: the same GetImageInfo calls through Alibaba Cloud's official
Python SDK (aliyun-python-sdk-core + aliyun-python-sdk-vod), for bench/run.

    pip install aliyun-python-sdk-core aliyun-python-sdk-vod
    ALIBABA_CLOUD_ACCESS_KEY_ID=... ALIBABA_CLOUD_ACCESS_KEY_SECRET=... \
        python3 bench/peer_python_sdk.py --endpoint http://127.0.0.1:PORT/ \
        --input ids.csv --concurrency 64 [--limit N]

One AcsClient (its connection pool sized to the concurrency, so connections
are kept alive as the Rust client's are), one GetImageInfoRequest per id,
sent by a ThreadPoolExecutor of --concurrency threads, the answer decoded
with json.loads, as the SDK's users do. The SDK is pointed at the local
simulator by the request's own endpoint (set_endpoint: no endpoint
resolution, no location-service lookup), plain http (set_protocol_type), and
the client's port; Format=JSON is asked for explicitly (set_accept_format):
without it the SDK sends no Format and the API, like the simulator, answers
XML.

Prints one JSON object on stdout: calls made, answers by outcome, the errors
by code, and the call phase's wall time and CPU time (user + system of this
process, from getrusage, around the thread pool only: imports and reading
the ids are left out; bench/run also takes the whole process's figure from
/usr/bin/time).
"""

import argparse
import concurrent.futures
import json
import os
import resource
import sys
import threading
import time
from urllib.parse import urlsplit

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkvod.request.v20170321.GetImageInfoRequest import GetImageInfoRequest


def read_ids(path, limit):
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            v = line.strip()
            if not v or v.lower() in ("imageid", "image_id"):
                continue
            ids.append(v)
            if limit and len(ids) >= limit:
                break
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT/ (loopback only)")
    ap.add_argument("--input", required=True, help="ids, one per line (a header line ImageId is skipped)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N ids")
    ap.add_argument("--region", default="cn-shanghai")
    a = ap.parse_args()

    u = urlsplit(a.endpoint)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1") or not u.port:
        sys.exit("peer_python_sdk: --endpoint must be http://127.0.0.1:PORT/ (the local simulator)")
    key = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not key or not secret:
        sys.exit("peer_python_sdk: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET")

    ids = read_ids(a.input, a.limit)
    client = AcsClient(
        key,
        secret,
        a.region,
        port=u.port,
        pool_size=a.concurrency,
        connect_timeout=5,
        timeout=10,
    )

    lock = threading.Lock()
    counts = {"found": 0, "missing": 0, "failed": 0}
    errors = {}

    def one(image_id):
        req = GetImageInfoRequest()
        req.set_ImageId(image_id)
        req.set_endpoint(u.hostname)
        req.set_protocol_type("http")
        req.set_accept_format("JSON")
        try:
            body = client.do_action_with_exception(req)
            info = json.loads(body)["ImageInfo"]
            outcome, code = "found", None
            _ = info.get("AuditStatus")
        except ServerException as e:
            code = e.get_error_code()
            outcome = "missing" if code == "NoSuchResource" else "failed"
        except ClientException as e:
            outcome, code = "failed", e.get_error_code()
        except Exception as e:  # noqa: BLE001 - a benchmark counts every failure
            outcome, code = "failed", type(e).__name__
        with lock:
            counts[outcome] += 1
            if code and outcome == "failed":
                errors[code] = errors.get(code, 0) + 1

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.concurrency) as pool:
        for _ in pool.map(one, ids):
            pass
    elapsed = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    json.dump(
        {
            "ids": len(ids),
            "concurrency": a.concurrency,
            "outcomes": counts,
            "errors": errors,
            "elapsed_s": round(elapsed, 3),
            "calls_per_s": round(len(ids) / elapsed, 1) if elapsed > 0 else None,
            "cpu_s": round(cpu, 3),
            "cpu_us_per_call": round(1e6 * cpu / max(1, len(ids)), 1),
            "sdk": {
                "core": __import__("aliyunsdkcore").__version__,
                "python": sys.version.split()[0],
            },
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0 if counts["failed"] == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
