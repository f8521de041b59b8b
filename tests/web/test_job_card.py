"""The technician's job card: where the host and the spare are, the serial checked against the
part kind, a note, a photo (metadata stripped), a pause request and the manager's answer.
Real PostgreSQL, a real HTTP server, and real headless Chromium at a phone's viewport."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image
from playwright.sync_api import expect

from dispatcher.fleet import FleetError, parse_fleet
from dispatcher.store import spares, tokens
from dispatcher.store.fleet import apply_fleet
from schemas.states import Role
from tests.conftest import eventually
from tests.web.conftest import Fleet, OpenIncident, SignIn, _watched

Conn = psycopg.Connection[tuple[Any, ...]]
BIN = "Store room B, shelf 3, bin 12"
PART = "ST8000NM000A"
GPS_IFD = 0x8825  # EXIF's GPS sub-directory
DENIED = {"reason": "customer_denied_access", "note": "security desk will not open the cage"}


def call(base_url: str, token: str | None, method: str, path: str,
         **kw: Any) -> httpx.Response:
    """One request with the token as a bearer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    return httpx.request(method, base_url + path, headers=headers, timeout=30, **kw)


def gps_jpeg(size: tuple[int, int] = (3000, 2000)) -> bytes:
    """A JPEG as a phone writes it: EXIF with the camera and GPS position, an ICC profile."""
    img = Image.new("RGB", size, (40, 90, 160))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15"  # Model
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (38.0, 57.0, 3.6), 3: "W", 4: (77.0, 28.0, 1.2)})
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, icc_profile=b"\0" * 128 + b"fake-icc", quality=90)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD), "the test photo has GPS"
    return data


@pytest.fixture(scope="module")
def bob(db: Conn, fleet: Fleet) -> str:
    """Another technician's token (t-bob)."""
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}') ON CONFLICT DO NOTHING")
    return tokens.create(db, Role.TECHNICIAN, None, "t-bob")


@pytest.fixture(scope="module")
def stock(db: Conn, fleet: Fleet) -> None:
    """Two spare disks at iad1, on a known shelf; t-maria has an email address."""
    db.execute("INSERT INTO spares (site_id, part, kind, count, location) VALUES"
               " ('iad1', %s, 'disk', 4, %s)", (PART, BIN))
    db.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
               " ('t-maria', 'email', 'maria@example.net') ON CONFLICT DO NOTHING")


def with_spare(db: Conn, open_incident: OpenIncident, **kw: Any) -> tuple[int, int]:
    """An incident whose job t-ana holds, with a spare reserved for it."""
    opened = open_incident(**kw)
    db.execute("INSERT INTO spare_reservations (incident_id, site_id, part, reserved_at)"
               " VALUES (%s, 'iad1', %s, now())", (opened.incident, PART))
    assert opened.job is not None
    return opened.incident, opened.job


def box(locator: Any) -> dict[str, float]:
    """The element's box, waiting out a re-render (the live list redraws its cards)."""
    got: dict[str, float] = eventually(locator.bounding_box, 5, "the element laid out", 0.05)
    return got


def job_of(base_url: str, token: str, job: int) -> dict[str, Any]:
    """The technician's job from the list."""
    items = call(base_url, token, "GET", "/api/v1/jobs?mine=true").json()["items"]
    found: dict[str, Any] = next(j for j in items if j["id"] == job)
    return found


# -- the API ---------------------------------------------------------------------------------

def test_the_card_says_where_the_host_and_the_spare_are(
        base_url: str, db: Conn, fleet: Fleet, stock: None, open_incident: OpenIncident) -> None:
    _, job = with_spare(db, open_incident)
    bare = open_incident().job
    assert bare is not None
    j = job_of(base_url, fleet.tech, job)
    assert j["card"]["site_name"] == "Ashburn 1"
    assert j["incident"]["location"] == {"room": "A", "rack": "r12", "unit": 7}
    assert j["card"]["spare"] == {"part": PART, "location": BIN}
    assert j["card"]["serial_shape"]["example"] == "ZA1B2C3D"
    assert job_of(base_url, fleet.tech, bare)["card"]["spare"] is None
    listed = call(base_url, fleet.manager, "GET", "/api/v1/spares").json()["items"]
    assert [s["location"] for s in listed if s["part"] == PART] == [BIN]


