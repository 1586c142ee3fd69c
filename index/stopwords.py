"""English function words, for page signals (index/query.py).

Page text is noisy: a selected sentence ("why did they really reject their claim?") should spend
its query slots on "reject" and "claim". The index itself keeps Whoosh's short stop list, so a
search for a phrase with "why" in it still works. This is the common English list (the one NLTK and
Snowball ship, with contractions' parts and a few conversational fillers); it names no product or
domain.
"""

from __future__ import annotations

_WORDS = """
    a about above after again against all almost also although always am among an and another any
    anybody anyhow anyone anything anyway anywhere are aren around as at be became because become
    been before being below beside besides between beyond both but by can cannot could couldn did
    didn do does doesn doing don done down during each either else elsewhere enough etc even ever
    every everyone everything everywhere few for from further get gets getting got had hadn has
    hasn have haven having he her here hers herself him himself his how however i if in into is
    isn it its itself just least less let like ll may me might mine more most mostly much must
    mustn my myself neither never nevertheless no nobody none nor not nothing now nowhere of off
    often on once one only onto or other others otherwise ought our ours ourselves out over own
    per perhaps please quite rather re really s same shall shan she should shouldn since so some
    somebody somehow someone something sometimes somewhere still such t than that the their theirs
    them themselves then there therefore these they this those though through thus to together
    too toward towards under until up upon us ve very via was wasn we well were weren what
    whatever when whenever where whereas wherever whether which while who whoever whom whose why
    will with within without won would wouldn yes yet you your yours yourself yourselves
    oh ok okay hey hi hello thanks thank thing things stuff lot lots
"""
ENGLISH = frozenset(_WORDS.split())
