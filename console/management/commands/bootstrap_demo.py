"""manage.py bootstrap_demo: the demo admin `make run` prints (embedded mode)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from audit.services import record
from console.roles import ADMIN, ROLES


class Command(BaseCommand):
    help = "Create the demo admin (password kept in var/demo-login.txt) and the role groups."

    def handle(self, *args, **options):
        login_file = settings.VAR_DIR / "demo-login.txt"
        User = get_user_model()
        with transaction.atomic():
            for name in ROLES:
                Group.objects.get_or_create(name=name)
            user = User.objects.filter(username="admin").first()
            if user is None or not login_file.exists():
                password = secrets.token_urlsafe(9)
                if user is None:
                    user = User.objects.create_user("admin", password=password)
                else:
                    user.set_password(password)
                    user.save()
                user.groups.add(Group.objects.get(name=ADMIN))
                login_file.write_text(password + "\n")
                login_file.chmod(0o600)
                record(
                    "operator.created",
                    actor="system:bootstrap_demo",
                    reason="demo admin",
                    payload={"username": "admin", "roles": [ADMIN]},
                )
        self.stdout.write(f"admin / {login_file.read_text().strip()}")
