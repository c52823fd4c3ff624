"""factory_boy factories shared by every test folder."""

import factory
from django.contrib.auth import get_user_model

from channels.models import Channel, ChannelKind
from complaints import services
from complaints.models import Category, Customer, Department, StaffProfile


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"team-{n}")
    name = factory.Sequence(lambda n: f"客服{n}组")
    kind = Department.Kind.SERVICE


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-closeloop-1")


def make_staff(username: str, role: str, department: Department | None = None, **extra):
    user = UserFactory(username=username, **extra)
    user.save()
    StaffProfile.objects.update_or_create(
        user=user, defaults={"role": role, "department": department}
    )
    user.refresh_from_db()
    return user


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"channel-{n}")
    name = factory.Sequence(lambda n: f"渠道{n}")
    kind = ChannelKind.WECHAT


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"客户{n}")
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")


def make_ticket(
    *,
    customer=None,
    channel=None,
    team=None,
    subject="快递三天没到",
    body=None,
    order_no="",
    actor=None,
):
    return services.ticket_create(
        customer=customer or CustomerFactory(),
        channel=channel or ChannelFactory(code="wechat-main", kind=ChannelKind.WECHAT),
        subject=subject,
        body=body or "买的东西快递三天没有送到，客服电话也打不通，非常失望。",
        order_no=order_no,
        team=team,
        actor=actor,
    )


def leaf_category(code: str = "logistics") -> Category:
    return Category.objects.get(code=code)