def test_spare_locations_in_the_fleet_file_and_the_spares_command(db: Conn, stock: None) -> None:
    site = {"id": "iad1", "name": "Ashburn 1", "timezone": "UTC"}
    spare = {"site": "iad1", "part": PART, "kind": "disk", "count": 2}
    fleet = parse_fleet({"sites": [site], "spares": [{**spare, "location": BIN}]}, "f.yaml")
    assert fleet.spares[0].location == BIN
    with pytest.raises(FleetError, match=r"f\.yaml.*spares\[0\]\.location.*too long"):
        parse_fleet({"sites": [site], "spares": [{**spare, "location": "x" * 65}]}, "f.yaml")
    lon = {"sites": [{"id": "lon9", "name": "London 9", "timezone": "Europe/London"}],
           "spares": [{**spare, "site": "lon9", "location": "Cage 1, bin 4"}]}
    apply_fleet(db, parse_fleet(lon, "f.yaml"))  # `hourglass load`
    lon["spares"] = [{**spare, "site": "lon9", "count": 3}]  # a later file leaves it out
    apply_fleet(db, parse_fleet(lon, "f.yaml"))
    assert db.execute("SELECT count, location FROM spares WHERE site_id = 'lon9'").fetchone() \
        == (3, "Cage 1, bin 4")
    spares.locate(db, "iad1", PART, "Cage 2, bin 7")
    assert "Cage 2, bin 7" in spares.render(spares.stock(db, "iad1"))
    with pytest.raises(spares.SpareError, match="too long"):
        spares.locate(db, "iad1", PART, "y" * 65)
    with pytest.raises(spares.SpareError, match="no spare"):
        spares.locate(db, "iad1", "NOPE", "bin 1")
    spares.locate(db, "iad1", PART, BIN)


@pytest.mark.parametrize(("serial", "words"), [
    (PART, "part number"),  # the model printed beside the serial
    ("ZA1OLD", "failed part's serial"),
    ("12", "8 to 24 letters and digits"),
    ("ABCDEFGHJ", "at least one digit"),
])
def test_a_serial_of_the_wrong_shape_is_refused_with_the_shape(
        base_url: str, db: Conn, fleet: Fleet, stock: None, open_incident: OpenIncident,
        serial: str, words: str) -> None:
    _, job = with_spare(db, open_incident, state="on_site")
    r = call(base_url, fleet.tech, "POST", f"/api/v1/jobs/{job}/replaced", json={"serial": serial})
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    ok = call(base_url, fleet.tech, "POST", f"/api/v1/jobs/{job}/replaced",
              json={"serial": "ZA1NEW77"})
    assert (ok.status_code, ok.json()["state"]) == (200, "replaced")


def test_a_note_written_offline_keeps_the_phones_time_beside_its_arrival(
        base_url: str, fleet: Fleet, open_incident: OpenIncident) -> None:
    opened = open_incident()
    path = f"/api/v1/jobs/{opened.job}/notes"
    written = (datetime.now(UTC) - timedelta(minutes=7)).replace(microsecond=0)
    for text, told in (("offline note", written.isoformat().replace("+00:00", "Z")),
                       ("odd clock", "next tuesday")):
        r = call(base_url, fleet.tech, "POST", path, json={"text": text},
                 headers={"Hourglass-Device-Time": told})
        assert r.status_code == 200, r.text  # a bad device time never refuses the note
    got = call(base_url, fleet.manager, "GET", f"/api/v1/incidents/{opened.incident}").json()
    notes = {e["detail"]["text"]: e for e in got["timeline"] if e["kind"] == "note"}
    assert notes["offline note"]["detail"]["device_time"] == \
        written.isoformat().replace("+00:00", "Z")
    assert notes["offline note"]["at"] > notes["offline note"]["detail"]["device_time"]
    assert "not an RFC 3339 time" in notes["odd clock"]["detail"]["device_time_ignored"]


