"""The documented paths of a build directory OUT, the same for whoever writes or reads it:

    OUT/snapshot.json          the flags, declared and resolved (schemas/snapshot.schema.json)
    OUT/audit.json             the history of flags/ (schemas/audit.schema.json)
    OUT/flagd/<environment>.json   flagd's flag definitions, one file per environment

`compiler.publish` writes them (as links into the current build); `core.snapshot` reads them.
"""

from __future__ import annotations

SNAPSHOT = "snapshot.json"
AUDIT = "audit.json"
FLAGD = "flagd"  # OUT/flagd/<environment>.json, one file per environment
DOCUMENTED = (SNAPSHOT, AUDIT, FLAGD)  # the paths readers use
