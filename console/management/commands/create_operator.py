"""manage.py create_operator USERNAME --role ROLE [--token] [--password P] (SPEC §9)."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.services import record
from console import services
from console.roles import ROLES


class Command(BaseCommand):
    help = "Create (or update) an operator with one or more roles; optionally print an API token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role", action="append", required=True, choices=ROLES, help="repeat for several roles"
        )
        parser.add_argument("--token", action="store_true", help="issue and print an API token")
        parser.add_argument("--password", help="console password (default: random, printed)")
        parser.add_argument("--no-password", action="store_true", help="API-only operator")

    def handle(
        self, *args, username, role, token=False, password=None, no_password=False, **options
    ):
        User = get_user_model()
        username = username.strip()
        if not username:
            raise CommandError("username must not be empty")
        try:
            User.username_validator(username)
        except ValidationError as exc:
            raise CommandError("username refused: " + " ".join(exc.messages)) from exc
        if password:
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError("password refused: " + " ".join(exc.messages)) from exc
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            printed_password = None
            if created or password:
                if no_password:
                    user.set_unusable_password()
                else:
                    printed_password = password or secrets.token_urlsafe(12)
                    user.set_password(printed_password)
                user.save()
            for name in ROLES:
                Group.objects.get_or_create(name=name)
            user.groups.add(*Group.objects.filter(name__in=role))
            record(
                "operator.created" if created else "operator.updated",
                actor="system:create_operator",
                reason="created from the command line"
                if created
                else "roles updated from the command line",
                payload={"username": username, "roles": sorted(role)},
            )
        self.stdout.write(f"operator {username}: roles {', '.join(sorted(role))}")
        if printed_password and not password:
            self.stdout.write(f"password: {printed_password}")
        if token:
            _, full = services.issue_operator_token(user, by="system:create_operator")
            self.stdout.write(f"token: {full}")
