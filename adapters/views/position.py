"""A view that keeps only a position: for followers whose work lands outside the database
(the provisioner in the provider, the relay in NATS) but must still resume where they were."""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.views.sql import Cursor, SQLView


class PositionOnlyView(SQLView):
    schema: ClassVar = ()
    tables: ClassVar = ()

    def apply_op(self, c: Cursor, op: Any, position: int) -> None:
        """Nothing to write but the position, which `apply` records."""

    def record(self, position: int, application_name: str) -> None:
        self.apply([(position, ())], application_name)


class ProvisionerPosition(PositionOnlyView):
    name = "provisioner"


class RelayPosition(PositionOnlyView):
    name = "relay"
