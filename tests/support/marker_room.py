"""A room that writes its lifecycle to a file, to watch a server in another process."""

from pathlib import Path
from typing import Any

from membrane_rtc import Room


class MarkerRoom(Room):
    """Appends ``init <name>`` and ``terminate <name>`` lines to ``options["marker"]``."""

    def on_init(self, options: Any) -> None:
        self.marker = Path(options["marker"])
        with self.marker.open("a") as out:
            out.write(f"init {self.name}\n")

    def on_terminate(self) -> None:
        with self.marker.open("a") as out:
            out.write(f"terminate {self.name}\n")
