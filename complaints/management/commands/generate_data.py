"""`manage.py generate_data --tickets N`: benchmark-scale data from real customer texts.

Up to a million tickets (and ~8 timeline events, contacts, compensation, collaboration
tasks per ticket on average) in minutes on PostgreSQL; see
`complaints.management.bulk_data`. Refuses a database holding tickets it did not write
unless `--force`. Then `--articles` published knowledge-base articles from the same real
texts (`kb.benchmarks`; by default one per ticket, at most 100,000), and the SLA clocks
of the open backlog through the SLA engine's own backfill (`--clocks open`, the default:
what the queue countdowns and the sweep read; `all` adds the closed history, ~30 min at
1M tickets; `none`).
"""

import time

from django.core.management.base import BaseCommand, CommandError

from ..bulk_data import ForeignDataError, generate

MAX_DEFAULT_ARTICLES = 100_000


class Command(BaseCommand):
    help = "Generate N benchmark tickets with customers, timelines, compensation and tasks."

    def add_arguments(self, parser):
        parser.add_argument("--tickets", type=int, required=True, help="How many tickets.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--batch", type=int, default=50_000, help="Tickets per transaction (default 50000)."
        )
        parser.add_argument(
            "--articles",
            type=int,
            help="KB articles to write (default: as many as tickets, at most 100000).",
        )
        parser.add_argument(
            "--clocks",
            choices=["open", "all", "none"],
            default="open",
            help="SLA clocks for the open tickets (default), every ticket, or none.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Add to a database that already holds tickets not written by this command.",
        )

    def handle(self, *args, tickets: int, seed: int, batch: int, force: bool, **options):
        articles = options.get("articles")
        articles = min(tickets, MAX_DEFAULT_ARTICLES) if articles is None else articles
        if tickets < 1:
            raise CommandError("--tickets must be 1 or more.")
        if articles < 0:
            raise CommandError("--articles must be 0 or more.")
        if batch < 1:
            raise CommandError("--batch must be 1 or more.")
        try:
            generate(tickets=tickets, seed=seed, batch=batch, stdout=self.stdout, force=force)
        except ForeignDataError as exc:
            raise CommandError(str(exc)) from exc
        if articles:
            from kb import benchmarks as kb_benchmarks

            kb_benchmarks.load_articles(articles, seed=seed, log=self.stdout.write)
        clocks = options.get("clocks", "open")
        if clocks != "none":
            from sla.services import backfill_clocks

            started = time.monotonic()
            done = backfill_clocks(open_only=clocks == "open")
            self.stdout.write(
                f"SLA clocks for {done} {'open ' if clocks == 'open' else ''}tickets "
                f"in {time.monotonic() - started:.1f} s."
            )
