"""TLS/mTLS credentials for servers and channels, from SecuritySettings."""

from __future__ import annotations

import grpc

from libs.config import SecuritySettings


def server_credentials(sec: SecuritySettings) -> grpc.ServerCredentials | None:
    """None = plaintext (the loopback default). A client CA turns on mTLS."""
    if not (sec.tls_cert and sec.tls_key):
        return None
    pair = (sec.tls_key.read_bytes(), sec.tls_cert.read_bytes())
    client_ca = sec.tls_client_ca.read_bytes() if sec.tls_client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


def channel_credentials(sec: SecuritySettings) -> grpc.ChannelCredentials | None:
    """None = plaintext. With a client cert/key the channel presents it (mTLS)."""
    if not sec.tls_ca:
        return None
    key = sec.tls_client_key.read_bytes() if sec.tls_client_key else None
    cert = sec.tls_client_cert.read_bytes() if sec.tls_client_cert else None
    return grpc.ssl_channel_credentials(
        root_certificates=sec.tls_ca.read_bytes(), private_key=key, certificate_chain=cert
    )
