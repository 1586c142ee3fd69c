"""Link health's table (server/health/models.py), in the content database.

Derived from the resource's declaration (server/db/resource_table.py), on the content database's
`metadata` (server/db/content_tables.py imports this module at its end, like peer_tables), so
Alembic's revisions and tests/test_migrations.py see it. Revision 0006 creates it.

What the constraints and indexes are for:
- one row per (aid, link): the checker upserts by it, and a second row for the same link of the
  same aid would be counted twice in every report;
- the console and the API list by status (the broken ones first) and by aid (an aid's page, the
  aid list's "broken link" mark).

No foreign key to `aids`: the rows are derived (each check run rewrites them and deletes those of
links no longer in a published aid), and reports join them with the aids they name.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.db.content_tables import metadata
from server.db.resource_table import resource_table
from server.health.models import LinkCheck

link_checks = resource_table("health_link_checks", metadata, LinkCheck)
link_checks.append_constraint(
    sa.UniqueConstraint(link_checks.c.aid_id, link_checks.c.url, name="health_link_checks_once")
)
sa.Index("health_link_checks_status", link_checks.c.status, link_checks.c.aid_id)

# resource class -> its table (registered with the generic store, server/peer/store.py)
TABLES: dict[type, sa.Table] = {LinkCheck: link_checks}

__all__ = ["TABLES", "link_checks"]
