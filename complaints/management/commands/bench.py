"""`manage.py bench`: p50/p95, throughput and query counts of the main pages and APIs.

Runs against the current database (generate it with `generate_data`); see
`complaints.management.benchmarks`. `--markdown docs/benchmarks.md` rewrites the
section of that file marked with the label.
"""

from pathlib import Path

from django.core.management.base import BaseCommand

from .. import benchmarks


class Command(BaseCommand):
    help = "Benchmark the queue, ticket page, API, approvals and task board on this database."

    def add_arguments(self, parser):
        parser.add_argument("--label", default="bench", help="Section name, e.g. 100k or 1M.")
        parser.add_argument("--samples", type=int, default=200, help="Timed requests per row.")
        parser.add_argument("--warmup", type=int, default=20, help="Untimed requests first.")
        parser.add_argument("--only", help="Only rows whose name contains this text.")
        parser.add_argument("--no-http", action="store_true", help="Skip the gunicorn + ab run.")
        parser.add_argument("--http-requests", type=int, default=1000)
        parser.add_argument(
            "--http-concurrency",
            type=int,
            nargs="+",
            default=[1, 8],
            help="ab concurrency levels (default 1 for latency, 8 for throughput).",
        )
        parser.add_argument("--markdown", help="Write the table into this file's section.")
        # SLA: one sweep with few and with many clocks due (sla/benchmarks.py).
        parser.add_argument("--no-sweep", action="store_true", help="Skip the SLA sweep runs.")
        parser.add_argument("--sweep-few", type=int, default=10, help="Clocks due, 'few' run.")
        parser.add_argument("--sweep-many", type=int, default=10_000, help="Clocks due, 'many'.")

    def handle(self, *args, **o):
        log = self.stdout.write
        log(f"In-process ({o['samples']} samples, {o['warmup']} warm-up):")
        results = benchmarks.run_in_process(
            samples=o["samples"], warmup=o["warmup"], only=o["only"], log=log
        )
        http = []
        if not o["no_http"]:
            log("HTTP (gunicorn --workers 2, ab):")
            http = benchmarks.run_http(
                requests=o["http_requests"], concurrency=o["http_concurrency"], log=log
            )
        sections = {}
        if results or http:
            sections[o["label"]] = benchmarks.markdown(
                o["label"], results, http, samples=o["samples"], warmup=o["warmup"]
            )
        if not o["no_sweep"] and (not o["only"] or o["only"] in "SLA sweep"):
            # Last: the sweep fires real warnings (it changes the database).
            from sla import benchmarks as sla_benchmarks

            log("SLA sweep:")
            runs = sla_benchmarks.run_sweeps(few=o["sweep_few"], many=o["sweep_many"], log=log)
            if runs:
                sections[f"{o['label']}-sweep"] = sla_benchmarks.markdown(o["label"], runs)
        for label, text in sections.items():
            if o["markdown"]:
                benchmarks.write_section(Path(o["markdown"]), label, text)
                log(f"Written to {o['markdown']} (section {label}).")
            else:
                log(text)
