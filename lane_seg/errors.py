"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class LaneSegError(Exception):
    """A problem with the user's input (a path, a file, an argument), with a hint how to fix it."""
