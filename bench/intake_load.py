"""Load generator for the signed intake API: N contacts from C concurrent clients.

    python bench/intake_load.py --base http://127.0.0.1:8000 --key ck_… --secret … \\
        --requests 4000 --concurrency 16 [--retry-share 0.1]

Each client keeps one HTTP connection open (as a channel adapter would). A share of the
contacts is sent twice (a channel retrying after a timeout); the script then checks
that every acknowledged external_id maps to exactly one ticket number. Prints p50/p95
latency and contacts per second. Standard library only.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import random
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit


def sign(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retry-share", type=float, default=0.1)
    parser.add_argument("--customers", type=int, default=0, help="0: one new customer each")
    parser.add_argument("--subject", default="快递延误")
    parser.add_argument(
        "--text",
        default="的快递三天没到，客服电话也打不通。",
        help="complaint text after the order number (the default matches the demo "
        "routing rule 物流延误, so each intake is also classified and routed)",
    )
    args = parser.parse_args()

    url = urlsplit(args.base)
    local = threading.local()
    run = uuid.uuid4().hex[:8]
    # New phone numbers and orders on every run, so a rerun against the same database
    # opens tickets instead of joining the previous run's.
    base = random.SystemRandom().randrange(100) * 1_000_000
    rng = random.Random(7)  # noqa: S311 - load shape, not security
    plan = [f"load-{run}-{i}" for i in range(args.requests)]
    plan += rng.sample(plan, int(len(plan) * args.retry_share))  # retries
    rng.shuffle(plan)

    def connection():
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
        return local.conn

    def send(external_id: str):
        n = int(external_id.rsplit("-", 1)[1])
        customer = base + (n % args.customers if args.customers else n)
        body = json.dumps(
            {
                "external_id": external_id,
                "customer": {"name": "压测客户", "phone": f"139{customer:08d}"},
                "subject": args.subject,
                "body": f"订单 SO{run}{n} {args.text}",
                "order_no": f"SO{run}{n}",
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Closeloop-Key": args.key,
            "X-Closeloop-Timestamp": timestamp,
            "X-Closeloop-Signature": sign(args.secret, timestamp, body),
        }
        started = time.perf_counter()
        for attempt in range(3):
            try:
                conn = connection()
                conn.request("POST", "/api/v1/intake/", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException):
                local.conn = None
                if attempt == 2:
                    raise
        elapsed = time.perf_counter() - started
        number = json.loads(payload).get("number") if response.status in (200, 201) else None
        return external_id, response.status, elapsed, number

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        results = list(pool.map(send, plan))
    wall = time.perf_counter() - started

    latencies = sorted(r[2] for r in results)
    statuses: dict[int, int] = {}
    numbers: dict[str, set] = {}
    for external_id, status, _elapsed, number in results:
        statuses[status] = statuses.get(status, 0) + 1
        if number:
            numbers.setdefault(external_id, set()).add(number)
    split = [e for e, found in numbers.items() if len(found) != 1]
    acknowledged = sum(n for status, n in statuses.items() if status in (200, 201))
    print(
        json.dumps(
            {
                "requests": len(results),
                "distinct_contacts": len(set(plan)),
                "concurrency": args.concurrency,
                "statuses": statuses,
                "wall_seconds": round(wall, 2),
                "requests_per_second": round(len(results) / wall, 1),
                # Only 200/201 count: a redirect (HTTPS) or an error is no intake.
                "acknowledged_per_second": round(acknowledged / wall, 1),
                "p50_ms": round(statistics.median(latencies) * 1000, 1),
                "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
                "acknowledged_contacts": len(numbers),
                "contacts_with_two_tickets": len(split),
            },
            ensure_ascii=False,
        )
    )
    if acknowledged != len(results) or split:
        raise SystemExit("not every request was acknowledged exactly once (see statuses)")


if __name__ == "__main__":
    main()
