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


class MilvusUnavailable(PolicyQAError):
    """The Milvus the settings name (POLICYQA_MILVUS_URI) cannot be reached or refused a request."""

    exit_code = 8


class BuildCancelled(PolicyQAError):
    """A build stopped on request (its cancel event was set); the live index is unchanged."""

    exit_code = 130


class UploadRefused(PolicyQAError):
    """An upload the index did not take: the (Chinese) message says why and that the index is unchanged."""

    exit_code = 7


class UploadBusy(UploadRefused):
    """Another upload into the same index is in progress."""


class UploadCancelled(BuildCancelled):
    """An upload cancelled by the user; the index and the uploads folder are unchanged."""


class InvalidQuestion(PolicyQAError):
    """An empty or oversized question."""

    exit_code = 2


class ModelMismatch(PolicyQAError):
    """A saved ranking or answerability model was written for other features or another format."""

    exit_code = 6


class LLMUnavailable(PolicyQAError):
    """The configured chat model endpoint failed or answered garbage."""


class LLMReplyCut(LLMUnavailable):
    """The chat model's reply hit the answer deadline or the length cap; what came before it
    may still be used (truncated, with this message as a notice). `reason`: 'deadline'|'length'."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class UnknownDocument(PolicyQAError):
    """A document filter that matches no indexed document."""

    exit_code = 2


class RatingRefused(PolicyQAError, ValueError):
    """A rating the store does not take (an oversized evaluator name or comment, ...)."""


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
