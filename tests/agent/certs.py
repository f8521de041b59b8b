"""A throwaway certificate authority for TLS tests, made with the openssl command line."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def _openssl(*args: str, cwd: Path) -> None:
    """Run openssl quietly; a failure shows its output."""
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {done.stderr}")


@dataclass(frozen=True)
class Pair:
    """A certificate and its key."""

    cert: Path
    key: Path


class CA:
    """A private CA (P-256, valid one day) issuing server and client certificates."""

    def __init__(self, workdir: Path) -> None:
        """Create the CA's key and self-signed certificate in ``workdir``."""
        if shutil.which("openssl") is None:
            pytest.fail("openssl is not installed: apt-get install openssl")
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = workdir / "ca.pem", workdir / "ca.key"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "1",
                 "-subj", "/CN=hourglass-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=workdir)

    def issue(self, cn: str, *, server: bool = False) -> Pair:
        """A certificate for ``cn``: a server one names 127.0.0.1, a client one is for TLS auth."""
        key, csr, cert = (self.dir / f"{cn}.{ext}" for ext in ("key", "csr", "pem"))
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}", cwd=self.dir)
        ext = self.dir / f"{cn}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                       if server else "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(ext),
                 cwd=self.dir)
        return Pair(cert, key)
