from django.http import HttpResponse


def status_page(request):
    return HttpResponse("status")