def test_a_note_goes_on_the_staff_timeline_once(
        base_url: str, db: Conn, fleet: Fleet, bob: str, open_incident: OpenIncident) -> None:
    opened = open_incident()
    path = f"/api/v1/jobs/{opened.job}/notes"
    key = {"Idempotency-Key": "note-1"}
    for _ in range(2):  # a retried tap
        r = call(base_url, fleet.tech, "POST", path, json={"text": "caddy latch broken"},
                 headers=key)
        assert r.status_code == 200, r.text
    assert call(base_url, fleet.manager, "POST", path, json={"text": "spare caddy in B"}
                ).status_code == 200
    staff = call(base_url, fleet.manager, "GET", f"/api/v1/incidents/{opened.incident}").json()
    notes = [(e["actor"], e["detail"]["text"]) for e in staff["timeline"] if e["kind"] == "note"]
    assert notes == [("technician:t-ana", "caddy latch broken"),
                     ("manager:t-maria", "spare caddy in B")]
    own = call(base_url, fleet.acme, "GET", f"/api/v1/incidents/{opened.incident}").json()
    assert not [e for e in own["timeline"] if e["kind"] == "note"]
    too_long = call(base_url, fleet.tech, "POST", path, json={"text": "x" * 2001})
    assert too_long.status_code == 422
    assert "text" in too_long.json()["detail"]
    other = call(base_url, bob, "POST", path, json={"text": "mine now"})
    assert other.status_code == 403
    assert "t-ana" in other.json()["detail"]


def test_a_photo_loses_its_metadata_and_is_for_staff_only(
        base_url: str, db: Conn, fleet: Fleet, bob: str, open_incident: OpenIncident) -> None:
    opened = open_incident(state="on_site")
    r = call(base_url, fleet.tech, "POST", f"/api/v1/jobs/{opened.job}/photos",
             content=gps_jpeg(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 201, r.text
    shown = r.json()
    assert (shown["width"], shown["height"]) == (2048, 1365)
    got = call(base_url, fleet.manager, "GET", shown["url"])
    assert (got.status_code, got.headers["content-type"]) == (200, "image/jpeg")
    img = Image.open(io.BytesIO(got.content))
    assert max(img.size) == 2048
    assert not img.getexif()
    assert not img.getexif().get_ifd(GPS_IFD)
    assert "icc_profile" not in img.info
    assert "exif" not in img.info
    assert b"PhoneMaker" not in got.content
    thumb = Image.open(io.BytesIO(call(base_url, fleet.tech, "GET", shown["thumb_url"]).content))
    assert max(thumb.size) == 320
    for token in (fleet.acme, bob):
        assert call(base_url, token, "GET", shown["url"]).status_code == 403
    timeline = call(base_url, fleet.manager, "GET", f"/api/v1/incidents/{opened.incident}"
                    ).json()["timeline"]
    assert [e["detail"]["photo"] for e in timeline if e["kind"] == "photo"] == [shown["id"]]


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"\xff\xd8\xff" + b"\0" * (8 * 1024 * 1024), 413, "limit is 8 MB"),
    (b"GIF89a but not really a picture", 422, "cannot be read"),
    (b"%PDF-1.7 a document", 415, "not a JPEG, PNG, WebP or GIF"),
    (b"", 422, "empty"),
])
def test_a_photo_too_big_or_not_an_image_is_refused(
        base_url: str, fleet: Fleet, open_incident: OpenIncident, body: bytes, status: int,
        words: str) -> None:
    job = open_incident().job
    r = call(base_url, fleet.tech, "POST", f"/api/v1/jobs/{job}/photos", content=body,
             headers={"Content-Type": "image/jpeg"})  # the type lies; the bytes tell
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_pause_request_waits_for_the_manager_who_grants_or_refuses_it(
        base_url: str, db: Conn, fleet: Fleet, bob: str, stock: None,
        open_incident: OpenIncident) -> None:
    opened = open_incident()
    path = f"/api/v1/jobs/{opened.job}/pause-request"
    first = call(base_url, fleet.tech, "POST", path, json=DENIED)
    again = call(base_url, fleet.tech, "POST", path, json=DENIED)  # asked twice
    assert first.status_code == again.status_code == 200, again.text
    asked = first.json()["card"]["pause_request"]
    assert asked["state"] == "pending"
    assert again.json()["card"]["pause_request"]["id"] == asked["id"]
    detail = call(base_url, fleet.manager, "GET", f"/api/v1/incidents/{opened.incident}").json()
    assert detail["state"] == "dispatched"  # the clock runs
    assert len([e for e in detail["timeline"] if e["kind"] == "pause_requested"]) == 1
    told = db.execute("SELECT recipient FROM outbox WHERE ref LIKE %s",
                      (f"pause-request:{opened.incident}:%",)).fetchall()
    assert told == [("t-maria",)]
    waiting = call(base_url, fleet.manager, "GET", "/api/v1/pause-requests").json()["items"]
    assert asked["id"] in [w["id"] for w in waiting]
    assert call(base_url, bob, "POST", path, json=DENIED).status_code == 403
    assert call(base_url, fleet.manager, "POST", path, json=DENIED).status_code == 403
    no = call(base_url, fleet.manager, "POST", f"/api/v1/pause-requests/{asked['id']}/refuse",
              json={"answer": "the customer opens the cage in five minutes"})
    assert (no.status_code, no.json()["state"]) == (200, "refused"), no.text
    card = job_of(base_url, fleet.tech, opened.job or 0)["card"]["pause_request"]
    assert (card["state"], card["answer"]) == ("refused", "the customer opens the cage in "
                                               "five minutes")
    second = call(base_url, fleet.tech, "POST", path, json=DENIED).json()["card"]["pause_request"]
    assert second["state"] == "pending"
    assert second["id"] != asked["id"]
    paused = call(base_url, fleet.manager, "POST", f"/api/v1/incidents/{opened.incident}/pause",
                  json={"reason": "customer_denied_access"})
    assert paused.json()["state"] == "paused"
    assert job_of(base_url, fleet.tech, opened.job or 0)["card"]["pause_request"]["state"] \
        == "granted"


