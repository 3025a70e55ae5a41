"""What changed between two versions of a flag's declaration: shared by the audit log
(one commit) and the plan (one pull request)."""

from __future__ import annotations

from compiler.yamlsource import Data

FieldChange = tuple[str, Data, Data]  # dotted path, before, after (None: absent)


def changed_fields(before: Data, after: Data) -> list[FieldChange]:
    """Declared values that differ, by dotted path (`environments.production.enabled`);
    lists such as depends_on and tags are single values, as people read them."""
    found: list[FieldChange] = []
    _differences(before, after, "", found)
    return found


def _differences(before: Data, after: Data, prefix: str, found: list[FieldChange]) -> None:
    # Descends only where the two differ: most changes touch one field of a small tree.
    if before == after:
        return
    if isinstance(before, dict) or isinstance(after, dict):
        old = before if isinstance(before, dict) else {}
        new = after if isinstance(after, dict) else {}
        for key in old.keys() | new.keys():
            _differences(old.get(key), new.get(key), f"{prefix}{key}.", found)
        if prefix and not (isinstance(before, dict) and isinstance(after, dict)):
            # A mapping replaced a value or the reverse: that value changed as well.
            old_leaf = None if isinstance(before, dict) else before
            new_leaf = None if isinstance(after, dict) else after
            if old_leaf != new_leaf:
                found.append((prefix[:-1], old_leaf, new_leaf))
    elif prefix:
        found.append((prefix[:-1], before, after))
