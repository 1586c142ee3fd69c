import assert from "node:assert/strict";
import { test } from "node:test";

import { cueLink, cueQuote, videoAt } from "../src/lib/videotime.js";

test("a media file opens at a W3C media fragment", () => {
  assert.equal(
    videoAt("https://media.example.net/v/onboarding.mp4", 83.9),
    "https://media.example.net/v/onboarding.mp4#t=83",
  );
  // an old fragment is replaced, the query kept
  assert.equal(
    videoAt("https://cdn.example.org/a.webm?sig=x#t=10,20", 5),
    "https://cdn.example.org/a.webm?sig=x#t=5",
  );
  assert.equal(
    videoAt("http://intranet.example/video.mp4", 0),
    "http://intranet.example/video.mp4#t=0",
  );
});

test("YouTube gets ?t= (or &t=), an embed ?start=", () => {
  assert.equal(
    videoAt("https://www.youtube.com/watch?v=abc123", 83),
    "https://www.youtube.com/watch?v=abc123&t=83",
  );
  assert.equal(videoAt("https://youtu.be/abc123", 125), "https://youtu.be/abc123?t=125");
  assert.equal(videoAt("https://youtu.be/abc123?t=10", 125), "https://youtu.be/abc123?t=125");
  assert.equal(
    videoAt("https://m.youtube.com/watch?v=abc123#t=4", 7),
    "https://m.youtube.com/watch?v=abc123&t=7",
  );
  assert.equal(
    videoAt("https://www.youtube-nocookie.com/embed/abc123?rel=0", 60),
    "https://www.youtube-nocookie.com/embed/abc123?rel=0&start=60",
  );
  // a host that only looks like YouTube is a plain page: a media fragment
  assert.equal(
    videoAt("https://notyoutube.com/watch?v=1", 3),
    "https://notyoutube.com/watch?v=1#t=3",
  );
});

test("Vimeo gets #t=83s", () => {
  assert.equal(videoAt("https://vimeo.com/76979871", 83), "https://vimeo.com/76979871#t=83s");
  assert.equal(
    videoAt("https://player.vimeo.com/video/76979871?h=1", 61.5),
    "https://player.vimeo.com/video/76979871?h=1#t=61s",
  );
});

test("no link for what is not an http(s) URL, and no negative times", () => {
  assert.equal(videoAt("javascript:alert(1)", 3), null);
  assert.equal(videoAt("", 3), null);
  assert.equal(videoAt(undefined, 3), null);
  assert.equal(
    videoAt("https://media.example.net/a.mp4", -4),
    "https://media.example.net/a.mp4#t=0",
  );
  assert.equal(
    videoAt("https://media.example.net/a.mp4", "nonsense"),
    "https://media.example.net/a.mp4#t=0",
  );
});

test("the cue line: time and quoted words, plain text", () => {
  const cue = {
    start: 83.2,
    end: 87,
    text: "Reject a claim when the <receipt> doesn't match.",
    source: "https://youtu.be/x",
  };
  assert.deepEqual(cueLink(cue), {
    href: "https://youtu.be/x?t=83",
    time: "1:23",
    label: "▶ 1:23 “Reject a claim when the <receipt> doesn't match.”",
  });
  assert.equal(cueLink({ ...cue, start: 3723 }).time, "1:02:03");
  assert.equal(cueLink({ ...cue, source: "ftp://x/y.mp4" }), null);
  assert.equal(cueLink(null), null);
  assert.equal(cueLink({ text: "no time", source: "https://youtu.be/x" }), null);
});

test("a long cue is cut at a word", () => {
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
  const q = cueQuote(words);
  assert.ok(q.length <= 121, q);
  assert.ok(q.endsWith("…"));
  assert.ok(words.startsWith(`${q.slice(0, -1)} `), q); // whole words only
  assert.equal(cueQuote("  two\nlines  "), "two lines");
});
