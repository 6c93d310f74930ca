"""The dashboard's slot pages in process: bad input reads as a message on the page,
never a 500, and an installation's own provider replaces a built-in one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.dashboard.slots import Panel, PanelCell, PanelTable, SlotParams, slot_providers
from shelfwise.runtime import Runtime


@pytest.fixture
def client(sqlite_settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    settings = sqlite_settings.model_copy(update={"auth_enabled": False})
    runtime = Runtime.open(settings)
    try:
        with TestClient(create_app(settings, runtime)) as c:
            yield c, runtime
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("/dashboard/decisions?rec_id=nope", None, "No served slate with rec_id &#39;nope&#39;"),
        ("/dashboard/experiments?experiment=nope", None, "No experiment &#39;nope&#39;."),
        ("/dashboard/rules?rule=nope", None, "No rule &#39;nope&#39;."),
        ("/dashboard/rules", {"draft": ""}, "write one rule or a list of rules"),
        ("/dashboard/rules", {"draft": "id: [unclosed"}, "The draft could not be read"),
        ("/dashboard/rules", {"draft": "id: x\ntype: exclude"}, "The draft is not a valid rule"),
        (
            "/dashboard/rules",
            {"draft": "id: x\ntype: dedupe_variants\nreason: one colour", "last": "0"},
            "replay between 1 and 10,000 slates",
        ),
        (
            "/dashboard/rules",
            {"draft": "id: x\ntype: dedupe_variants\nreason: one colour"},
            "no recorded requests to replay",
        ),
    ],
)
def test_bad_input_is_a_message_on_the_page(
    client: tuple[TestClient, Runtime], path: str, form: dict[str, str] | None, message: str
) -> None:
    c, _ = client
    r = c.post(path, data=form) if form is not None else c.get(path)
    assert r.status_code == 200
    assert 'role="alert"' in r.text and message in r.text, r.text[-3000:]


def test_empty_store_pages_say_so(client: tuple[TestClient, Runtime]) -> None:
    c, _ = client
    assert "No experiments yet" in c.get("/dashboard/experiments").text
    assert "No rules: every candidate is allowed." in c.get("/dashboard/rules").text
    assert "No slate served in this time range." in c.get("/dashboard/decisions").text
    assert "No events yet." in c.get("/dashboard/signals").text


def test_a_registered_provider_replaces_the_built_in_one(
    client: tuple[TestClient, Runtime],
) -> None:
    c, _ = client

    def ours(rt: Runtime, params: SlotParams) -> Panel:
        cell = PanelCell("99.1%", value=0.991, testid="web-accepted", tone="ok")
        return Panel("Ours", summary=f"window {params.range_key}", tables=[
            PanelTable("By source", ["Source", "Accepted"], [["web", cell]])
        ])  # fmt: skip

    slot_providers(c.app)["signals"] = ours
    html = c.get("/dashboard/signals?range=24h").text
    assert "window 24h" in html
    assert 'data-testid="web-accepted" data-value="0.991" class="badge ok">99.1%' in html
