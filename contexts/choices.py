from django.db import models


class HostState(models.TextChoices):
    ACTIVE = "active", "Active"
    MAINTENANCE = "maintenance", "Maintenance"
    OFFLINE = "offline", "Offline"


class AddressFamily(models.IntegerChoices):
    IPV4 = 4, "IPv4"
    IPV6 = 6, "IPv6"


class ServerState(models.TextChoices):
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    SUSPENDED = "suspended", "Suspended"
    FAILED = "failed", "Failed"
    DESTROYING = "destroying", "Destroying"
    DESTROYED = "destroyed", "Destroyed"


class OperationKind(models.TextChoices):
    CREATE = "create", "Create"
    START = "start", "Start"
    STOP = "stop", "Stop"
    RESTART = "restart", "Restart"
    REINSTALL = "reinstall", "Reinstall"
    SUSPEND = "suspend", "Suspend"
    UNSUSPEND = "unsuspend", "Unsuspend"
    CHANGE_PLAN = "change_plan", "Change plan"
    HOSTNAME = "hostname", "Change hostname"
    PASSWORD = "password", "Reset root password"
    SSH_KEYS = "ssh_keys", "Set SSH keys"
    DESTROY = "destroy", "Destroy"
    LIMITS = "limits", "Apply limits"


class TrafficState(models.TextChoices):
    WITHIN = "", "Within its allowance"
    THROTTLED = "throttled", "Throttled: over its monthly traffic"
    SUSPENDED = "suspended", "Suspended: over its monthly traffic"
    # Over, but staff let it run (or billing took the suspension over): nothing more this month.
    WAIVED = "waived", "Over its monthly traffic; let through this month"


class OperationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE_OPERATION_STATUSES = (OperationStatus.QUEUED, OperationStatus.RUNNING)
