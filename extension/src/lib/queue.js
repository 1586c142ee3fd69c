// Queued events (feedback votes made while the server was unreachable), kept in storage.local and
// sent on the next successful contact. Pure list operations; the worker does the storage I/O.

export const QUEUE_MAX = 50;
export const QUEUE_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** Add an event; one vote per aid is kept (the latest wins); oldest dropped past `max`. */
export function enqueue(list, event, now, max = QUEUE_MAX) {
  const kept = (Array.isArray(list) ? list : []).filter(
    (e) => !(e.kind === event.kind && e.key === event.key),
  );
  kept.push({ ...event, queued_at: now });
  return kept.slice(-max);
}

/** Drop events too old to matter. */
export function prune(list, now, maxAge = QUEUE_MAX_AGE_MS) {
  return (Array.isArray(list) ? list : []).filter((e) => now - e.queued_at <= maxAge);
}

/** Remove the events that were sent (by identity of kind+key+queued_at). */
export function without(list, sent) {
  const gone = new Set(sent.map((e) => `${e.kind}|${e.key}|${e.queued_at}`));
  return (Array.isArray(list) ? list : []).filter(
    (e) => !gone.has(`${e.kind}|${e.key}|${e.queued_at}`),
  );
}

// ---- votes held for a comment ----------------------------------------------------------------
// A vote is held (storage.local "heldVotes") while the panel offers "What was missing?", so that
// vote and comment make one feedback row (the server counts rows: a vote row plus a comment row
// would count the vote twice). It is sent with the comment, on Skip, when the panel leaves the
// aid or closes, and in any case once VOTE_HOLD_MS have passed (checked at worker start-up and
// with every page update, so a vote survives a stopped worker or a closed panel).

export const VOTE_HOLD_MS = 5 * 60 * 1000;

/** Hold `vote` ({aid_id, helpful, ...}); one per aid, the latest wins; oldest dropped past `max`. */
export function holdVote(list, vote, now, max = QUEUE_MAX) {
  const kept = (Array.isArray(list) ? list : []).filter((v) => v.aid_id !== vote.aid_id);
  kept.push({ ...vote, held_at: now });
  return kept.slice(-max);
}

/** Take the held vote for `aidId` out of the list: `{vote: held or null, rest}`. */
export function takeVote(list, aidId) {
  const all = Array.isArray(list) ? list : [];
  return {
    vote: all.find((v) => v.aid_id === aidId) ?? null,
    rest: all.filter((v) => v.aid_id !== aidId),
  };
}

/** Split off the votes held for `holdMs` or longer (0: all of them): `{due, rest}`. */
export function dueVotes(list, now, holdMs = VOTE_HOLD_MS) {
  const all = Array.isArray(list) ? list : [];
  const isDue = (v) => holdMs <= 0 || !(now - v.held_at < holdMs); // a bad held_at is due too
  return { due: all.filter(isDue), rest: all.filter((v) => !isDue(v)) };
}
