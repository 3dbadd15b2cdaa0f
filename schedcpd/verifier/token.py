"""Deployment tokens: the Verifier's Ed25519 signature over exactly what it verified.

A token binds the object's SHA-256, the parameters it was verified with, the verdict's
summary, the kernel release and an expiry. Deployment calls ``require_valid`` and
refuses anything else: a changed byte in the object, a changed parameter, another kernel,
an expired token or a signature from another key.

The signing key lives in ``<state_dir>/verifier/signing.key`` (raw Ed25519, mode 0600 in
a 0700 directory), created on first use. Format: ``schedcp1.<payload>.<signature>``, both
base64url without padding; the payload is compact JSON.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schedcpd import paths

PREFIX = "schedcp1"
DEFAULT_TTL_S = 7 * 24 * 3600


class TokenError(ValueError):
    """The token does not allow deploying this object with these parameters."""


def key_path() -> Path:
    return paths.state_dir() / "verifier" / "signing.key"


def load_or_create_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The signing key; created atomically (O_EXCL, 0600) the first time."""
    path = path or key_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process created meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> Ed25519PrivateKey:
    st = path.stat()
    if st.st_mode & 0o077:
        raise TokenError(f"{path} is readable by others (mode {st.st_mode & 0o777:o}): "
                         "refusing to use it; it must be 0600")
    if os.geteuid() == 0 and st.st_uid != 0:
        raise TokenError(f"{path} is not owned by root: refusing to use it")
    raw = path.read_bytes()
    if len(raw) != 32:
        raise TokenError(f"{path} is not a raw Ed25519 key (32 bytes)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def key_id(pub: Ed25519PublicKey) -> str:
    return hashlib.sha256(pub.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def canonical_params(params: Mapping[str, object]) -> dict[str, str]:
    """Parameters as the loader writes them: ints in decimal, bools as 0/1, strings as is."""
    out = {}
    for k, v in params.items():
        if isinstance(v, bool):
            out[k] = str(int(v))
        elif isinstance(v, int):
            out[k] = str(v)
        else:
            s = str(v)
            low = s.lower()
            if low in ("true", "false"):
                out[k] = "1" if low == "true" else "0"
            else:
                try:
                    out[k] = str(int(s, 0))
                except ValueError:
                    out[k] = s
    return dict(sorted(out.items()))


def sha256_file(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise TokenError(f"cannot read the object {path}: {exc}") from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    sha256: str
    params: dict[str, str]
    verdict: str
    kernel: str
    issued: int
    expires: int
    key_id: str
    policy: str = ""


def issue(object_sha256: str, params: Mapping[str, object], verdict_summary: str,
          kernel_release: str, *, policy: str = "", ttl_s: int = DEFAULT_TTL_S,
          key: Ed25519PrivateKey | None = None, now: float | None = None) -> str:
    key = key or load_or_create_key()
    t = int(now if now is not None else time.time())
    payload = {"v": 1, "sha256": object_sha256, "params": canonical_params(params),
               "verdict": verdict_summary, "kernel": kernel_release, "policy": policy,
               "iat": t, "exp": t + ttl_s, "kid": key_id(key.public_key())}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    sig = key.sign(f"{PREFIX}.{body}".encode())
    return f"{PREFIX}.{body}.{_b64(sig)}"


def decode(token: str, pub: Ed25519PublicKey) -> TokenClaims:
    """The claims, if the signature is ours; raises TokenError otherwise."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("not a schedcp deployment token")
    try:
        sig, raw = _unb64(parts[2]), _unb64(parts[1])
        pub.verify(sig, f"{parts[0]}.{parts[1]}".encode())
    except (InvalidSignature, ValueError):
        raise TokenError("bad signature: the token was not issued by this verifier's key "
                         "or was altered") from None
    try:
        d: dict[str, Any] = json.loads(raw)
        return TokenClaims(str(d["sha256"]), {str(k): str(v) for k, v in d["params"].items()},
                           str(d["verdict"]), str(d["kernel"]), int(d["iat"]), int(d["exp"]),
                           str(d["kid"]), str(d.get("policy", "")))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenError("the token's payload is malformed") from None


def verify(token: str, object_path: Path, params: Mapping[str, object],
           kernel_release: str | None = None, *, key: Ed25519PrivateKey | None = None,
           now: float | None = None) -> TokenClaims:
    """Check ``token`` against the object, parameters and (if given) the kernel release."""
    key = key or load_or_create_key()
    claims = decode(token, key.public_key())
    t = now if now is not None else time.time()
    if t >= claims.expires:
        raise TokenError(f"the token expired at {time.ctime(claims.expires)}")
    digest = sha256_file(object_path)
    if digest != claims.sha256:
        raise TokenError(f"the object does not match the token: sha256 {digest[:16]}... "
                         f"but the verifier passed {claims.sha256[:16]}...")
    given = canonical_params(_with_policy_defaults(claims.policy, params))
    if given != claims.params:
        changed = sorted(k for k in set(given) | set(claims.params)
                         if given.get(k) != claims.params.get(k))
        raise TokenError(f"the parameters differ from the verified ones: {', '.join(changed)}"
                         f" (verified: {claims.params})")
    if kernel_release is not None and kernel_release != claims.kernel:
        raise TokenError(f"the token was issued for kernel {claims.kernel}, "
                         f"not {kernel_release}")
    if "FAIL" in claims.verdict:
        raise TokenError(f"the verdict in the token is not a pass: {claims.verdict}")
    return claims


def _with_policy_defaults(policy: str, params: Mapping[str, object]) -> Mapping[str, object]:
    """A library policy's token binds every tunable, defaults included."""
    if not policy:
        return params
    from schedcpd.bpf.policy import PolicyError, find_policy
    try:
        return find_policy(policy).resolve_params(params)
    except PolicyError as exc:
        raise TokenError(str(exc)) from exc


def require_valid(token: str | None, object_path: Path, params: Mapping[str, object],
                  kernel_release: str | None) -> TokenClaims:
    """The deploy guard: returns the claims or raises TokenError saying why not."""
    if not token:
        raise TokenError(f"refusing to deploy {object_path.name}: it has no verifier token "
                         "(run `schedcpctl verify` first)")
    try:
        return verify(token, object_path, params, kernel_release)
    except TokenError as exc:
        raise TokenError(f"refusing to deploy {object_path.name}: {exc}") from None
