"""TLS for the loopback server: a throwaway CA and a certificate for 127.0.0.1 / localhost.

azure-core refuses bearer tokens over plain http, so the emulator must speak https; clients trust the
CA through `connection_verify=<ca_bundle>`.
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsMaterial:
    ca_bundle: str
    context: ssl.SSLContext


def make_tls() -> TlsMaterial:
    ca = trustme.CA(organization_name="vmss-autoheal ARM emulator")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    leaf.configure_cert(context)
    folder = Path(tempfile.mkdtemp(prefix="arm-emulator-"))
    atexit.register(shutil.rmtree, folder, True)
    ca_path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return TlsMaterial(ca_bundle=str(ca_path), context=context)
