// The peer section's one way to send a write (src/panel/submit.js): share a tip, ask, report,
// edit a tip, flag, answer, endorse, accept and delete all lock, say "Sending…", send, and on an
// error show the problem's detail and unlock so the person can try again. Node has no DOM: the
// controls here are plain objects with the few properties the helper touches, and the form hands
// its submit event to listeners the way a browser does (currentTarget is null once they await).
// tests/browser/test_peer_panel.py drives the same forms in Chromium.
import assert from "node:assert/strict";
import { test } from "node:test";

import { sendWrite, submitForm } from "../src/panel/submit.js";

const control = (value = "") => ({
  value,
  disabled: false,
  focused: 0,
  focus() {
    this.focused++;
  },
});
const statusLine = () => ({ textContent: "" });

class Form {
  constructor() {
    this.listeners = [];
  }
  addEventListener(type, fn) {
    if (type === "submit") this.listeners.push(fn);
  }
  /** Submits as a browser does; resolves once the handlers have finished. */
  submit() {
    const ev = { currentTarget: this, defaultPrevented: false };
    ev.preventDefault = () => (ev.defaultPrevented = true);
    const runs = this.listeners.map((fn) => fn(ev));
    ev.currentTarget = null; // dispatch is over: what awaited no longer sees the target
    return Promise.all(runs).then(() => ev);
  }
}

/** A write that the test lets through or fails, and says what it was sent. */
function dispatcher() {
  const sent = [];
  let settle;
  return {
    sent,
    send: (value) => {
      sent.push(value);
      return new Promise((resolve, reject) => (settle = { resolve, reject }));
    },
    ok: () => settle.resolve({}),
    fail: (message) => settle.reject(Object.assign(new Error(message), { status: 409 })),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("a blank form sends nothing: it says so and the box gets the focus", async () => {
  const form = new Form();
  const text = control("   ");
  const btn = control();
  const status = statusLine();
  const d = dispatcher();
  submitForm(form, {
    field: text,
    empty: "Write something first.",
    lock: [btn, text],
    status,
    pending: "Sending…",
    send: d.send,
  });
  const ev = await form.submit();
  assert.equal(ev.defaultPrevented, true, "the page does not navigate");
  assert.deepEqual(d.sent, []);
  assert.equal(status.textContent, "Write something first.");
  assert.equal(text.focused, 1);
  assert.equal(btn.disabled, false);

  // An answer box says nothing (no `empty`): the status line stays as it was.
  const answer = new Form();
  const box = control("");
  const line = statusLine();
  line.textContent = "earlier";
  submitForm(answer, { field: box, lock: [btn], status: line, send: d.send });
  await answer.submit();
  assert.equal(line.textContent, "earlier");
  assert.equal(box.focused, 1);
});

test("while sending the controls are locked and the status says so; a save unlocks them", async () => {
  const form = new Form();
  const text = control("  Use Ctrl+S  ");
  const btn = control();
  const status = statusLine();
  const d = dispatcher();
  const saved = [];
  submitForm(form, {
    field: text,
    lock: [btn, text],
    status,
    pending: "Sending…",
    send: d.send,
    onSaved: (value) => {
      saved.push(value);
      text.value = "";
      status.textContent = "Thanks!";
    },
  });
  const done = form.submit();
  await tick();
  assert.deepEqual(d.sent, ["Use Ctrl+S"], "the trimmed text is sent");
  assert.equal(status.textContent, "Sending…");
  assert.deepEqual([btn.disabled, text.disabled], [true, true]);
  d.ok();
  await done;
  assert.deepEqual(saved, ["Use Ctrl+S"]);
  assert.equal(status.textContent, "Thanks!");
  assert.deepEqual([btn.disabled, text.disabled], [false, false], "ready for the next one");
});

test("a failed write shows the problem's detail and can be sent again", async () => {
  const form = new Form();
  const reason = control("outdated");
  const btn = control();
  const status = statusLine();
  const d = dispatcher();
  let reported = 0;
  // The report form: no pending text, and once reported its controls stay locked (it hides).
  submitForm(form, {
    lock: [reason, btn],
    status,
    send: d.send,
    onSaved: () => reported++,
    keepLocked: true,
  });
  let done = form.submit();
  await tick();
  assert.equal(status.textContent, "", "no pending text when none is given");
  d.fail("This tip was deleted by its author.");
  await done;
  assert.equal(status.textContent, "This tip was deleted by its author.");
  assert.deepEqual([reason.disabled, btn.disabled], [false, false], "it can be tried again");
  assert.equal(reported, 0);

  done = form.submit();
  await tick();
  d.ok();
  await done;
  assert.equal(reported, 1);
  assert.deepEqual([reason.disabled, btn.disabled], [true, true], "kept locked once done");
});

test("Accept that fails can be clicked again (the button comes by reference, not currentTarget)", async () => {
  // The incident: the Accept button re-enabled itself through ev.currentTarget after awaiting
  // the server; that is null by then, so a failed Accept threw and stayed disabled for good.
  const accept = control();
  const status = statusLine();
  const d = dispatcher();
  let reads = 0;
  const handlers = [];
  const button = {
    ...accept,
    addEventListener: (_type, fn) => handlers.push(fn),
  };
  button.addEventListener("click", (ev) =>
    sendWrite({
      lock: [ev.currentTarget],
      status,
      send: () => d.send("accept"),
      onSaved: () => reads++,
      keepLocked: true,
    }),
  );
  const click = () => {
    const ev = { currentTarget: button };
    const runs = handlers.map((fn) => fn(ev));
    ev.currentTarget = null;
    return runs[0];
  };
  let done = click();
  assert.equal(button.disabled, true);
  d.fail("This answer was removed.");
  assert.equal(await done, false);
  assert.equal(status.textContent, "This answer was removed.");
  assert.equal(button.disabled, false, "Accept can be clicked again");

  done = click();
  d.ok();
  assert.equal(await done, true);
  assert.equal(reads, 1, "the list is read again after accepting");
  assert.equal(button.disabled, true, "stays disabled until the list is drawn again");
});

test("what a save does may fail too: its problem shows and the controls unlock", async () => {
  const btn = control();
  const status = statusLine();
  const ok = await sendWrite({
    lock: [btn],
    status,
    pending: "Deleting…",
    send: async () => {},
    onSaved: async () => {
      throw Object.assign(new Error(""), { kind: "offline" });
    },
    keepLocked: true,
  });
  assert.equal(ok, false);
  assert.equal(status.textContent, "The Inflow server is unreachable. Try again in a moment.");
  assert.equal(btn.disabled, false);
});
