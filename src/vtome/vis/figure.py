"""Writing a matplotlib figure: the one ending every plot in vtome shares."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: str | Path, **savefig) -> Path:
    """Lay out fig, write it to path (parents created, 120 dpi unless given) and close it. Returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **{"dpi": 120, **savefig})
    plt.close(fig)
    return path
