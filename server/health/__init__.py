"""Link and rule health (issue 13, docs/health.md): the links of published aids checked on a
schedule through the safe fetcher (links.py), rules and contexts no panel opening matched lately
and rules that can never match (rules.py), served to staff and app owners (service.py, api.py)
and in the console (server/console/health.py)."""
