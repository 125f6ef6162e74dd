"""Errors raised for files emkit refuses to read."""


class InvalidFileError(ValueError):
    """A file is not what it claims to be, is damaged, or exceeds a safety limit.

    The message names the file (and the dataset or utterance where relevant) but never echoes
    the file's contents.
    """
