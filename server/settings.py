"""Settings from the environment (FLAGSERVE_*), read once; `flagserve` options set them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    directory: Path = Path("build")
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    threads: int = 8
    log_format: str = "text"
    api_keys: Path | None = None
    default_environment: str | None = None
    reload_interval: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(f"FLAGSERVE_{name}", "").strip()
            return value or None

        keys = get("API_KEYS")
        return cls(
            directory=Path(get("DIR") or "build"),
            bind=get("BIND") or DEFAULTS.bind,
            workers=int(get("WORKERS") or DEFAULTS.workers),
            threads=int(get("THREADS") or DEFAULTS.threads),
            log_format=get("LOG_FORMAT") or DEFAULTS.log_format,
            api_keys=Path(keys) if keys else None,
            default_environment=get("DEFAULT_ENVIRONMENT"),
            reload_interval=float(get("RELOAD_INTERVAL") or DEFAULTS.reload_interval),
        )


DEFAULTS = Settings()
