"""`facescan serve`'s app in process (Starlette's TestClient): every endpoint, every error
status, auth on and off, CORS, --keep, and served rows equal to the CLI's JSONL rows."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from commands import facescan
from conftest import build_red_model, noise_image
from images import bad_files, good_files, jpeg_bytes, png_bytes
from PIL import Image

pytest.importorskip("starlette", reason="needs the [serve] extra: pip install 'facescan[serve]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2 drive its TestClient
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from scanner.cli_options import scan_settings  # noqa: E402
from scanner.reports.base import FIELDS, printable  # noqa: E402
from scanner.serve.app import create_app, token_matches  # noqa: E402
from scanner.serve.openapi import schema  # noqa: E402
from scanner.serve.options import TOKEN_ENV, ServeOptions  # noqa: E402
from scanner.serve.server import build_service  # noqa: E402
from scanner.serve.service import Admission  # noqa: E402
from scanner.serve.uploads import HttpError  # noqa: E402
from scanner.settings import ScanSettings  # noqa: E402
from scanner.walk import IMAGE_EXTENSIONS  # noqa: E402

PAGE = Path(__file__).resolve().parent.parent / "scanner" / "serve" / "page"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_red_model(tmp_path_factory.mktemp("model") / "red.onnx")


@contextmanager
def served(model: Path, **options: Any) -> Iterator[TestClient]:
    """The app over a loaded service, its lifespan running; closed on exit."""
    scan_fields = {"max_pixels", "max_bytes", "threshold", "ignore_metadata"}
    given = {k: options.pop(k) for k in scan_fields & set(options)}
    settings = scan_settings(
        {"model": model, "provider": "cpu", "workers": 2, "engine": "batcher", **given}
    )
    serve_options = ServeOptions(settings, **options)
    serve_options.check()
    with TestClient(create_app(build_service(serve_options), serve_options)) as client:
        yield client


@pytest.fixture(scope="module")
def client(model: Path) -> Iterator[TestClient]:
    with served(model) as c:
        yield c


def red_png(value: int = 255, size: int = 20) -> bytes:
    return png_bytes(Image.new("RGB", (size, size), (value, 0, 0)))


def post_files(client: TestClient, files: dict[str, bytes], **kwargs: Any) -> Any:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in files.items()]
    return client.post("/v1/scan", files=parts, **kwargs)


def refused(response: Any, status: int, pattern: str) -> None:
    """A JSON error of this status whose message matches."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert re.search(pattern, response.json()["error"]), response.json()


# --- endpoints ---------------------------------------------------------------------------------


def test_probes(client: TestClient, model: Path) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"]["model"] == str(model)
    assert ready.json()["model"]["labels"] == ["real", "ai"]


def test_readyz_says_no_once_shut_down(model: Path) -> None:
    with served(model) as c:
        assert c.get("/readyz").status_code == 200
    assert c.get("/readyz").status_code == 503  # the lifespan closed the service
    assert c.get("/healthz").status_code == 200


def test_multipart_images_answer_in_upload_order(client: TestClient) -> None:
    files = {f"img{v}.png": red_png(v) for v in (255, 0, 128, 64)}
    files["broken.jpg"] = b"\xff\xd8\xff\xe0 not really"
    response = post_files(client, files)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["path"] for r in rows] == list(files)
    assert all(list(r) == list(FIELDS) for r in rows)  # the JSONL row's fields, in order
    for r, v in zip(rows[:4], (255, 0, 128, 64), strict=True):
        assert r["status"] == "ok" and r["score"] == pytest.approx(v / 255, abs=1e-6)
        assert r["label"] == ("ai" if v / 255 >= 0.5 else "real")
        assert (r["width"], r["height"], r["format"]) == (20, 20, "PNG")
    assert rows[4]["status"] == "error" and rows[4]["error"].startswith("corrupt")


def test_a_raw_body_is_one_image(client: TestClient) -> None:
    response = client.post(
        "/v1/scan?name=photo.png", content=red_png(51), headers={"content-type": "image/png"}
    )
    (row,) = response.json()["results"]
    assert row["path"] == "photo.png" and row["score"] == pytest.approx(0.2, abs=1e-6)
    response = client.post(
        "/v1/scan", content=red_png(), headers={"content-type": "application/octet-stream"}
    )
    assert response.json()["results"][0]["path"] == "upload"


