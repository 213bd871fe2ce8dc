"""The one error type of the learning library: a bad model or data spec, or a bad file."""

from __future__ import annotations


class LearningSpecError(ValueError):
    """A model/data spec or a data file is invalid.

    ``field`` is the dotted path of the offending key inside the spec (e.g. ``"n_classes"``),
    so the scenario loader can prefix it (``"data.n_classes"``); empty for file errors.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}" if field else message)
