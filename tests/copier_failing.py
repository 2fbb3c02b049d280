"""A copier (dockd.store.copier) whose sender fails after its fifth answer, as a bug or a
failing hash worker would make it: ``python -m tests.copier_failing`` with the copier's
arguments."""

from __future__ import annotations

import sys
from typing import Any

from dockd.store import copier

_real = copier.Copier._answer
_answered: list[int] = []


def _failing_answer(self: copier.Copier, *args: Any) -> Any:
    _answered.append(1)
    if len(_answered) > 5:
        raise RuntimeError("the hash worker failed")
    return _real(self, *args)


copier.Copier._answer = _failing_answer  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(copier.main())
