from django.db import models


class TrafficPolicy(models.TextChoices):
    BILL = "bill", "Keep serving; bill the overage"
    THROTTLE = "throttle", "Throttle to a lower rate until the month ends"
    SUSPEND = "suspend", "Suspend the server until the month ends"


class BillingState(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"
