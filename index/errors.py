"""Exceptions whose message is meant to be shown to the user as is."""
import sys


class PolicyQAError(Exception):
    """Base class: the CLI prints the message, the app shows it in gr.Error."""

    exit_code = 1


class UnsupportedDocument(PolicyQAError):
    """A file that cannot be read as a policy document (format, encoding, content)."""


class IndexNotBuilt(PolicyQAError):
    """No index exists at the configured location."""

    exit_code = 3


class IndexMismatch(PolicyQAError):
    """The index on disk was built with another embedder or settings."""

    exit_code = 4


class IndexOutdated(IndexMismatch):
    """The index on disk was written in an older storage format; it is rebuilt from its sources."""


class IndexCorrupted(PolicyQAError):
    """The index on disk is unreadable or inconsistent; `damaged` names the documents whose
    shards could not be read, when that is all that is wrong."""

    exit_code = 5

    def __init__(self, message: str, damaged: tuple[str, ...] = ()):
        super().__init__(message)
        self.damaged = tuple(damaged)


class InvalidQuestion(PolicyQAError):
    """An empty or oversized question."""

    exit_code = 2


class ModelMismatch(PolicyQAError):
    """A saved ranking or answerability model was written for other features or another format."""

    exit_code = 6


class LLMUnavailable(PolicyQAError):
    """The configured chat model endpoint failed or answered garbage."""


def run_command(func, args, interrupted: str = "interrupted") -> int:
    """Run a CLI command: a PolicyQAError becomes one line on stderr and its exit code."""
    try:
        return func(args)
    except PolicyQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
