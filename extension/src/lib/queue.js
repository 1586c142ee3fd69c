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
