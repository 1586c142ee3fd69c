"""Links into a video at a moment, as the panel makes them (extension/src/lib/videotime.js):
YouTube `?t=83` (an embed: `?start=83`), Vimeo `#t=83s`, anything else the media fragment
`#t=83`."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def _on(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def video_at(source: str, seconds: float) -> str | None:
    """`source` opened at `seconds` (whole seconds), or None when it is no http(s) URL."""
    try:
        parts = urlsplit(source or "")
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    sec = str(max(0, int(seconds)))
    host = (parts.hostname or "").lower()
    if _on(host, "youtube.com") or host == "youtu.be" or _on(host, "youtube-nocookie.com"):
        name = "start" if parts.path.startswith("/embed/") else "t"
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("t", "start")]
        fragment = "" if parts.fragment.startswith("t=") else parts.fragment
        return urlunsplit(parts._replace(query=urlencode([*query, (name, sec)]), fragment=fragment))
    if _on(host, "vimeo.com"):
        return urlunsplit(parts._replace(fragment=f"t={sec}s"))
    return urlunsplit(parts._replace(fragment=f"t={sec}"))


def clock(seconds: float) -> str:
    """1:23, or 1:02:03 past an hour."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
