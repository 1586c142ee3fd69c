// How the peer section's writes go out (docs/peer.md): share a tip, ask, report, edit a tip, flag,
// answer (forms) and endorse, accept, delete (buttons). One place locks the controls, says it is
// sending, sends through the worker, then does what a save does; on an error the problem's detail
// shows where the form says its status and the controls unlock, so the person can try again.

import { peerError } from "../lib/peer.js";

/**
 * Sends one write: disables `lock` (elements, or a live collection such as `form.elements`),
 * says `pending` in `status` (left as it is when empty), awaits `send()` and then `onSaved()`.
 * On an error from either, `status` shows the problem's detail (peerError) and `lock` is enabled
 * again. After a save `lock` is enabled again too, unless `keepLocked` (the control is done:
 * hidden, replaced or drawn again). True when saved.
 *
 * The controls come in by reference, never through the event's currentTarget: that is null once
 * the handler awaits.
 */
export async function sendWrite({ lock, status, pending = "", send, onSaved, keepLocked = false }) {
  const controls = [...lock];
  for (const el of controls) el.disabled = true;
  if (pending) status.textContent = pending;
  try {
    await send();
    await onSaved?.();
  } catch (err) {
    status.textContent = peerError(err);
    for (const el of controls) el.disabled = false;
    return false;
  }
  if (!keepLocked) for (const el of controls) el.disabled = false;
  return true;
}

/**
 * Makes submitting `form` send one write (sendWrite's options) and returns the form. With a
 * `field`, an empty (blank) field sends nothing: `status` says `empty` (when given) and the field
 * gets focus; otherwise `send` and `onSaved` get the field's trimmed text.
 */
export function submitForm(form, { field, empty = "", send, onSaved, ...write }) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = field ? field.value.trim() : "";
    if (field && !value) {
      if (empty) write.status.textContent = empty;
      field.focus();
      return;
    }
    await sendWrite({ ...write, send: () => send(value), onSaved: () => onSaved?.(value) });
  });
  return form;
}
