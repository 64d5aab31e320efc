"""Per-frame labels of one video, as every reader returns them (docs/architecture.md): row k is
decoded frame k; VA NaN, EXPR -1 and AU -1 mark a missing label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emokd.constants import AU_MISSING, EXPR_MISSING, N_AU


@dataclass
class FrameLabels:
    """Per-frame labels: row k = label line k + 1 = crop 0000(k+1).jpg = decoded frame k."""

    va: np.ndarray      # (n, 2) float32, NaN = missing
    expr: np.ndarray    # (n,) int8, -1 = missing
    au: np.ndarray      # (n, 12) int8, -1 = missing

    @classmethod
    def empty(cls, n: int) -> FrameLabels:
        return cls(np.full((n, 2), np.nan, np.float32), np.full(n, EXPR_MISSING, np.int8),
                   np.full((n, N_AU), AU_MISSING, np.int8))

    @property
    def n(self) -> int:
        return len(self.expr)

    def resized(self, n: int) -> FrameLabels:
        """First `n` rows; rows beyond the current length are unlabelled."""
        out = FrameLabels.empty(n)
        m = min(n, self.n)
        out.va[:m], out.expr[:m], out.au[:m] = self.va[:m], self.expr[:m], self.au[:m]
        return out

    def counts(self) -> dict[str, int]:
        """Labelled frames per task (AU: frames with at least one AU labelled)."""
        return {"VA": int(np.isfinite(self.va).all(axis=1).sum()), "EXPR": int((self.expr >= 0).sum()),
                "AU": int((self.au >= 0).any(axis=1).sum())}

    def labelled_any(self) -> np.ndarray:
        """(n,) bool: frames with a label of any task."""
        return np.isfinite(self.va).all(axis=1) | (self.expr >= 0) | (self.au >= 0).any(axis=1)

    def clear(self, task: str) -> None:
        """Mark every frame's `task` label missing."""
        if task == "VA":
            self.va[:] = np.nan
        elif task == "EXPR":
            self.expr[:] = EXPR_MISSING
        else:
            self.au[:] = AU_MISSING

    def fill_from(self, other: FrameLabels) -> int:
        """Fill this object's missing values from `other` (same length); returns conflicting frames."""
        va_missing = ~np.isfinite(self.va)
        va_both = ~va_missing & np.isfinite(other.va)
        conflicts = (va_both & ~np.isclose(self.va, other.va, atol=1e-6)).any(axis=1)
        self.va[va_missing] = other.va[va_missing]
        e_both = (self.expr >= 0) & (other.expr >= 0)
        conflicts |= e_both & (self.expr != other.expr)
        self.expr = np.where(self.expr < 0, other.expr, self.expr).astype(np.int8)
        a_both = (self.au >= 0) & (other.au >= 0)
        conflicts |= (a_both & (self.au != other.au)).any(axis=1)
        self.au = np.where(self.au < 0, other.au, self.au).astype(np.int8)
        return int(conflicts.sum())
