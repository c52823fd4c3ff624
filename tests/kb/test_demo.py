from complaints.models import Ticket
from kb import selectors
from kb.demo import ARTICLES, SOPS, seed_kb_demo
from kb.models import Article, SopTemplate


def test_demo_knowledge_is_idempotent_and_searchable(ticket, admin_user, kb_reference):
    Ticket.objects.filter(pk=ticket.pk).update(search_tokens="")  # as bulk-built demo tickets
    lines = []
    seed_kb_demo(admin=admin_user, write=lines.append)
    seed_kb_demo(admin=admin_user, write=lines.append)
    assert Article.objects.count() == len(ARTICLES)
    assert SopTemplate.objects.count() == len(SOPS)
    assert "0 articles" in lines[-1]
    assert selectors.search_articles("配送 延误").hits[0].obj.title == "快递延误处理流程"
    assert selectors.search_tickets("快递").total == 1


def test_reindex_command(ticket, kb_reference):
    from io import StringIO

    from django.core.management import call_command

    Ticket.objects.filter(pk=ticket.pk).update(search_tokens="")
    out = StringIO()
    call_command("kb_reindex", "--missing-only", stdout=out)
    assert "Reindexed 1 tickets" in out.getvalue()
    assert selectors.search_tickets("快递").total == 1
