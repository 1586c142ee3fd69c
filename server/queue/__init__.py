"""The authoring queue (issue 13, docs/queue.md): gaps found in analytics, feedback, the peer
questions, the review dates and the link checks, turned into items an admin assigns to authors."""
