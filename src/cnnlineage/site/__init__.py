"""The lineage explorer: a static web site of the zoo, its numbers, your runs and experiments.

``build_site(out=DIR, runs=[...], experiments=[...])`` writes a self-contained site (open
``DIR/index.html`` from disk, or serve it on 127.0.0.1 with ``make_server``). Jinja2 fills
the templates, plotly's Python package builds the interactive figures and ships the
``plotly.min.js`` that draws them, the analyzer supplies every number, and the lineage's
influence edges are data in :mod:`cnnlineage.site.lineage`.
"""

from .build import SiteReport, build_site
from .lineage import EDGES, Edge
from .serve import make_server

__all__ = ["EDGES", "Edge", "SiteReport", "build_site", "make_server"]
