"""Admin domain: apps, rules, contexts, aids with versions and workflow, import/export, audit.

`service.AdminService` holds every operation; the JSON API (`api.py`) and the console
(`server/console`) are thin layers over it. Writes go through `Library.write` only.
"""
