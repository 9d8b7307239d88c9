"""The browser libraries fetched from the real npm registry, and refused when they differ."""

from __future__ import annotations

import dataclasses
import re
import socket
from pathlib import Path

import pytest

from console import assets

SSE = next(p for p in assets.PACKAGES if p.name == "htmx-ext-sse")  # the smallest tarball


def test_templates_and_static_files_are_found_in_the_checkout() -> None:
    assert (assets.TEMPLATES_DIR / "base.html").is_file()
    assert (assets.STATIC_DIR / "css" / "eventscope.css").is_file()
    assert assets.IN_CHECKOUT and assets.vendor_dir() == assets.STATIC_DIR / "vendor"


def test_tarball_addresses_follow_the_registry_layout() -> None:
    scoped = dataclasses.replace(SSE, name="@scope/thing", version="1.2.3")
    assert assets.tarball_url(scoped, "https://r.example/") == (
        "https://r.example/@scope/thing/-/thing-1.2.3.tgz"
    )
    assert assets.tarball_url(SSE, "https://r.example") == (
        "https://r.example/htmx-ext-sse/-/htmx-ext-sse-2.2.4.tgz"
    )


def test_fetch_keeps_only_the_listed_files_and_skips_what_is_there(tmp_path: Path) -> None:
    assert assets.fetch(tmp_path, (SSE,)) == [SSE]
    assert [p.name for p in tmp_path.iterdir()] == ["htmx-sse.min.js"]
    assert b"htmx" in (tmp_path / "htmx-sse.min.js").read_bytes()
    assert assets.fetch(tmp_path, (SSE,)) == []  # nothing missing, nothing asked


def test_a_tarball_that_does_not_match_its_integrity_is_refused(tmp_path: Path) -> None:
    forged = dataclasses.replace(SSE, integrity="sha512-" + "A" * 86 + "==")
    with pytest.raises(assets.VendorError, match="does not match its integrity"):
        assets.fetch(tmp_path, (forged,))
    assert list(tmp_path.iterdir()) == []


def test_a_file_the_tarball_lacks_is_named(tmp_path: Path) -> None:
    wrong = dataclasses.replace(SSE, files=(("package/dist/nope.js", "nope.js"),))
    with pytest.raises(assets.VendorError, match=re.escape("lacks ['nope.js']")):
        assets.fetch(tmp_path, (wrong,))


def test_an_unreachable_registry_is_a_clear_message_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("EVENTSCOPE_NPM_REGISTRY", f"http://127.0.0.1:{closed}/")
    monkeypatch.setattr(assets, "vendor_dir", lambda: tmp_path / "vendor")
    problem = assets.ensure()
    assert problem is not None
    assert f"cannot reach http://127.0.0.1:{closed}/htmx.org/-/htmx.org-2.0.11.tgz" in problem
    assert "Pages work without" in problem
    assert not (tmp_path / "vendor").exists()


def test_every_page_links_a_favicon_that_is_served_and_a_skip_link(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from console.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(None, f"sqlite:///{tmp_path / 'i.db'}"), mode="console")
    with TestClient(app) as client:
        page = client.get("/events").text
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
        assert '<a class="skip-link" href="#main">' in page and '<main id="main">' in page
        icon = client.get("/static/favicon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
