"""Database plumbing shared by the content and events stores: engines, tables, migrations."""
