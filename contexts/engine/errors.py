"""Typed errors the engine raises, each with a message a staff member can act on."""


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidSpec(EngineError):
    """A spec that names, addresses or limits something the engine must not accept."""


class HostUnsupported(EngineError):
    """The host lacks a kernel feature or program the engine needs; the message says how to add it."""


class ContextNotFound(EngineError):
    pass


class ContextExists(EngineError):
    pass


class TemplateNotFound(EngineError):
    pass


class TemplateExists(EngineError):
    pass


class InvalidState(EngineError):
    """The context is not in a state where this can be done (start a running context, say)."""


class StartFailed(EngineError):
    pass
