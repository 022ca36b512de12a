"""Errors raised by the interviewer."""

from __future__ import annotations


class InterviewError(Exception):
    """Root of every error the interviewer raises."""


class InterviewFinished(InterviewError):
    """Raised when an answer arrives for an interview that has already ended."""
