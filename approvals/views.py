"""Console pages of the approval queue (SPEC §4)."""

from django.shortcuts import render

from console.roles import role_required


@role_required("read")
def queue(request):
    return render(request, "approvals/queue.html", {"requests": []})
