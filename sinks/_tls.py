"""A throwaway certificate authority for the local sinks (trustme): server certificates for 127.0.0.1."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Self

HOSTS = ("127.0.0.1", "localhost", "::1")


class LocalTLS:
    """A CA, a server certificate for the loopback names, and the CA as a PEM file (removed by `close()`)."""

    def __init__(self) -> None:
        import trustme  # dev dependency: only the sinks need it

        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert(*HOSTS)
        self._dir = Path(tempfile.mkdtemp(prefix="autoheal-sinks-"))
        self.ca_file = str(self._dir / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def bundle_with_public_roots(self, path: str | Path) -> str:
        """Write the public roots (certifi) plus this CA to `path`: a REQUESTS_CA_BUNDLE that trusts both."""
        import certifi

        target = Path(path)
        target.write_text(Path(certifi.where()).read_text() + "\n" + Path(self.ca_file).read_text())
        return str(target)

    @property
    def directory(self) -> Path:
        return self._dir

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
