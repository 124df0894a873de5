"""The one exception type for bad user input.

Every problem a user can fix (a wrong config value, a corrupt file, a missing dataset)
raises :class:`InputError` with a message that names the file, line or config key and
says what to do. Scripts let it propagate so Snakemake prints it and marks the job failed.
"""


class InputError(ValueError):
    """Bad input the user can fix; the message says where and how."""
