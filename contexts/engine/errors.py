"""Typed errors the engine raises, each with a message a staff member can act on."""


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidSpec(EngineError):
    """A spec that names, addresses or limits something the engine must not accept."""
