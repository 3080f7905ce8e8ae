"""The one exception type LesionDetect raises for problems a user can act on."""


class LesionDetectError(Exception):
    """Bad input or a failed step, with a message that names the problem and what to do."""


class OutputExistsError(LesionDetectError):
    """The output folder already holds results and overwriting was not asked for."""


class CancelledError(LesionDetectError):
    """The run was cancelled; nothing was written."""
