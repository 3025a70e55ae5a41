"""Keys, apart from the models: reading flag files and wording diagnostics need them, and
importing `core.model` (pydantic) takes 0.1 s a build can spend reading instead
(compiler.load's ReadAhead)."""

from __future__ import annotations

import re

# A flag key, or any name used as a path segment (the server's URLs, the export's files):
# core.model's NAME_PATTERN, compiled for fullmatch.
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")

# The evaluation context's key a rollout buckets by unless it names another (OpenFeature's).
TARGETING_KEY = "targetingKey"
