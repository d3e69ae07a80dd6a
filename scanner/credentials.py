"""C2PA Content Credentials, read and verified with the C2PA project's own library.

`read_credentials(data, mime, trust)` turns a file's bytes into a small `Credentials` record:
who made the image (claim generator, signer, signing time), what was done (actions with their
IPTC digital source type, ingredients) and whether the credential holds up:

- "valid": signature and content hashes check out and the signer chains to a trust anchor the
  user passed (`TrustSettings`);
- "untrusted": signature and hashes check out, but the signer is not on the trust list (or no
  trust list was given: the library ships none, and nothing is ever fetched);
- "invalid": the credential fails validation, e.g. the pixels changed after signing
  (`assertion.dataHash.mismatch`). A tampered credential is a finding, never evidence;
- "unreadable": the manifest cannot be parsed (corrupt, truncated, hostile); `reason` says why.

Only a "valid" credential that declares AI creation proves it (`proves_ai_creation`). An AI
*edit* of an ingredient not declared AI (generative fill on a photo) is evidence of an edit,
not of a generated image (`ai_edit_of_real_ingredient`).

Reading is cheap for the photos that matter most, the unsigned ones: the library is only called
when `provenance.has_c2pa_manifest` finds a manifest store marker. The `c2pa-python` package
(the `[provenance]` extra) is imported on first use; `available()` says whether it can be.

The library runs offline and bounded: remote manifests, OCSP and every other network host are
switched off in the settings, Brotli-compressed manifests are capped, and any failure of the
library on hostile bytes costs only the credential ("unreadable"), never the row.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scanner import provenance

INSTALL_HINT = "install facescan[provenance]"
# What a row says when the byte scan found a manifest but the library is not installed.
NOT_VERIFIED = f"C2PA found but not verified ({INSTALL_HINT})"

Validation = Literal["valid", "untrusted", "invalid", "unreadable"]
# The library's validation_state: "Trusted" needs a trust anchor; "Valid" means the only
# failures are about trust (signingCredential.untrusted).
_STATES: dict[str, Validation] = {"Trusted": "valid", "Valid": "untrusted", "Invalid": "invalid"}
SOURCE_TYPES_AI = frozenset(t.lower() for t in provenance.AI_SOURCE_TYPES)
# How the short line names a digital source type (others appear by their IPTC name).
SOURCE_PHRASES = {
    "trainedAlgorithmicMedia": "created by trained model",
    "compositeWithTrainedAlgorithmicMedia": "created as composite with trained model",
    "digitalCapture": "captured by camera",
    "computationalCapture": "captured by camera (computational)",
}
MAX_ITEMS = 16  # actions, ingredients, status codes kept per credential (hostile stores: more)
MAX_DEPTH = 8  # parent manifests followed back to the creation
MAX_REASON = 160
# Library settings for every read. c2pa-python's defaults would fetch a manifest from the URL a
# file names (remote_manifest_fetch: measured, it did); an empty host list forbids every fetch.
_SETTINGS: dict[str, Any] = {
    "verify": {
        "verify_after_reading": True,
        "verify_trust": True,
        "remote_manifest_fetch": False,
        "ocsp_fetch": False,
    },
    "core": {
        "allowed_network_hosts": [],
        "max_decompressed_manifest_size_in_mb": 32,  # Brotli bomb guard (the library's default)
        "decode_identity_assertions": False,  # CAWG identity is not reported: parse less
    },
}
# Pillow format names (DecodedImage.format) to the MIME types the library knows.
MIME_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
}


@dataclass(frozen=True)
class TrustSettings:
    """The certificates a signer must chain to for its credential to count as "valid"."""

    anchors: str  # PEM bundle of trusted root (or intermediate) certificates

    @classmethod
    def from_files(cls, *paths: str | os.PathLike[str]) -> TrustSettings:
        """Trust anchors from PEM files (`--c2pa-trust FILE`), checked now so that a bad file
        stops the scan before it starts. Raises ValueError naming the file."""
        if not paths:
            raise ValueError("no trust list file given")
        return cls("".join(_read_pem(Path(path)) for path in paths))


@dataclass(frozen=True)
class Action:
    action: str  # "created", "opened", "edited", ... (the "c2pa." prefix dropped)
    source_type: str = ""  # IPTC digital source type, short name ("trainedAlgorithmicMedia")


@dataclass(frozen=True)
class Ingredient:
    title: str
    relationship: str  # "parentOf" (what this image was made from), "componentOf", ...
    source_type: str = ""  # how the ingredient's own credential says it was made, if it has one


@dataclass(frozen=True)
class Credentials:
    """The active manifest of one file, as the library read and validated it."""

    validation: Validation
    reason: str = ""  # why an "unreadable" credential could not be read
    status_codes: tuple[str, ...] = ()  # the library's failure codes (assertion.dataHash.mismatch)
    claim_generator: str = ""
    signer: str = ""  # organisation of the signing certificate (what Content Credentials show)
    signer_name: str = ""  # common name of the signing certificate
    signing_time: str = ""  # from a trusted timestamp, when the signature has one
    actions: tuple[Action, ...] = ()
    ingredients: tuple[Ingredient, ...] = ()
    # What the credential declares (kept for an invalid one too, to say what it claimed):
    origin: str = ""  # source type of the creation it goes back to (its own, or a parent's)
    ai_edit_of_real_ingredient: bool = False  # AI used on an ingredient not declared AI

    @property
    def declares_ai_creation(self) -> bool:
        """Created by a trained model: trainedAlgorithmicMedia, or a composite with such parts
        that has no parent image (an AI image edited later keeps its parent's origin)."""
        return _is_ai(self.origin)

    @property
    def intact(self) -> bool:
        """Signature and hashes check out (trusted signer or not)."""
        return self.validation in ("valid", "untrusted")

    @property
    def proves_ai_creation(self) -> bool:
        """The one certain case: a trusted, intact credential that declares AI creation."""
        return self.validation == "valid" and self.declares_ai_creation

    def summary(self) -> str:
        """One short line for a report cell (no "; ", the evidence separator)."""
        if self.validation == "unreadable":
            return f"C2PA: unreadable credential ({self.reason})"
        made = self._made()
        signed = f"signed by {self.signer or self.signer_name or 'unknown signer'}"
        if self.validation == "invalid":
            failures = ", ".join(self.status_codes[:3]) or "failed validation"
            return f"C2PA: INVALID credential ({failures}), not evidence: claims {made}, {signed}"
        verdict = "valid" if self.validation == "valid" else "untrusted signer"
        return f"C2PA: {made}, {signed}, {verdict}"

    def to_dict(self) -> dict[str, Any]:
        """For JSON reports: plain types only."""
        return dataclasses.asdict(self) | {"declares_ai_creation": self.declares_ai_creation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credentials:
        """The record `to_dict` wrote (the result cache keeps it as JSON). Raises KeyError,
        TypeError or ValueError on a record that is not one."""
        if data["validation"] not in (*_STATES.values(), "unreadable"):
            raise ValueError(f"unknown validation {data['validation']!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["status_codes"] = tuple(values.get("status_codes", ()))
        values["actions"] = tuple(Action(**a) for a in values.get("actions", ()))
        values["ingredients"] = tuple(Ingredient(**i) for i in values.get("ingredients", ()))
        return cls(**values)

    def _made(self) -> str:
        if self.ai_edit_of_real_ingredient:
            edit = next((a for a in self.actions if _is_ai(a.source_type)), None)
            how = f"AI edit ({edit.source_type})" if edit else "AI edit"
            parent = next((i.title for i in self.ingredients if i.relationship == "parentOf"), "")
            return f"{how} of {parent}" if parent else how
        if self.origin:
            return SOURCE_PHRASES.get(self.origin, f"created ({self.origin})")
        return f"made with {self.claim_generator}" if self.claim_generator else "no creation info"


def available() -> bool:
    """Whether c2pa-python is installed and its native library loads."""
    return _load_library() is not None


def mime_type(pillow_format: str) -> str:
    """The MIME type to pass for a Pillow format name ("" lets the library guess)."""
    return MIME_TYPES.get(pillow_format.upper(), "")


def read_credentials(
    data: bytes, mime: str, trust: TrustSettings | None = None
) -> Credentials | None:
    """The file's C2PA credential, or None when it has none. `data` is the whole file, `mime`
    its type (`mime_type(format)`; the library checks it against the bytes). Never raises on
    hostile bytes; raises ImportError only when the [provenance] extra is missing."""
    if not provenance.has_c2pa_manifest(data):
        return None
    c2pa = _load_library()
    if c2pa is None:
        raise ImportError(f"reading C2PA credentials needs c2pa-python: {INSTALL_HINT}")
    try:
        with c2pa.Reader(mime or None, io.BytesIO(data), context=_context(os.getpid(), trust)) as r:
            store = json.loads(r.json())
        return _from_store(store)
    except Exception as e:  # whatever hostile bytes make the library or the parse raise
        return Credentials("unreadable", reason=provenance.clean(e, MAX_REASON) or type(e).__name__)


@functools.cache
def _load_library() -> Any:
    try:
        import c2pa
    except Exception:  # ImportError, or OSError when the bundled native library cannot load
        return None
    return c2pa


# One library Context per process and trust list: building one parses the trust anchors, and
# the library lets threads share it (each read only borrows it). A forked child builds its own.
@functools.cache
def _context(pid: int, trust: TrustSettings | None) -> Any:
    settings = dict(_SETTINGS)
    if trust is not None:
        settings["trust"] = {"trust_anchors": trust.anchors}
    return _load_library().Context.from_dict(settings)


def _read_pem(path: Path) -> str:
    try:
        text = path.read_text("ascii", errors="replace")
    except OSError as e:
        raise ValueError(f"cannot read trust list {path}: {e.strerror or e}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{path}: not a PEM certificate file (no BEGIN CERTIFICATE line)")
    if available():
        _check_certificates(path, text)
    return text if text.endswith("\n") else text + "\n"


def _check_certificates(path: Path, text: str) -> None:
    """Every certificate parses, and the library takes the file: a certificate that does not
    parse would otherwise be skipped silently, its signers reported "untrusted"."""
    from cryptography import x509  # a requirement of c2pa-python

    try:
        x509.load_pem_x509_certificates(text.encode("ascii", "replace"))
        _context(os.getpid(), TrustSettings(text))
    except Exception as e:  # cryptography's ValueError, or the library's own parse error
        raise ValueError(f"{path}: not a usable trust list: {e}") from None


def _from_store(store: dict[str, Any]) -> Credentials:
    state = store.get("validation_state")
    validation = _STATES.get(state) if isinstance(state, str) else None
    if validation is None:
        return Credentials("unreadable", reason=f"unknown validation state {state!r}"[:MAX_REASON])
    manifests = _dict(store.get("manifests"))
    lineage = _lineage(manifests, store.get("active_manifest"))
    if not lineage:
        return Credentials("unreadable", reason="no active manifest in the store")
    active, signature = lineage[0], _dict(lineage[0].get("signature_info"))
    origin = _origin(lineage)
    return Credentials(
        validation=validation,
        status_codes=_failure_codes(_dict(store.get("validation_results"))),
        claim_generator=_generator(active),
        signer=provenance.clean(signature.get("issuer") or ""),
        signer_name=provenance.clean(signature.get("common_name") or ""),
        signing_time=provenance.clean(signature.get("time") or ""),
        actions=tuple(_actions(active))[:MAX_ITEMS],
        ingredients=tuple(_ingredients(manifests, active))[:MAX_ITEMS],
        origin=origin,
        ai_edit_of_real_ingredient=not _is_ai(origin) and _ai_used(manifests, lineage),
    )


def _lineage(manifests: dict[str, Any], label: object) -> list[dict[str, Any]]:
    """The manifest `label` and its parents (each one's parentOf ingredient's manifest), newest
    first: bounded, and a hostile store's cycle ends it."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    while isinstance(label, str) and label in manifests and label not in seen:
        if len(chain) == MAX_DEPTH:
            break
        seen.add(label)
        chain.append(_dict(manifests[label]))
        parents = (i for i in _raw_ingredients(chain[-1]) if i.get("relationship") == "parentOf")
        label = next(parents, {}).get("active_manifest")
    return chain


def _origin(lineage: list[dict[str, Any]]) -> str:
    """The digital source type of the creation the lineage goes back to ("" if unknown)."""
    created = (a for m in lineage for a in _actions(m) if a.action == "created")
    return next((a.source_type for a in created if a.source_type), "")


def _ai_used(manifests: dict[str, Any], lineage: list[dict[str, Any]]) -> bool:
    """An edit along the lineage declares AI, or an AI-created component was placed in."""
    if any(_is_ai(a.source_type) for m in lineage for a in _actions(m)):
        return True
    components = (
        i for m in lineage for i in _raw_ingredients(m) if i.get("relationship") == "componentOf"
    )
    return any(_is_ai(_origin(_lineage(manifests, i.get("active_manifest")))) for i in components)


def _actions(manifest: dict[str, Any]) -> Iterator[Action]:
    for assertion in _list(manifest.get("assertions"))[: MAX_ITEMS * 4]:
        assertion = _dict(assertion)
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in _list(_dict(assertion.get("data")).get("actions"))[:MAX_ITEMS]:
            action = _dict(action)
            name = str(action.get("action", "")).removeprefix("c2pa.")
            source = str(action.get("digitalSourceType") or "").rstrip("/").rsplit("/", 1)[-1]
            yield Action(provenance.clean(name), provenance.clean(source))


def _ingredients(manifests: dict[str, Any], manifest: dict[str, Any]) -> Iterator[Ingredient]:
    for raw in _raw_ingredients(manifest):
        origin = _origin(_lineage(manifests, raw.get("active_manifest")))
        title, relationship = raw.get("title") or "", raw.get("relationship") or ""
        yield Ingredient(provenance.clean(title), provenance.clean(relationship), origin)


def _raw_ingredients(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [_dict(i) for i in _list(manifest.get("ingredients"))[:MAX_ITEMS]]


def _generator(manifest: dict[str, Any]) -> str:
    info = _dict(next(iter(_list(manifest.get("claim_generator_info"))), None))
    if info:  # claim v2: {"name": ..., "version": ...}
        return provenance.clean(f"{info.get('name') or ''} {info.get('version') or ''}")
    return provenance.clean(manifest.get("claim_generator") or "")  # claim v1: one string


def _failure_codes(results: dict[str, Any]) -> tuple[str, ...]:
    """Failure codes of the active manifest and of its ingredients, first seen first."""
    groups = [_dict(results.get("activeManifest"))] + [
        _dict(_dict(delta).get("validationDeltas"))
        for delta in _list(results.get("ingredientDeltas"))[:MAX_ITEMS]
    ]
    codes = (provenance.clean(_dict(f).get("code", "")) for g in groups for f in _failures(g))
    return tuple(dict.fromkeys(c for c in codes if c))[:MAX_ITEMS]


def _failures(group: dict[str, Any]) -> list[Any]:
    return _list(group.get("failure"))[:MAX_ITEMS]


def _is_ai(source_type: str) -> bool:
    return source_type.lower() in SOURCE_TYPES_AI


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
