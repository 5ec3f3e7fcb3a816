"""The one exception class for mistakes a user can fix; the CLI turns it into exit status 2."""


class UserError(Exception):
    """Bad input from a user (option, file, config): reported as one line, exit status 2."""
