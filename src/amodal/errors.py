"""Errors that reach users as one line naming the file or argument and the fix."""


class AmodalError(Exception):
    """Base class of every error amodal raises on purpose.

    The CLI prints ``amodal: error: <message>`` and exits with status 2; the
    message names the offending file or argument and says what to do.
    """


class InputError(AmodalError, ValueError):
    """Bad user input: a missing or corrupt file, mismatched sizes, bad masks."""


class CheckpointError(AmodalError, ValueError):
    """A checkpoint folder with the wrong layout, missing or unexpected weights."""
