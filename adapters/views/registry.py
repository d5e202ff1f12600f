"""Every read model Lifeline maintains: its projection and its SQL view."""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from adapters.views.instances import SQLInstancesView
from adapters.views.logs import SQLLogsView
from adapters.views.plans import SQLPlansView
from adapters.views.sql import SQLView
from adapters.views.usage import SQLUsageView
from projections.base import ReadModel
from projections.instances import InstancesProjection
from projections.logs import LogsProjection
from projections.plans import PlansProjection
from projections.usage import UsageProjection

READ_MODELS: dict[str, tuple[type[ReadModel[SQLView]], type[SQLView]]] = {
    "instances": (InstancesProjection, SQLInstancesView),  # type: ignore[dict-item]
    "logs": (LogsProjection, SQLLogsView),  # type: ignore[dict-item]
    "plans": (PlansProjection, SQLPlansView),  # type: ignore[dict-item]
    "usage": (UsageProjection, SQLUsageView),  # type: ignore[dict-item]
}


class UnknownViewError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no view named {name!r}; known: {', '.join(READ_MODELS)}")


def build(
    name: str, datastore: SQLiteDatastore | PostgresDatastore, suffix: str = ""
) -> ReadModel[SQLView]:
    """The named read model over a view in this datastore (tables created if missing)."""
    try:
        model_class, view_class = READ_MODELS[name]
    except KeyError:
        raise UnknownViewError(name) from None
    view = view_class(datastore, suffix=suffix)
    view.create_table()
    return model_class(view)