def test_served_rows_are_the_clis_jsonl_rows(
    client: TestClient, model: Path, tmp_path: Path
) -> None:
    files = {**good_files(), **bad_files()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    done = facescan(*files, "--model", model, "--out", "r.jsonl", "--exit-zero", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cli_rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    served_rows = post_files(client, files).json()["results"]
    assert served_rows == cli_rows
    assert {r["status"] for r in served_rows} == {"ok", "error"}


def test_openapi_schema_describes_the_row(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document == json.loads(json.dumps(schema()))
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/v1/scan", "/healthz", "/readyz", "/metrics"}
    assert list(document["components"]["schemas"]["ScanRow"]["properties"]) == list(FIELDS)
    assert set(document["paths"]["/v1/scan"]["post"]["responses"]) == {
        *("200", "400", "401", "413", "415", "503")
    }


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_images_errors_latency_and_batches(model: Path) -> None:
    with served(model) as c:
        post_files(c, {"a.png": red_png(), "b.png": red_png(9), "c.jpg": b"text"})
        c.post("/v1/scan", content=b"{}", headers={"content-type": "application/json"})
        response = c.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = metric_values(response.text)
    assert values[("facescan_images_total", (("status", "ok"),))] == 2
    assert values[("facescan_images_total", (("status", "error"),))] == 1
    requests = "facescan_http_requests_total"
    assert values[(requests, (("route", "/v1/scan"), ("status", "200")))] == 1
    assert values[(requests, (("route", "/v1/scan"), ("status", "415")))] == 1
    assert values[("facescan_scan_seconds_count", ())] == 2
    assert values[("facescan_queue_images", ())] == 0
    assert values[("facescan_batched_images_total", ())] == 2
    assert 1 <= values[("facescan_batches_total", ())] <= 2


def test_the_page_and_its_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert client.get("/review.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/review.css").headers["content-type"].startswith("text/css")
    for asset in PAGE.iterdir():  # loads nothing from elsewhere: the page works offline
        text = asset.read_text(encoding="utf-8")
        assert not re.search(r"""(https?:)?//[a-z0-9]""", text.replace("://", ":⁄⁄")), asset
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, asset


def test_the_page_uses_the_reports_columns_and_the_walkers_extensions() -> None:
    script = (PAGE / "review.js").read_text(encoding="utf-8")

    def js_list(name: str) -> list[str]:
        found = re.search(rf"const {name} = \[(.*?)\];", script, re.S)
        assert found is not None, name
        return json.loads(f"[{found.group(1)}]")

    assert js_list("FIELDS") == list(FIELDS)
    assert js_list("IMAGE_EXTENSIONS") == sorted(IMAGE_EXTENSIONS)


# --- bad input: the image's row, never the request ---------------------------------------------


def test_bad_images_are_rows_with_the_clis_messages(model: Path) -> None:
    big = jpeg_bytes(noise_image(64), quality=90)
    with served(model, max_bytes=len(big) - 1, max_pixels=50 * 50) as c:
        files = {"ok.png": red_png(size=40), "big.jpg": big, **bad_files()}
        rows = {r["path"]: r for r in post_files(c, files).json()["results"]}
    assert rows["ok.png"]["status"] == "ok"
    assert rows["big.jpg"]["error"] == (
        f"file larger than {len(big) - 1:,} bytes (raise --max-bytes to scan it)"
    )
    assert rows["empty.jpg"]["error"] == "empty file (0 bytes)"
    assert rows["page.jpg"]["error"] == "not a supported image: content is HTML"
    assert rows["bomb.png"]["error"].startswith("image too large: 40000x40000")
    assert rows["truncated.jpg"]["status"] == "error"


def test_file_names_come_back_as_sent(client: TestClient) -> None:
    """As text, escaped as the CLI escapes paths; never interpreted (a name is not a path here)."""
    names = [
        b"<img src=x onerror=alert(1)>.png",
        b"../../etc/passwd",
        "ünïcödé 名前.png".encode(),
        b"latin-1 \xe9t\xe9.png",  # not UTF-8: \xNN escapes, as the CLI writes such names
        b'quote \\" back.png',  # a quoted-string escape: the name holds a double quote
    ]
    parts = b"".join(
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="'
        + name
        + b'"\r\n\r\n'
        + red_png()
        + b"\r\n"
        for name in names
    )
    headers = {"content-type": "multipart/form-data; boundary=b0undary"}
    response = client.post("/v1/scan", content=parts + b"--b0undary--\r\n", headers=headers)
    paths = [r["path"] for r in response.json()["results"]]
    assert paths == [
        "<img src=x onerror=alert(1)>.png",
        "../../etc/passwd",
        "ünïcödé 名前.png",
        "latin-1 \\xe9t\\xe9.png",
        'quote " back.png',
    ]
    assert paths[3] == printable(b"latin-1 \xe9t\xe9.png".decode("utf-8", "surrogateescape"))


# --- refusals ----------------------------------------------------------------------------------


def test_wrong_media_types_are_415(client: TestClient) -> None:
    for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
        response = client.post("/v1/scan", content=b"x", headers={"content-type": content_type})
        refused(response, 415, "unsupported media type")
    refused(client.post("/v1/scan", content=b"x"), 415, r"'\(none\)'")


def test_malformed_requests_are_400(client: TestClient) -> None:
    multipart = "multipart/form-data"
    cases = {
        "without a boundary": (multipart, b"--x\r\n"),
        "ends before its closing boundary": (
            f"{multipart}; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\nabc',
        ),
        "no image in the request": (
            f"{multipart}; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--xyz--\r\n',
        ),
        "malformed multipart body": (f"{multipart}; boundary=xyz", b"garbage\r\n--nope\r\n"),
        "empty request body": ("image/png", b""),
    }
    for pattern, (content_type, body) in cases.items():
        response = client.post("/v1/scan", content=body, headers={"content-type": content_type})
        refused(response, 400, pattern)


def test_a_malformed_body_is_logged_once_with_its_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    with caplog.at_level(logging.WARNING):
        refused(client.post("/v1/scan", content=b"garbage", headers=headers), 400, "malformed")
        refused(client.post("/v1/scan", content=b"", headers=headers), 400, "ends before")
    (record,) = caplog.records  # python-multipart's own bare warning is not among them
    assert record.name == "facescan.serve" and record.levelname == "WARNING"
    assert record.getMessage().startswith(
        "POST /v1/scan from testclient:50000: malformed multipart body: Expected boundary"
    )


def test_oversized_requests_are_413(model: Path) -> None:
    with served(model, max_request_bytes=4000, max_buffered_bytes=4000, max_files=2) as c:
        too_big = {"content-type": "image/png"}
        refused(c.post("/v1/scan", content=b"x" * 4001, headers=too_big), 413, "4,000 bytes")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield from [b"x" * 1000] * 5

        refused(c.post("/v1/scan", content=chunks(), headers=too_big), 413, "4,000 bytes")
        three = {f"{i}.png": red_png(size=4) for i in range(3)}
        refused(post_files(c, three), 413, "more than 2 images")
        assert c.post("/v1/scan", content=b"x" * 4000, headers=too_big).status_code == 200
        values = metric_values(c.get("/metrics").text)
        assert (
            values[("facescan_http_requests_total", (("route", "/v1/scan"), ("status", "413")))]
            == 3
        )


def test_a_full_queue_is_503_with_retry_after(model: Path) -> None:
    with served(model, queue=2, max_files=2) as c:
        response = post_files(c, {"a.png": red_png(), "b.png": red_png()})
        assert response.status_code == 200  # two fit
        refused(post_files(c, {f"{i}.png": red_png() for i in range(3)}), 413, "more than 2")
    # Two requests at once, deterministically: the first holds what the second would need.
    admission = Admission(max_images=2, max_bytes=100)
    with admission.hold() as first:
        first.take_images(2)
        first.take_bytes(60)
        with admission.hold() as second, pytest.raises(HttpError) as busy:
            second.arrive()  # before its body is read
        assert busy.value.status == 503 and busy.value.headers == {"Retry-After": "1"}
        with admission.hold() as third, pytest.raises(HttpError) as over:
            third.take_bytes(41)
        assert over.value.status == 503 and "bytes of uploads held" in over.value.message
    assert (admission.images, admission.bytes) == (0, 0)  # released with the requests
    with (
        admission.hold() as alone,
        pytest.raises(HttpError, match=r"queue full \(1 of --queue 2 images held\)"),
    ):
        alone.take_images(1)
        alone.take_images(2)


def test_an_internal_error_is_a_json_500_and_the_service_goes_on(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served(model) as c:
        service = c.app.state.service  # type: ignore[attr-defined]
        real = service.scan

        async def broken(uploads: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(service, "scan", broken)
        unraised = TestClient(c.app, raise_server_exceptions=False)
        refused(post_files(unraised, {"a.png": red_png()}), 500, "internal error: RuntimeError")
        monkeypatch.setattr(service, "scan", real)
        assert post_files(c, {"a.png": red_png()}).json()["results"][0]["status"] == "ok"
        assert service.admission.images == 0 and service.admission.bytes == 0


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    refused(client.get("/nowhere"), 404, "Not Found")
    refused(client.get("/v1/scan"), 405, "Method Not Allowed")


# --- access ------------------------------------------------------------------------------------


def test_auth_is_off_without_tokens_and_on_with_them(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n\n  second-token  \n")
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    with served(model, token_file=tokens) as c:
        image = {"a.png": red_png()}
        response = post_files(c, image)
        refused(response, 401, "bearer token")
        assert response.headers["www-authenticate"] == "Bearer"
        refused(post_files(c, image, headers={"Authorization": "Bearer wrong"}), 401, "token")
        refused(post_files(c, image, headers={"Authorization": "Basic first-token"}), 401, "")
        for token in ("first-token", "second-token", "from-the-environment"):
            headers = {"Authorization": f"Bearer {token}"}
            assert post_files(c, image, headers=headers).status_code == 200
        assert c.get("/metrics").status_code == 401
        headers = {"Authorization": "Bearer first-token"}
        assert c.get("/metrics", headers=headers).status_code == 200
        for open_path in ("/healthz", "/readyz", "/openapi.json", "/", "/review.js"):
            assert c.get(open_path).status_code == 200, open_path
    monkeypatch.delenv(TOKEN_ENV)
    with served(model) as c:
        assert post_files(c, {"a.png": red_png()}).status_code == 200


def test_token_comparison() -> None:
    tokens = [b"abc", b"def"]
    assert token_matches("Bearer def", tokens) and token_matches("bearer abc", tokens)
    assert not token_matches("Bearer abcd", tokens) and not token_matches("Bearer ", tokens)
    assert not token_matches("abc", tokens) and not token_matches("Token abc", tokens)


def test_unusable_token_files_are_refused(tmp_path: Path, model: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n \n")
    options = ServeOptions(ScanSettings.of(engine="batcher"), token_file=empty)
    with pytest.raises(Exception, match="holds no token"):
        options.tokens()
    with pytest.raises(Exception, match="cannot read it"):
        replace(options, token_file=tmp_path / "missing").tokens()


def test_cors_is_off_unless_configured(client: TestClient, model: Path) -> None:
    origin = {"Origin": "https://moderation.example"}
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    with served(model, cors_origins=("https://moderation.example",)) as c:
        allowed = c.get("/healthz", headers=origin).headers
        assert allowed["access-control-allow-origin"] == "https://moderation.example"
        other = c.get("/healthz", headers={"Origin": "https://elsewhere.example"}).headers
        assert "access-control-allow-origin" not in other
        preflight = c.options(
            "/v1/scan",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200


def test_uploads_never_touch_the_disk_unless_kept(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Starlette's own form parser spools a file part over 1 MB into tempfile.TemporaryFile
    # (no name on Linux, so it is watched here rather than looked for in a folder).
    temporary: list[object] = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        real = getattr(tempfile, name)
        monkeypatch.setattr(
            tempfile, name, lambda *a, _r=real, **k: temporary.append(a) or _r(*a, **k)
        )
    large = png_bytes(noise_image(900))
    assert len(large) > 2**20
    with served(model) as c:
        assert post_files(c, {"large.png": large}).json()["results"][0]["status"] == "ok"
        raw = {"content-type": "image/png"}
        assert c.post("/v1/scan", content=large, headers=raw).json()["results"][0]["score"]
    assert temporary == []
    kept = tmp_path / "kept"
    kept.mkdir()
    with served(model, keep=kept) as c:
        rows = post_files(c, {"../../up.png": large, "x.evil/../a": b"text"}).json()["results"]
    sha = rows[0]["sha256"]
    assert (kept / f"{sha}.png").read_bytes() == large
    assert len(list(kept.iterdir())) == 2  # the unreadable upload is kept too, as .bin
    assert temporary == []


def test_the_command_line_loads_no_server_code() -> None:
    """`facescan --help` (and a scan) must not pay for Starlette, uvicorn or prometheus."""
    code = (
        "import json, sys, scanner.cli; print(json.dumps([m.split('.')[0] for m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = set(json.loads(done.stdout))
    assert "scanner" in loaded and "typer" in loaded
    assert not loaded & {"starlette", "uvicorn", "prometheus_client", "python_multipart"}


def test_options_name_what_is_wrong(tmp_path: Path) -> None:
    options = ServeOptions(
        ScanSettings.of(batch_size=0, batch_wait_ms=-1, engine="batcher"),
        queue=0,
        port=70000,
        keep=tmp_path / "missing",
    )
    with pytest.raises(Exception) as problems:
        options.check()
    for text in ("--batch-size", "--queue", "--port", "--batch-wait-ms", "--keep"):
        assert text in str(problems.value)
