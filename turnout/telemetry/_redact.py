"""Secrets are removed from captured message content before any span leaves the process."""

from __future__ import annotations

import os
import re

REDACTED = "[REDACTED]"
_SECRET_VARIABLE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
_MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") are too common to be worth hiding

_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}"),  # Anthropic
    re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),  # Google
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"),  # GitHub
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"\bgsk_[A-Za-z0-9]{30,}"),  # Groq
    re.compile(r"(?i)\bBearer\s+[A-Za-z0-9\-._~+/]{8,}=*"),
]


def is_secret_name(name: str) -> bool:
    """Does a variable (or key) called `name` hold a secret? Its name mentions a key, token,
    secret or password, in any case."""
    return _SECRET_VARIABLE.search(name) is not None


def _environment_secrets() -> list[str]:
    values = {
        value
        for name, value in os.environ.items()
        if is_secret_name(name) and len(value) >= _MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with API keys, bearer tokens, private keys and secret env values replaced."""
    for value in _environment_secrets():
        text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text
