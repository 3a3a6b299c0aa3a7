"""Errors of the trainer. InvalidInputError ends the run with the invalid-input exit code."""


class TrainerError(RuntimeError):
    """A failure of the run that a retry may fix (I/O, storage, out of memory)."""


class InvalidInputError(TrainerError):
    """Input that no retry can fix: an unusable dataset, a model that cannot be loaded, a bad config."""


class NonFiniteLossError(TrainerError):
    """The loss became NaN or infinite; no weights are written from such a state."""
