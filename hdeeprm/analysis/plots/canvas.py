"""The Figure class of every figure hdeeprm draws (imported only when one is built).

matplotlib reads some rcParams when a figure is drawn or saved rather than when it is built
(tick labels added at layout time, ``svg.fonttype``, ``pdf.fonttype``), so a figure carries
its style and puts it back in place around each draw and save: ``fig.savefig`` gives the same
file whoever calls it (``save_figure``, the HTML report, a user's script), and whatever the
caller's own rcParams are.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from hdeeprm.analysis.plots import style as s


class StyledFigure(Figure):
    """A Figure drawn and saved under its style (``hdeeprm_style``, set by ``new_figure``)."""

    hdeeprm_style: s.Style = s.DEFAULT

    def draw(self, renderer):
        with s.applied(self.hdeeprm_style):
            return super().draw(renderer)

    def savefig(self, *args, **kwargs):
        with s.applied(self.hdeeprm_style):
            return super().savefig(*args, **kwargs)
