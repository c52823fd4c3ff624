"""`manage.py bench`: every benchmark of issue 9 against the current database.

Runs against a database made by `generate_data` (tickets and KB articles): the pages and
APIs in process (p50/p95, throughput, query counts; `complaints.management.benchmarks`),
the agent queue over HTTP (gunicorn + ab), KB search (`kb.benchmarks`), signed intake
under 16 concurrent clients (gunicorn + bench/intake_load.py), the SLA sweep
(`sla.benchmarks`) and a store-register import (`channels.benchmarks`). The last three
write to the database (new tickets, fired warnings), so they run last. `--markdown
docs/benchmarks.md` rewrites the sections of that file marked with the label
(`<label>`, `<label>-kb`, `<label>-intake`, `<label>-sweep`, `<label>-import`).
"""

from pathlib import Path

from django.core.management.base import BaseCommand

from .. import benchmarks

OTHER_PARTS = ("KB search", "intake", "SLA sweep", "register import")


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
        parser.add_argument("--no-kb", action="store_true", help="Skip the KB search timings.")
        parser.add_argument("--kb-rounds", type=int, default=20, help="Searches per KB query.")
        parser.add_argument("--no-intake", action="store_true", help="Skip the intake load.")
        parser.add_argument("--intake-requests", type=int, default=3000)
        parser.add_argument("--intake-clients", type=int, default=16)
        parser.add_argument("--no-import", action="store_true", help="Skip the register import.")
        parser.add_argument("--import-rows", type=int, default=100_000)

    def handle(self, *args, **o):
        log = self.stdout.write
        # `--only` names page rows, or one of the other parts (then no page is timed).
        pages = not o["only"] or not any(o["only"] in part for part in OTHER_PARTS)
        results, http = [], []
        if pages:
            log(f"In-process ({o['samples']} samples, {o['warmup']} warm-up):")
            results = benchmarks.run_in_process(
                samples=o["samples"], warmup=o["warmup"], only=o["only"], log=log
            )
        if pages and not o["no_http"]:
            log("HTTP (gunicorn --workers 2, ab):")
            http = benchmarks.run_http(
                requests=o["http_requests"], concurrency=o["http_concurrency"], log=log
            )
        sections = {}
        if results or http:
            sections[o["label"]] = benchmarks.markdown(
                o["label"], results, http, samples=o["samples"], warmup=o["warmup"]
            )
        if self._wanted(o, "no_kb", "KB search"):
            from kb import benchmarks as kb_benchmarks

            if kb_benchmarks.bench_articles():
                log("KB search:")
                result = kb_benchmarks.measure(o["kb_rounds"], log=log)
                sections[f"{o['label']}-kb"] = kb_benchmarks.markdown(
                    o["label"], result, rounds=o["kb_rounds"]
                )
            else:
                log("KB search: skipped (no bench articles; generate_data --articles N)")
        if self._wanted(o, "no_intake", "intake"):
            log(f"Intake ({o['intake_clients']} clients):")
            result = benchmarks.run_intake(
                requests=o["intake_requests"], concurrency=o["intake_clients"], log=log
            )
            sections[f"{o['label']}-intake"] = benchmarks.intake_markdown(o["label"], result)
        if self._wanted(o, "no_sweep", "SLA sweep"):
            # The sweep fires real warnings (it changes the database).
            from sla import benchmarks as sla_benchmarks

            log("SLA sweep:")
            runs = sla_benchmarks.run_sweeps(few=o["sweep_few"], many=o["sweep_many"], log=log)
            if runs:
                sections[f"{o['label']}-sweep"] = sla_benchmarks.markdown(o["label"], runs)
        if self._wanted(o, "no_import", "register import"):
            # Last: it adds up to --import-rows tickets.
            from channels import benchmarks as channel_benchmarks

            log(f"Register import ({o['import_rows']:,} rows):")
            figures = channel_benchmarks.time_register_import(o["import_rows"], log=log)
            sections[f"{o['label']}-import"] = benchmarks.import_markdown(o["label"], figures)
        for label, text in sections.items():
            if o["markdown"]:
                benchmarks.write_section(Path(o["markdown"]), label, text)
                log(f"Written to {o['markdown']} (section {label}).")
            else:
                log(text)

    @staticmethod
    def _wanted(o, skip_flag: str, name: str) -> bool:
        return not o[skip_flag] and (not o["only"] or o["only"] in name)
