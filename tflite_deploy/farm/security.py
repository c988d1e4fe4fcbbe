"""TLS for a lab farm: Dask's ``Security`` with one certificate per host, signed by the lab's CA.

A farm worker runs shell commands on phones, so in a lab every connection (client -> scheduler,
worker -> scheduler, worker <-> worker) is mutual TLS: each side shows a certificate signed by the
lab CA and refuses a peer that does not. One machine needs none of this: its embedded cluster
listens on 127.0.0.1 only. See the README's "farm" section for making the CA and host certificates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

from tflite_deploy.errors import UserError

ENV = {"ca": "TFLITE_DEPLOY_TLS_CA", "cert": "TFLITE_DEPLOY_TLS_CERT", "key": "TFLITE_DEPLOY_TLS_KEY"}


def lab_security(ca: str | Path, cert: str | Path, key: str | Path) -> Any:
    """A ``distributed.security.Security`` for this host: its cert/key for every role, the lab CA."""
    from distributed.security import Security

    files = {"CA certificate": Path(ca), "host certificate": Path(cert), "host key": Path(key)}
    missing = [f"{what} {p}" for what, p in files.items() if not p.is_file()]
    if missing:
        raise UserError(f"TLS set-up: {', '.join(missing)} not found. Give --tls-ca, --tls-cert and --tls-key "
                        "(or TFLITE_DEPLOY_TLS_CA/_CERT/_KEY): the lab CA and this host's certificate and key.")
    c, k = str(cert), str(key)
    return Security(require_encryption=True, tls_ca_file=str(ca),
                    tls_client_cert=c, tls_client_key=k, tls_scheduler_cert=c, tls_scheduler_key=k,
                    tls_worker_cert=c, tls_worker_key=k)


def security_from_options(ca: Optional[str], cert: Optional[str], key: Optional[str],
                          environ: Optional[Mapping[str, str]] = None) -> Any:
    """Security from CLI options or the environment; None when none of the three is given."""
    env = os.environ if environ is None else environ
    ca, cert, key = (ca or env.get(ENV["ca"]), cert or env.get(ENV["cert"]), key or env.get(ENV["key"]))
    if not (ca or cert or key):
        return None
    if not (ca and cert and key):
        raise UserError("TLS needs all three of --tls-ca, --tls-cert and --tls-key (the lab CA, this host's "
                        "certificate and its key); only some were given.")
    return lab_security(ca, cert, key)
