"""One exception base for the project, caught at the CLI boundary.

Library code raises these with a message that names the problem and the valid
choices; the CLI prints the message as one line and exits with ``exit_code``.
"""


class SynthRewardError(Exception):
    """Base of every error synth-reward reports to a person."""

    exit_code: int = 1


class UsageError(SynthRewardError):
    """Bad input from the user: unknown name, malformed file, bad flag value."""

    exit_code = 2
