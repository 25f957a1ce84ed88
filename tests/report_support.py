"""Open an HTML file in headless Chromium over the DevTools protocol (for the report tests)."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser import CDP, LAST_REASON, Chromium, ensure_chromium

__all__ = ["Rendered", "render_in_chromium"]

IMAGES_JS = """
new Promise((resolve) => {
  const done = () => resolve(Array.from(document.images).map((img) => ({
      alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
      inline: img.src.startsWith('data:image/')})));
  if (document.readyState === 'complete') { done(); } else { window.addEventListener('load', done); }
})
"""
FACTS_JS = """({
  title: document.title,
  sections: Array.from(document.querySelectorAll('section')).map((s) => s.id),
  text: document.body.innerText,
  height: document.documentElement.scrollHeight,
  external: Array.from(document.querySelectorAll('[src],[href]'))
      .map((e) => e.getAttribute('src') || e.getAttribute('href'))
      .filter((u) => !(u.startsWith('data:') || u.startsWith('#'))),
})"""


@dataclass
class Rendered:
    """What Chromium made of a page."""

    images: list[dict[str, Any]]
    facts: dict[str, Any]
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for ev in events:
        params = ev.get("params", {})
        if ev["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif ev["method"] == "Runtime.exceptionThrown":
            out.append(str(params.get("exceptionDetails", {}).get("text")))
        elif ev["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            out.append(str(params["entry"].get("text")))
    return out


async def _render(binary: str, path: Path, width: int) -> Rendered:
    with Chromium(binary) as browser:
        async with CDP.connect(browser.ws_url) as cdp:
            target = await cdp.send("Target.createTarget", {"url": "about:blank"})
            attached = await cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            session = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                await cdp.send(f"{domain}.enable", session=session)
            await cdp.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            await cdp.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            await cdp.wait_for(lambda evs: any(e["method"] == "Page.loadEventFired" for e in evs), timeout=60)
            images = await cdp.send(
                "Runtime.evaluate",
                {"expression": IMAGES_JS, "awaitPromise": True, "returnByValue": True},
                session=session,
            )
            facts = await cdp.send("Runtime.evaluate", {"expression": FACTS_JS, "returnByValue": True}, session=session)
            shot = await cdp.send(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
            )
            await asyncio.sleep(0.2)  # let late console/log events arrive
            requests = [e["params"]["request"]["url"] for e in cdp.events if e["method"] == "Network.requestWillBeSent"]
            return Rendered(
                images=images["result"]["value"],
                facts=facts["result"]["value"],
                console_errors=_errors(cdp.events),
                requests=requests,
                screenshot=base64.b64decode(shot["data"]),
            )


def render_in_chromium(path: Path, *, width: int = 1280) -> Rendered:
    """Open *path* in headless Chromium; skip the test when no browser can be had."""
    binary = ensure_chromium()
    if binary is None:
        pytest.skip(LAST_REASON)
    return asyncio.run(_render(binary, path, width))
