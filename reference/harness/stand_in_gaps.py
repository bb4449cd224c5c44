"""An attribute a stand-in lacks is verify's gap, not the user's bug: the error says so and what runs the real one."""

from __future__ import annotations


class StandInGap(AttributeError):
    """Raised by a stand-in (``accelerate.Accelerator``'s, a ``Trainer``'s) for an attribute it does not have."""

    def __init__(self, stand_in: str, name: str, real: str) -> None:
        super().__init__(f"verify's stand-in for {stand_in} has no {name!r}")
        self.hint = (f"this is a gap of verify's stand-in, not of your code: {real}; or check the function "
                     "another way (see docs/verify.md, Limits)")


def missing(stand_in: str, name: str, real: str):
    """What a stand-in's ``__getattr__`` raises: a plain ``AttributeError`` for dunders (probes such as
    ``copy``'s and ``inspect``'s expect one), else :class:`StandInGap`."""
    if name.startswith("__") and name.endswith("__"):
        return AttributeError(name)
    return StandInGap(stand_in, name, real)
