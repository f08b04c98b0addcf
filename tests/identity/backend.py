"""A test "backend" of an embedding application: an RSA key, its JWKS file, and minted tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class Backend:
    def __init__(self, folder: Path, kid: str = "backend-1") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_file = folder / "jwks.json"
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}))

    def mint(self, sub: str, ttl: float = 300, **claims: Any) -> str:
        now = time.time()
        body = {"sub": sub, "iat": int(now), "exp": int(now + ttl), **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})

    def mint_expiring_in(self, sub: str, seconds: float, **claims: Any) -> tuple[str, float]:
        """A token whose `exp` is at least `seconds` away (whole seconds), and that `exp`."""
        exp = int(time.time() + seconds) + 1
        token = jwt.encode(
            {"sub": sub, "iat": int(time.time()), "exp": exp, **claims},
            self.key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )
        return token, float(exp)


def old_and_new(tmp_path: Path) -> tuple[Backend, Backend, Path]:
    """Two applications' key sets, and a JWKS file that publishes the old one's keys: the
    set-up of tests where an application rotates its signing keys."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old, new = Backend(tmp_path / "old", "old"), Backend(tmp_path / "new", "new")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(old.jwks_file.read_text())
    return old, new, jwks
