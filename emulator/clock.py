"""The emulator clock: real UTC time by default; tests may freeze it and move it forward.

Every platform timeline (instance creation, resilient retries, operation deadlines) reads this clock,
so a test can jump 30 minutes ahead instead of waiting for them.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, *, frozen_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen_at = frozen_at

    def now(self) -> datetime:
        frozen = self._frozen_at
        if frozen is not None:
            return frozen
        return datetime.now(UTC) + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self, at: datetime | None = None) -> datetime:
        """Stop the clock (at `at`, or at the current emulator time)."""
        with self._lock:
            self._frozen_at = (at or self.now()).astimezone(UTC)
            return self._frozen_at

    def unfreeze(self) -> None:
        """Let the clock run again from where it stands."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - datetime.now(UTC)
                self._frozen_at = None

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward, frozen or not; returns the new emulator time."""
        delta = timedelta(seconds=seconds)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += delta
            else:
                self._offset += delta
        return self.now()
