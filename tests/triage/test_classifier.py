"""The learned category suggestion: training, storing, predicting, accept/override record."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from complaints import services
from complaints.models import EventKind, Impact, Level, Status, Ticket
from tests.factories import leaf_category, make_ticket
from triage import classifier
from triage import services as triage_services
from triage.models import CategoryModel, CategorySuggestion, SuggestionOutcome
from triage.selectors import suggestion_stats

pytestmark = pytest.mark.django_db

LOGISTICS = [
    "快递三天都没有送到，物流信息也不更新",
    "发货太慢了，下单一周还没收到货",
    "快递员没打电话就把包裹放在门口丢了",
    "物流显示已签收但我根本没收到",
    "配送太慢，说好次日达结果等了五天",
    "包裹在运输途中被压坏了，快递不负责",
    "订单显示已发货，物流三天没有动静",
    "送货上门的师傅态度差，包裹还是破的",
    "快递一直显示派送中，就是不送到",
    "等了十天还没到货，物流太慢了",
    "快递放驿站也不通知，差点过期退回",
    "发货地址写错了，物流把货送到别的城市",
]
QUALITY = [
    "电脑用了两天屏幕就出现坏点，质量太差",
    "键盘有几个键按下去没反应，质量有问题",
    "笔记本电池续航只有一个小时，和宣传不符",
    "书的印刷质量很差，好多页字都看不清",
    "机器运行时噪音特别大，散热也不好",
    "屏幕漏光严重，质量检测没做好吧",
    "收到的手机有划痕，外壳质量很差",
    "新买的电脑系统经常蓝屏死机",
    "书的装订很差，翻几次就掉页了",
    "电池鼓包了，这质量让人不放心",
    "键盘打字卡顿，驱动装了也没用",
    "屏幕颜色发黄，质量和图片差太多",
]


@pytest.fixture
def resolved_history(reference_data, customer, channel, team_a):
    """Resolved tickets whose category agents chose: the training set."""
    now = timezone.now()
    for code, texts in (("logistics", LOGISTICS), ("quality", QUALITY)):
        for text in texts:
            ticket = make_ticket(
                customer=customer, channel=channel, team=team_a, subject=text[:10], body=text
            )
            Ticket.objects.filter(pk=ticket.pk).update(
                status=Status.CLOSED, category=leaf_category(code), resolved_at=now
            )  # fmt: skip


@pytest.fixture
def trained(resolved_history):
    return classifier.train_and_store()


def test_training_stores_the_model_in_the_database(trained):
    model = CategoryModel.objects.get()
    assert (model.samples, model.classes) == (24, 2)
    assert model.library.startswith("scikit-learn ")
    assert len(bytes(model.payload)) > 1000


def test_prediction_from_the_stored_model(trained):
    classifier._cache.clear()  # another web node: loads the model from its row
    prediction = classifier.predict(classifier.tokens_of("我的快递五天了还没送到"))
    assert prediction.category.code == "logistics"
    assert 0.5 < prediction.confidence <= 1
    prediction = classifier.predict(classifier.tokens_of("屏幕有坏点，质量太差了"))
    assert prediction.category.code == "quality"


def test_newest_model_wins_and_old_ones_are_pruned(resolved_history):
    for _ in range(5):
        classifier.train_and_store()
    assert CategoryModel.objects.count() == 3
    newest = CategoryModel.objects.order_by("-created_at", "-id").first()
    assert classifier.current_model()[0] == newest.pk


def test_not_enough_history_is_refused(reference_data):
    with pytest.raises(classifier.NotEnoughData):
        classifier.train_and_store()
    out = StringIO()
    with pytest.raises(Exception, match="Need at least"):
        call_command("triage_train", stdout=out)


def test_no_model_no_suggestion(login, agent, ticket):
    body = login(agent).get(f"/triage/tickets/{ticket.number}/panel/").content.decode()
    assert "suggested" not in body
    assert not CategorySuggestion.objects.exists()


def test_panel_shows_and_records_the_suggestion(login, agent, trained, ticket):
    response = login(agent).get(f"/triage/tickets/{ticket.number}/panel/")
    body = response.content.decode()
    suggestion = CategorySuggestion.objects.get(ticket=ticket)
    assert suggestion.category.code == "logistics"
    assert suggestion.shown_to == agent
    assert suggestion.outcome == SuggestionOutcome.SHOWN
    assert 'suggested: <b data-testid="triage-suggested-category">物流配送</b>' in body
    assert f"({suggestion.confidence:.2f})" in body
    # Shown again: the same record, not a new one.
    login(agent).get(f"/triage/tickets/{ticket.number}/panel/")
    assert CategorySuggestion.objects.count() == 1


def test_panel_query_count(login, agent, trained, ticket, django_assert_max_num_queries):
    client = login(agent)
    client.get(f"/triage/tickets/{ticket.number}/panel/")
    with django_assert_max_num_queries(12):
        client.get(f"/triage/tickets/{ticket.number}/panel/")


def test_one_click_accept_runs_the_classify_service(login, agent, trained, ticket):
    client = login(agent)
    client.get(f"/triage/tickets/{ticket.number}/panel/")
    response = client.post(
        f"/triage/tickets/{ticket.number}/accept/",
        {"amount_level": Level.LOW, "impact": Impact.INDIVIDUAL, "urgency": Level.MEDIUM},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.CLASSIFIED
    assert ticket.category.code == "logistics"
    event = ticket.events.get(kind=EventKind.CLASSIFIED)
    assert event.actor == agent
    suggestion = CategorySuggestion.objects.get(ticket=ticket)
    assert suggestion.outcome == SuggestionOutcome.ACCEPTED
    assert suggestion.decided_by == agent
    # Accepting twice is a conflict, not a second classification.
    again = client.post(
        f"/triage/tickets/{ticket.number}/accept/",
        {"amount_level": 1, "impact": 1, "urgency": 2},
        follow=True,
    )
    assert "already decided" in again.content.decode()


def test_accept_without_grades_changes_nothing(login, agent, trained, ticket):
    client = login(agent)
    client.get(f"/triage/tickets/{ticket.number}/panel/")
    response = client.post(f"/triage/tickets/{ticket.number}/accept/", {}, follow=True)
    assert "Grade the amount, impact and urgency" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.RECEIVED
    assert CategorySuggestion.objects.get().outcome == SuggestionOutcome.SHOWN


def test_accept_respects_the_classify_permission(login, agent, other_agent, trained, ticket):
    login(agent).get(f"/triage/tickets/{ticket.number}/panel/")
    response = login(other_agent).post(
        f"/triage/tickets/{ticket.number}/accept/",
        {"amount_level": 1, "impact": 1, "urgency": 2},
        follow=True,
    )
    assert "another team" in response.content.decode()
    assert CategorySuggestion.objects.get().outcome == SuggestionOutcome.SHOWN


def test_override_and_agreement_are_recorded(agent, trained, customer, channel, team_a):
    first = make_ticket(customer=customer, channel=channel, team=team_a, body="快递丢了没人管")
    second = make_ticket(customer=customer, channel=channel, team=team_a, body="快递太慢了")
    for ticket in (first, second):
        triage_services.suggestion_show(ticket=ticket, user=agent)
    grades = {"amount_level": 1, "impact": 1, "urgency": 2}
    services.ticket_classify(
        ticket=first.number, actor=agent, category=leaf_category("quality"), **grades
    )
    services.ticket_classify(
        ticket=second.number, actor=agent, category=leaf_category("logistics"), **grades
    )
    stats = suggestion_stats()  # counted live, before the nightly run records them
    assert (stats["overridden"], stats["agreed"], stats["pending"]) == (1, 1, 0)
    assert stats["override_rate"] == 0.5
    assert triage_services.suggestion_outcomes_refresh() == {"agreed": 1, "overridden": 1}
    overridden = CategorySuggestion.objects.get(ticket=first)
    assert overridden.outcome == SuggestionOutcome.OVERRIDDEN
    assert overridden.final_category.code == "quality"
    assert overridden.decided_by == agent  # who classified it
    assert CategorySuggestion.objects.get(ticket=second).outcome == SuggestionOutcome.AGREED
    assert suggestion_stats()["override_rate"] == 0.5
    assert triage_services.suggestion_outcomes_refresh() == {"agreed": 0, "overridden": 0}
    from triage.selectors import suggestion_stats_by_agent

    assert suggestion_stats_by_agent() == [
        {
            "name": "小李",
            "accepted": 0,
            "agreed": 1,
            "overridden": 1,
            "decided": 2,
            "accept_rate": 0.5,
        }
    ]


def test_classified_tickets_get_no_new_suggestion(agent, trained, ticket, drive_ticket):
    drive_ticket(ticket, agent, "classified")
    assert triage_services.suggestion_show(ticket=ticket, user=agent) is None


def test_report_page_and_admin_show_the_rates(login, agent, admin_user, trained, ticket):
    triage_services.suggestion_show(ticket=ticket, user=agent)
    body = login(agent).get("/triage/").content.decode()
    assert 'data-testid="triage-stats"' in body
    body = login(admin_user).get("/admin/triage/categorysuggestion/").content.decode()
    assert 'data-testid="triage-admin-rate"' in body


def test_train_command_and_schedule(resolved_history):
    from django_q.models import Schedule

    out = StringIO()
    call_command("triage_train", stdout=out)
    assert "on 24 resolved tickets, 2 categories" in out.getvalue()
    call_command("triage_schedule", stdout=out)
    call_command("triage_schedule", stdout=out)  # safe to repeat
    schedule = Schedule.objects.get(name="triage-train")
    assert (schedule.func, schedule.schedule_type) == ("triage.tasks.train", Schedule.DAILY)
    from triage.tasks import train

    assert train()["trained"] is True


def test_scheduled_training_without_history_is_not_an_error(reference_data):
    from triage.tasks import train

    result = train()
    assert result["trained"] is False
    assert "Need at least" in result["reason"]


def test_evaluate_command_on_a_small_labelled_file(tmp_path):
    rows = [f"物流配送\t{t}" for t in LOGISTICS] + [f"产品质量\t{t}" for t in QUALITY]
    path = tmp_path / "labelled.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = StringIO()
    call_command("triage_evaluate", file=path, seeds=2, stdout=out)
    output = out.getvalue()
    assert "Labelled set: 24 texts in 2 categories" in output
    assert "| jieba words | 6 |" in output
    assert "| labelling keywords masked | 6 |" in output


def test_evaluate_refuses_a_malformed_file(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "bad.tsv"
    path.write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(CommandError, match="expected 'label<TAB>text'"):
        call_command("triage_evaluate", file=path)
