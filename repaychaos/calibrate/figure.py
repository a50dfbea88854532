"""The goodness-of-fit figure: the measured (Turnbull) staleness curve, the best fits and the
calibrated model's curve, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["write_figure"]


def write_figure(path: Path, t: np.ndarray, s_turnbull: np.ndarray, fits: Sequence[Any],
                 model: Sequence[tuple[float, float, float]], name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.step(t, s_turnbull, where="post", color="black", lw=2, label="measured (Turnbull, interval-censored)")
    grid = np.linspace(0, float(t.max()), 400)
    for fit, style in zip(fits, ("-", "--", ":")):
        ax.plot(grid, fit.survival(grid), style, lw=1.5, label=f"{fit.name} (AIC {fit.aic:.1f})")
    if model:
        ax.plot([g for g, _, _ in model], [m for _, m, _ in model], "o", color="#1f5fa8",
                label="calibrated model (repaychaos sim)")
    ax.set_xlabel("seconds since the ack")
    ax.set_ylabel("P(still stale)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{name}: calibration")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
