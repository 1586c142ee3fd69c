"""Sources: content that stays current (issue 13, docs/sources.md).

A `Source` (server/sources/models.py) is a feed, a website section or a git repository that
Inflow reads on a schedule; each item it has becomes an aid whose `origin` is the source's id.
`SourceItem` rows keep the provenance of each aid (where it came from, its validators and the
hash of what it was made of); `SyncRun` rows record each sync. Connectors read a source
(server/sources/connectors/), the sync engine writes the changes (server/sources/sync.py), the
service and the admin API manage sources (server/sources/service.py, api.py).

Kept free of imports on purpose: the tables module (server/db/source_tables.py) imports the
declarations while the content tables are being declared.
"""
