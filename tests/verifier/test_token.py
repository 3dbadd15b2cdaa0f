"""Deployment tokens: issued for exactly what was verified, refused for anything else."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schedcpd.verifier import token
from schedcpd.verifier.token import TokenError

KERNEL = "7.3.4+deb13-cloud-amd64"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCHEDCP_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def obj(tmp_path: Path) -> Path:
    p = tmp_path / "sched.bpf.o"
    p.write_bytes(b"\x7fELF pretend object " * 10)
    return p


def issue(obj: Path, params: dict[str, object] | None = None, **kw: object) -> str:
    return token.issue(token.sha256_file(obj), params or {"slice_us": 5000},
                       "static=pass,kernel=pass,dynamic=pass", KERNEL, **kw)  # type: ignore[arg-type]


def test_key_is_created_once_root_only(state: Path) -> None:
    k1 = token.load_or_create_key()
    path = token.key_path()
    assert path.is_relative_to(state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    k2 = token.load_or_create_key()
    assert k1.private_bytes_raw() == k2.private_bytes_raw()


def test_key_readable_by_others_is_refused() -> None:
    token.load_or_create_key()
    os.chmod(token.key_path(), 0o644)
    with pytest.raises(TokenError, match="readable by others"):
        token.load_or_create_key()


def test_valid_token_round_trip(obj: Path) -> None:
    t = issue(obj)
    assert t.startswith("schedcp1.") and len(t) < 600 and "\n" not in t
    claims = token.verify(t, obj, {"slice_us": "5000"}, KERNEL)
    assert claims.params == {"slice_us": "5000"} and claims.kernel == KERNEL
    assert token.require_valid(t, obj, {"slice_us": 5000}, KERNEL) == claims


def test_tampered_object_is_refused(obj: Path) -> None:
    t = issue(obj)
    obj.write_bytes(obj.read_bytes() + b"\0")
    with pytest.raises(TokenError, match="object does not match"):
        token.require_valid(t, obj, {"slice_us": 5000}, KERNEL)


def test_changed_parameters_are_refused(obj: Path) -> None:
    t = issue(obj)
    with pytest.raises(TokenError, match="slice_us"):
        token.verify(t, obj, {"slice_us": 6000}, KERNEL)
    with pytest.raises(TokenError, match="extra"):
        token.verify(t, obj, {"slice_us": 5000, "extra": 1}, KERNEL)


def test_expired_token_is_refused(obj: Path) -> None:
    t = issue(obj, ttl_s=60, now=1000.0)
    token.verify(t, obj, {"slice_us": 5000}, KERNEL, now=1059.0)
    with pytest.raises(TokenError, match="expired"):
        token.verify(t, obj, {"slice_us": 5000}, KERNEL, now=1060.0)


def test_other_kernel_is_refused(obj: Path) -> None:
    with pytest.raises(TokenError, match="issued for kernel"):
        token.verify(issue(obj), obj, {"slice_us": 5000}, "6.16.12+deb13-cloud-amd64")


def test_tampered_payload_and_wrong_key_are_refused(obj: Path) -> None:
    t = issue(obj)
    head, body, sig = t.split(".")
    forged = token._b64(token._unb64(body).replace(b"5000", b"9000"))
    with pytest.raises(TokenError, match="bad signature"):
        token.verify(f"{head}.{forged}.{sig}", obj, {"slice_us": 9000}, KERNEL)
    other = token.issue(token.sha256_file(obj), {"slice_us": 5000}, "x", KERNEL,
                        key=Ed25519PrivateKey.generate())
    with pytest.raises(TokenError, match="bad signature"):
        token.verify(other, obj, {"slice_us": 5000}, KERNEL)
    with pytest.raises(TokenError, match="not a schedcp"):
        token.verify("garbage", obj, {}, KERNEL)


def test_deploy_guard_without_token(obj: Path) -> None:
    with pytest.raises(TokenError, match="no verifier token"):
        token.require_valid(None, obj, {}, KERNEL)


def test_library_policy_token_binds_defaults(obj: Path) -> None:
    t = issue(obj, {"slice_us": 20000}, policy="fifo")
    token.verify(t, obj, {}, KERNEL)  # the default is what was verified
    with pytest.raises(TokenError, match="slice_us"):
        token.verify(t, obj, {"slice_us": 1000}, KERNEL)


@pytest.mark.parametrize(("given", "canon"), [
    ({"a": True, "b": 3, "c": "0x10", "d": "false", "e": "name"},
     {"a": "1", "b": "3", "c": "16", "d": "0", "e": "name"}),
])
def test_canonical_params(given: dict[str, object], canon: dict[str, str]) -> None:
    assert token.canonical_params(given) == canon
