"""Provision a customer, login and server from the command line, for staff scripts."""

import json

from django.core.management.base import BaseCommand, CommandError

from contexts.exceptions import ServiceError
from contexts.models import Template
from customers import services
from customers.models import Plan


class Command(BaseCommand):
    help = "Create a customer with a login and a first server, as the 'Provision account' page does."

    def add_arguments(self, parser):
        parser.add_argument("--customer", required=True, help="the customer's name")
        parser.add_argument("--email", required=True, help="contact email, also the login")
        parser.add_argument("--plan", required=True, help="plan slug")
        parser.add_argument("--template", required=True, help="template name")
        parser.add_argument("--hostname", required=True, help="the server's hostname")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **opts):
        try:
            plan = Plan.objects.get(slug=opts["plan"])
        except Plan.DoesNotExist:
            known = ", ".join(Plan.objects.filter(is_active=True).values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown plan {opts['plan']!r}. Active plans: {known}.") from None
        try:
            template = Template.objects.get(name=opts["template"])
        except Template.DoesNotExist:
            known = ", ".join(Template.objects.filter(is_active=True).values_list("name", flat=True)) or "none"
            raise CommandError(f"Unknown template {opts['template']!r}. Active templates: {known}.") from None
        try:
            result = services.provision_account(
                name=opts["customer"],
                email=opts["email"],
                plan=plan,
                template=template,
                hostname=opts["hostname"],
                actor=None,
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        server = result.server
        out = {
            "customer": result.customer.name,
            "login": result.login.username,
            "password": result.password,
            "root_password": result.root_password,
            "server": server.name,
            "hostname": server.hostname,
            "host": server.host.name,
            "addresses": list(server.addresses.values_list("address", flat=True)),
            "state": server.state,
            "operation": str(result.operation.pk),
        }
        if opts["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(
            f"Provisioned {out['hostname']} as {out['server']} on host {out['host']}\n"
            f"  addresses: {', '.join(out['addresses']) or 'none'}\n"
            f"  login:     {out['login']}\n"
            f"  password:  {out['password']}   (shown once)\n"
            f"  root password of the server: {out['root_password']}   (shown once)\n"
            f"  state:     {out['state']} (operation {out['operation']})"
        )