# -- the phone -------------------------------------------------------------------------------

@pytest.fixture
def iphone(browser: Any) -> Iterator[Any]:
    """A 390x844 touch page (an iPhone 14's CSS viewport)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3,
                                  is_mobile=True, has_touch=True)
    yield from _watched(context.new_page())
    context.close()


def test_the_card_on_a_phone(base_url: str, db: Conn, fleet: Fleet, stock: None,
                             open_incident: OpenIncident, signin: SignIn, iphone: Any,
                             tmp_path: Any) -> None:
    db.execute("UPDATE jobs SET state = 'cancelled' WHERE technician_id = 't-ana'"
               " AND state IN ('dispatched', 'acknowledged', 'on_site', 'replaced')")
    incident, job = with_spare(db, open_incident, state="on_site")
    page = iphone
    signin(page, fleet.tech, "/tech")
    cardbox = page.locator(f"[data-job='{job}']")
    where = cardbox.locator("[data-where]")
    expect(where).to_contain_text("Ashburn 1")
    for text in ("A", "r12", "U7", "sda"):
        expect(where).to_contain_text(text)
    assert box(where)["y"] < 120  # first on the card, at the top of the screen
    expect(cardbox.locator("[data-spare]")).to_have_text(f"Spare: {PART}, {BIN}")
    # the scan's decisions (this Chromium has no BarcodeDetector: the typed path is the one)
    assert page.evaluate("canScan()") == "type"
    assert page.evaluate("canScan({BarcodeDetector: 1, navigator: {mediaDevices: "
                         "{getUserMedia() {}}}})") == "scan"
    picked = page.evaluate(f"pickScanned(['{PART}', 'ZA1SCAN9'], jobs[0])")
    assert picked == {"value": "ZA1SCAN9", "problem": None}
    assert "part number" in page.evaluate(f"pickScanned(['{PART}'], jobs[0])")["problem"]
    # the action buttons: at the bottom of the screen, at least 48 px high, the next step biggest
    buttons = cardbox.locator(".acts button")
    boxes = [box(buttons.nth(i)) for i in range(buttons.count())]
    assert len(boxes) == 4, boxes  # note, photo, ask pause, replaced
    for b in boxes:
        assert b["height"] >= 48, boxes
        assert b["y"] >= 844 / 2, boxes  # in the bottom half, in thumb reach
        assert b["y"] + b["height"] <= 844, boxes
    main = box(cardbox.locator("[data-act='replaced']"))
    assert main["width"] >= box(cardbox)["width"] - 32
    assert main["height"] == max(b["height"] for b in boxes)
    # a wrong serial asks again, a right one replaces
    cardbox.locator("[data-act='replaced']").tap()
    expect(page.locator("#scan-hint")).to_be_visible()
    page.fill("#serial", PART)
    page.click("#sheet-ok")
    expect(page.locator("#sheet-err")).to_contain_text("part number")
    page.fill("#serial", "12")
    page.click("#sheet-ok")
    expect(page.locator("#sheet-err")).to_contain_text("8 to 24 letters and digits")
    page.fill("#serial", "ZA1NEW88")
    page.click("#sheet-ok")
    expect(cardbox.locator(".waiting")).to_contain_text("ZA1NEW88")
    # a note, queued like the other actions
    cardbox.locator("[data-act='note']").tap()
    page.fill("#note-text", "old disk bagged for RMA")
    page.click("#sheet-ok")
    expect(cardbox.locator("[data-note]")).to_contain_text("Note added")
    # a photo with GPS in it, from the file input
    photo = tmp_path / "rack.jpg"
    photo.write_bytes(gps_jpeg((1600, 1200)))
    cardbox.locator("[data-act='photo']").tap()
    page.set_input_files("#photo-file", str(photo))
    page.click("#sheet-ok")
    expect(page.locator("#sheet")).to_be_hidden()
    expect(cardbox.locator("[data-note]")).to_contain_text("Photo added")
    # offline, the photo sheet says a photo needs the signal
    page.context.set_offline(True)
    cardbox.locator("[data-act='photo']").tap()
    expect(page.locator("#sheet-text")).to_contain_text("No connection")
    page.click("#sheet-cancel")
    page.context.set_offline(False)
    # a pause request, and the card says it waits
    cardbox.locator("[data-act='pause-request']").tap()
    page.fill("#pause-note", "cage locked by the customer")
    page.click("#sheet-ok")
    expect(cardbox.locator("[data-pause]")).to_contain_text("waiting for the site manager")
    timeline = call(base_url, fleet.manager, "GET", f"/api/v1/incidents/{incident}").json()
    kinds = [e["kind"] for e in timeline["timeline"]]
    assert {"replaced", "note", "photo", "pause_requested"} <= set(kinds), kinds
    stored = db.execute("SELECT image FROM job_photos WHERE incident_id = %s",
                        (incident,)).fetchone()
    assert stored is not None
    assert not Image.open(io.BytesIO(bytes(stored[0]))).getexif().get_ifd(GPS_IFD)
    page.screenshot(path=str(tmp_path / "card.png"))


def test_ops_shows_the_photos_and_the_pause_request_under_the_incident(
        base_url: str, db: Conn, fleet: Fleet, open_incident: OpenIncident, signin: SignIn,
        desktop: Any) -> None:
    opened = open_incident(minutes_left=50)
    r = call(base_url, fleet.tech, "POST", f"/api/v1/jobs/{opened.job}/photos",
             content=gps_jpeg((800, 600)))
    assert r.status_code == 201, r.text
    assert call(base_url, fleet.tech, "POST", f"/api/v1/jobs/{opened.job}/pause-request",
                json=DENIED).status_code == 200
    signin(desktop, fleet.manager, "/ops")
    extras = desktop.locator(f"tr[data-extras-for='{opened.incident}']")
    thumb = extras.locator(f"img[data-photo='{r.json()['id']}']")
    expect(thumb).to_be_visible()
    thumb.evaluate("img => img.complete ? null : new Promise((ok) => {"
                   " img.onload = ok; img.onerror = ok; })")  # loaded (or failed), not loading
    assert thumb.evaluate("img => img.naturalWidth") == 320  # the thumbnail loaded, by cookie
    expect(extras.locator("[data-ask]")).to_contain_text("security desk")
    extras.locator("[data-grant]").click()
    expect(desktop.locator(f"tr[data-extras-for='{opened.incident}'] [data-ask]")).to_have_count(0)
    state = db.execute("SELECT i.state, q.state FROM incidents i JOIN pause_requests q"
                       " ON q.incident_id = i.id WHERE i.id = %s", (opened.incident,)).fetchone()
    assert state == ("paused", "granted")


def test_a_noisy_full_size_photo_still_fits_its_row() -> None:
    """The worst case for JPEG (random pixels) re-encoded stays under job_photos' cap."""
    from dispatcher.service import photos

    noise = Image.frombytes("RGB", (2400, 2400), os.urandom(2400 * 2400 * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=90)  # about 6 MB: under the upload limit
    clean = photos.clean(out.getvalue())
    assert (clean.width, clean.height) == (2048, 2048)
    assert len(clean.image) <= photos.MAX_STORED
    assert len(clean.thumb) <= 256 * 1024
