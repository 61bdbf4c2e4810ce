"""Locust load test of a vcci API: the mixed scenario of `vcci loadtest --scenario mixed`.

Same routes, same weights, same data: analysts browsing (transaction lists and details,
supplier details, the summary and the monthly totals) and loading data (10-line batch
upserts, stateless 10-line calculations, 200-line CSV imports). Ids of existing lines and
suppliers are discovered from the target first, as `vcci loadtest` does, once per Locust
process (each worker of a distributed run discovers its own).

    VCCI_KEY=vcci_... locust -f deploy/locust/locustfile.py --host http://127.0.0.1:8080
    VCCI_KEY=vcci_... locust -f deploy/locust/locustfile.py --host http://127.0.0.1:8080 \
        --headless -u 50 -r 50 -t 60s
    # distributed: one master, any number of workers (each with VCCI_KEY set)
    locust -f deploy/locust/locustfile.py --master --host http://127.0.0.1:8080
    locust -f deploy/locust/locustfile.py --worker --master-host 127.0.0.1

The key needs the analyst role (the writes). One key drives all the load: start the server
with `--rate-limit 0`, or the per-key limit answers 429 (counted as failures here). Requests
carry an `X-Request-Id` of their own (`locust-<pid>-<n>`), so a failure can be found in the
server's log. Lines this test writes have ids `LC-<run>-<n>`, dated in the target's years.
"""

import itertools
import json
import os
import random
import time

import gevent.lock
from locust import HttpUser, constant, task

KEY = os.environ.get("VCCI_KEY", "")
NAICS = ["334111", "484121", "541511", "325211", "481111", "721110", "562111"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD"]
RUN = "LC-%x-%d" % (int(time.time()) & 0xFFFFFF, os.getpid())
_seq = itertools.count(1)
_request_ids = itertools.count(1)


class Known:
    """What the target holds, sampled once per process before the load (as vcci loadtest)."""

    lock = gevent.lock.Semaphore()
    ready = False
    transaction_ids = []
    supplier_ids = []
    years = []

    @classmethod
    def discover(cls, client, headers):
        with cls.lock:
            if cls.ready:
                return
            for path, field, into in (
                ("/api/v1/transactions?limit=1000&fields=transaction_id,date", "transaction_id", cls.transaction_ids),
                ("/api/v1/suppliers?limit=1000&fields=supplier_id", "supplier_id", cls.supplier_ids),
            ):
                with client.get(path, headers=headers, name="setup (discovery)", catch_response=True) as r:
                    if r.status_code == 401:
                        r.failure("the API key was refused (401): set VCCI_KEY")
                        continue
                    if r.status_code != 200:
                        r.failure("discovery answered %d" % r.status_code)
                        continue
                    data = r.json().get("data", [])
                    into.extend(x[field] for x in data if field in x)
                    if field == "transaction_id":
                        cls.years.extend(sorted({int(x["date"][:4]) for x in data if "date" in x}))
            cls.ready = True


def url_part(s):
    """An id as one URL path segment (what vcci loadtest's url_part does)."""
    out = []
    for b in s.encode():
        c = chr(b)
        out.append(c if c.isalnum() or c in "-_.~" else "%%%02X" % b)
    return "".join(out)


class Analyst(HttpUser):
    """One user of the mixed scenario: weights 25/15/15/20/10/7/6/2, no think time."""

    wait_time = constant(0)

    def on_start(self):
        Known.discover(self.client, self.headers())

    def headers(self, content_type=None):
        h = {"Authorization": "Bearer " + KEY, "X-Request-Id": "locust-%d-%d" % (os.getpid(), next(_request_ids))}
        if content_type:
            h["Content-Type"] = content_type
        return h

    def year(self):
        return random.choice(Known.years) if Known.years else 2024

    def spend_line(self, with_id):
        y = self.year()
        line = {
            "date": "%d-%02d-%02d" % (y, random.randint(1, 12), random.randint(1, 28)),
            "amount": round(random.random() * 10_000.0, 2) + 1.0,
            "currency": random.choice(CURRENCIES),
            "naics_code": random.choice(NAICS),
            "description": "load test",
        }
        if with_id:
            line["transaction_id"] = "%s-%d" % (RUN, next(_seq))
        if Known.supplier_ids and random.random() < 0.5:
            line["supplier_id"] = random.choice(Known.supplier_ids)
        return line

    @task(25)
    def list_transactions(self):
        if random.random() < 0.5:
            path = "/api/v1/transactions?limit=100"
        else:
            path = "/api/v1/transactions?limit=100&date_to=%d-%02d-28" % (self.year(), random.randint(1, 12))
        self.client.get(path, headers=self.headers(), name="list transactions")

    @task(15)
    def transaction_detail(self):
        if not Known.transaction_ids:
            return self.client.get("/api/v1/transactions?limit=10", headers=self.headers(), name="list transactions")
        tid = url_part(random.choice(Known.transaction_ids))
        self.client.get("/api/v1/transactions/" + tid, headers=self.headers(), name="transaction detail")

    @task(15)
    def supplier_detail(self):
        if not Known.supplier_ids:
            return self.client.get("/api/v1/suppliers?limit=50", headers=self.headers(), name="list suppliers")
        sid = url_part(random.choice(Known.supplier_ids))
        self.client.get("/api/v1/suppliers/" + sid, headers=self.headers(), name="supplier detail")

    @task(20)
    def summary(self):
        if random.random() < 0.5:
            path = "/api/v1/emissions/summary"
        else:
            y = self.year()
            path = "/api/v1/emissions/summary?date_from=%d-01-01&date_to=%d-12-31" % (y, y)
        self.client.get(path, headers=self.headers(), name="summary")

    @task(10)
    def by_month(self):
        self.client.get("/api/v1/emissions/by-month?year=%d" % self.year(), headers=self.headers(), name="by month")

    @task(7)
    def create_transactions(self):
        body = {"transactions": [self.spend_line(True) for _ in range(10)]}
        with self.client.post("/api/v1/transactions", data=json.dumps(body), headers=self.headers("application/json"),
                              name="create transactions (10)", catch_response=True) as r:
            # 200 with every line accepted; a line refused (a closed period) is a failure here.
            if r.status_code == 200 and r.json().get("rejected"):
                r.failure("lines rejected: %s" % r.json()["rejected"][:1])

    @task(6)
    def calculate(self):
        lines = []
        for i in range(10):
            if i % 4 == 3:
                lines.append({"date": "2024-05-01", "quantity": 100 + i, "unit": "tonne.km",
                              "activity_id": "freighting-goods/hgv-all-diesel/all-hgvs/average-laden/tonne.km"})
            else:
                lines.append(self.spend_line(False))
        with self.client.post("/api/v1/emissions/calculate", data=json.dumps({"lines": lines}),
                              headers=self.headers("application/json"), name="calculate (10 lines)",
                              catch_response=True) as r:
            if r.status_code == 200 and any("error" in x for x in r.json().get("results", [])):
                r.failure("a line was not calculated")

    @task(2)
    def csv_import(self):
        rows = ["transaction_id,date,amount,currency,naics_code,description"]
        for _ in range(200):
            line = self.spend_line(True)
            rows.append("%s,%s,%s,%s,%s,load test import" % (
                line["transaction_id"], line["date"], line["amount"], line["currency"], line["naics_code"]))
        self.client.post("/api/v1/imports", data="\n".join(rows) + "\n", headers=self.headers("text/csv"),
                         name="CSV import (200 lines)")
