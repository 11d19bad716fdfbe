"""Errors the services raise. Their messages are meant for people: views show them as they are."""


class ServiceError(Exception):
    """A request the panel refuses; nothing was changed."""


class InvalidRequest(ServiceError):
    pass


class NotPermitted(ServiceError):
    pass


class NoCapacity(ServiceError):
    pass


class PoolExhausted(ServiceError):
    pass


class OperationInProgress(ServiceError):
    pass
