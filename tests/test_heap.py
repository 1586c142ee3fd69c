"""What start-up loaded stays out of the garbage collector's full collections while the app
runs (server/app.py `heap_ctx`: at 100k aids a full collection scanned 400k catalog objects in
a pause of 150-300 ms on the event loop), and is handed back when the app closes."""

from __future__ import annotations

import gc
from typing import Any

from server import keys
from server.app import create_app
from server.settings import Settings


async def test_the_loaded_library_is_frozen_while_the_app_runs(
    aiohttp_client: Any, settings: Settings
) -> None:
    before = gc.get_freeze_count()
    client = await aiohttp_client(create_app(settings))
    catalog = client.app[keys.LIBRARY].catalog
    assert catalog.aids  # the demo content is loaded
    assert gc.get_freeze_count() > before + len(catalog.aids)
    # a full collection no longer walks it: the objects it tracks exclude the catalog's
    tracked = {id(o) for o in gc.get_objects()}
    assert id(catalog.aids) not in tracked
    await client.close()
    assert gc.get_freeze_count() == 0
    assert id(catalog.aids) in {id(o) for o in gc.get_objects()}
