"""Peer learning (issue 12): tips from colleagues, questions answered by mentors, mentor pairings,
mentor recommendations and flags on aids, and the e-mail outbox that tells people about them.

`models` declares every resource once; `store` reads and writes them (server/db/peer_tables.py)
in the storage thread; `people` says who a caller is to peer learning (person key, mentor, app
owner, audience); `limits` is the per-person write rate. The features build on those.
"""
