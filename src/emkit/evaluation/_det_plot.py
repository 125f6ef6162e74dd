"""DET plots: the ROCCH DET curves of several systems on normal-deviate (probit) axes
(:func:`emkit.evaluation.metrics.plot_det_curves`)."""

from __future__ import annotations

import numpy as np

from .._describe import describe

__all__ = ["plot_det_curves"]

_TICKS = np.array([1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6,
                   0.8, 0.9, 0.95, 0.98, 0.99])


def _tick_label(p: float) -> str:
    return f"{100 * p:g}"


def _thin_ticks(ticks, span: float, *, pad_fraction: float = 0.03, char_fraction: float = 0.02):
    """Ticks far enough apart (probit units) for their labels not to overlap on a 5.5 inch
    plot, top down: a gap of ``pad_fraction + char_fraction * mean label length`` of the span."""
    from scipy.special import ndtri

    kept = [ticks[-1]]
    for tick in ticks[-2::-1]:
        chars = (len(_tick_label(kept[-1])) + len(_tick_label(tick))) / 2
        if ndtri(kept[-1]) - ndtri(tick) >= (pad_fraction + char_fraction * chars) * span:
            kept.append(tick)
    return np.array(kept[::-1])


def plot_det_curves(systems, *, ax=None, title=None, limits=None):
    """Plot DET curves on normal-deviate (probit) axes; returns the matplotlib Figure.

    Each curve is the ROCCH DET curve (BOSARIS): the convex hull of the operating points, its
    segments straight in probability space, crossing the diagonal at the :func:`eer` of the
    legend (the step curve of :func:`det_curve` lies on or above it).  The legend is below the
    axes, where it hides no curve; tick labels are thinned so that neighbours never overlap.

    Parameters
    ----------
    systems : mapping of str to (target_scores, nontarget_scores)
        One curve per entry, labelled with its name and EER.
    ax : matplotlib Axes, optional
        Draw into it; by default into a new 5.5 x 5.5 inch Figure on an Agg canvas (no pyplot).
    title : str, optional
    limits : (float, float), optional
        Probability range of both axes; by default from the largest tick at or below the
        smallest non-zero rate (between 1e-4 and 0.01) up to 0.5.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy.special import ndtri

    from .metrics import eer, rocch

    if not hasattr(systems, "items") or len(systems) == 0:
        raise TypeError(f"systems must be a non-empty mapping of name to (target_scores, "
                        f"nontarget_scores); got {type(systems).__name__}")
    curves = {}
    for name, pair in systems.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"systems[{describe(name)}] must be a (target_scores, nontarget_scores) "
                            f"pair; got {type(pair).__name__}")
        curves[name] = (rocch(*pair), eer(*pair))
    if limits is None:
        rates = np.concatenate([np.r_[c.p_miss, c.p_fa] for c, _ in curves.values()])
        smallest = min(rates[rates > 0].min(initial=1.0), 0.01)
        lo = _TICKS[_TICKS <= smallest].max(initial=_TICKS[0])
        limits = (lo, 0.5)
    lo, hi = (float(v) for v in limits)
    if not 0 < lo < hi < 1:
        raise ValueError(f"limits must be (low, high) with 0 < low < high < 1; "
                         f"got {describe(limits)}")

    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 5.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    fig = ax.figure
    t = np.linspace(0.0, 1.0, 33)[None, :-1]
    for name, (curve, e) in curves.items():
        # hull segments are straight in probability space: sample them before the probit map
        p_fa = np.append((curve.p_fa[:-1, None] * (1 - t) + curve.p_fa[1:, None] * t).ravel(),
                         curve.p_fa[-1])
        p_miss = np.append((curve.p_miss[:-1, None] * (1 - t)
                            + curve.p_miss[1:, None] * t).ravel(), curve.p_miss[-1])
        # rates of 0 or 1 map to +-inf: clip far outside the axes, which cut the line at the frame
        x = ndtri(np.clip(p_fa, 1e-9, 1 - 1e-9))
        y = ndtri(np.clip(p_miss, 1e-9, 1 - 1e-9))
        ax.plot(x, y, label=f"{name} (EER {100 * e:.2f}%)")
    ends = ndtri(np.array([lo, hi]))
    ax.plot(ends, ends, color="0.6", linestyle=":", linewidth=1)
    ticks = _thin_ticks(_TICKS[(_TICKS >= lo) & (_TICKS <= hi)], ends[1] - ends[0])
    labels = [_tick_label(t) for t in ticks]
    ax.set_xticks(ndtri(ticks), labels)
    ax.set_yticks(ndtri(ticks), labels)
    ax.set_xlim(*ends)
    ax.set_ylim(*ends)
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.grid(True, color="0.85")
    ax.set_aspect("equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    return fig
