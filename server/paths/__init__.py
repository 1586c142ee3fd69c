"""Learning paths (issue 14, docs/paths.md): curated paths of steps, their assignments to groups
and people, learners' enrolments and step completions.

models.py declares the resources; server/db/path_tables.py derives their tables; service.py
registers them with the generic store (server/peer/store.py) and holds the admin operations;
admin_api.py serves them. Progress, the LRS, the learner API and reports are R's modules here.
"""
