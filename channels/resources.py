"""django-import-export resources: the ticket list as a spreadsheet."""

from django.utils import timezone
from import_export import fields, resources


class TicketExportResource(resources.Resource):
    """What a supervisor takes into a spreadsheet; the phone is masked.

    Export only: pass a queryset with select_related (see selectors in the view).
    """

    number = fields.Field(attribute="number", column_name="工单号 Number")
    status = fields.Field(column_name="状态 Status")
    channel = fields.Field(attribute="channel__name", column_name="渠道 Channel")
    customer = fields.Field(attribute="customer__name", column_name="客户 Customer")
    phone = fields.Field(column_name="手机 Phone")
    subject = fields.Field(attribute="subject", column_name="标题 Subject")
    order_no = fields.Field(attribute="order_no", column_name="订单号 Order no.")
    category = fields.Field(column_name="分类 Category")
    priority = fields.Field(column_name="优先级 Priority")
    assignee = fields.Field(attribute="assignee__username", column_name="处理人 Assignee")
    created_at = fields.Field(column_name="受理时间 Received")
    due_at = fields.Field(column_name="下一期限 Next deadline")
    contact_count = fields.Field(attribute="contact_count", column_name="联系次数 Contacts")
    repeat_of = fields.Field(attribute="repeat_of__number", column_name="重复投诉 Repeat of")

    def dehydrate_status(self, ticket):
        return ticket.get_status_display()

    def dehydrate_phone(self, ticket):
        return ticket.customer.masked_phone

    def dehydrate_category(self, ticket):
        return ticket.category.full_name if ticket.category_id else ""

    def dehydrate_priority(self, ticket):
        return ticket.get_priority_display()

    def dehydrate_created_at(self, ticket):
        return timezone.localtime(ticket.created_at).strftime("%Y-%m-%d %H:%M")

    def dehydrate_due_at(self, ticket):
        return timezone.localtime(ticket.due_at).strftime("%Y-%m-%d %H:%M") if ticket.due_at else ""
