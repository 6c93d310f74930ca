"""A synthetic home-goods store with known ground truth, for the demo and for tests.

Build a store and its history with :func:`simulate`, compare recommenders on
it with :func:`compare_policies` (the true expected revenue of every slate is
known), and write it to files or a server with :func:`write_files` /
:class:`HttpWriter`. See docs/simulator.md.
"""

from shelfwise.simulate.catalog import CatalogSpec, SimCatalog, generate_catalog, generate_store
from shelfwise.simulate.defects import (
    CtrDrop,
    Defects,
    IdentitySplit,
    IdFormat,
    SafariCartLoss,
    SupplierStockout,
)
from shelfwise.simulate.history import Simulation, simulate
from shelfwise.simulate.live import LiveTraffic, demo_spec, run_demo_flow
from shelfwise.simulate.online import (
    ArmReadout,
    compare_policies,
    sample_requests,
    slate_attributed_revenue,
    slate_expected_revenue,
    true_lift,
)
from shelfwise.simulate.output import HttpWriter, write_files
from shelfwise.simulate.policy import (
    HttpPolicy,
    OraclePolicy,
    Policy,
    RandomPolicy,
    RequestContext,
    Slate,
    SplitPolicy,
    popularity_policy,
)
from shelfwise.simulate.world import SimulationSpec, World, build_world

__all__ = [
    "ArmReadout",
    "CatalogSpec",
    "CtrDrop",
    "Defects",
    "HttpPolicy",
    "HttpWriter",
    "IdFormat",
    "IdentitySplit",
    "LiveTraffic",
    "OraclePolicy",
    "Policy",
    "RandomPolicy",
    "RequestContext",
    "SafariCartLoss",
    "SimCatalog",
    "Simulation",
    "SimulationSpec",
    "Slate",
    "SplitPolicy",
    "SupplierStockout",
    "World",
    "build_world",
    "compare_policies",
    "demo_spec",
    "generate_catalog",
    "generate_store",
    "popularity_policy",
    "run_demo_flow",
    "sample_requests",
    "simulate",
    "slate_attributed_revenue",
    "slate_expected_revenue",
    "true_lift",
    "write_files",
]
