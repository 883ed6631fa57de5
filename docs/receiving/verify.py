"""Verify a Tributary delivery in Python 3 with the `cryptography` package.

Pass the RAW request body (bytes), never json.loads + json.dumps.
"""
import base64
import hashlib
import hmac
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOLERANCE_SECONDS = 300


class VerificationError(Exception):
    pass


def _check_timestamp(ts):
    try:
        sec = int(ts)
    except (TypeError, ValueError):
        raise VerificationError("timestamp outside tolerance")
    if abs(time.time() - sec) > TOLERANCE_SECONDS:
        raise VerificationError("timestamp outside tolerance")


def _b64url_int(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def verify_rsa(raw_body, headers, jwks, account_id):
    """rsa (default). headers: lower-cased names. jwks: your account's key set
    from <engine>/.well-known/jwks/<accountId>.json (cache it; fetch again on
    an unknown kid)."""
    event_id = headers.get("x-tributary-event-id")
    ts = headers.get("x-tributary-timestamp")
    kid = headers.get("x-tributary-key-id")
    sig = headers.get("x-tributary-signature")
    if not (event_id and ts and kid and sig):
        raise VerificationError("missing signature header")
    _check_timestamp(ts)
    jwk = next((k for k in jwks["keys"] if k["kid"] == kid), None)
    if jwk is None:
        raise VerificationError("unknown signing key " + kid)
    key = rsa.RSAPublicNumbers(_b64url_int(jwk["e"]), _b64url_int(jwk["n"])).public_key()
    signed = f"{event_id}.{ts}.".encode() + raw_body
    for entry in sig.split(" "):
        if not entry.startswith("v1,"):
            continue
        try:
            key.verify(base64.b64decode(entry[3:]), signed, padding.PKCS1v15(), hashes.SHA256())
            break
        except (InvalidSignature, ValueError):
            continue
    else:
        raise VerificationError("invalid signature")
    if json.loads(raw_body).get("accountId") != account_id:
        raise VerificationError("event signed for another account")


def verify_standard(raw_body, headers, secret):
    """standard (Standard Webhooks): secret is the webhook's whsec_... secret."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig = headers.get("webhook-signature")
    if not (msg_id and ts and sig):
        raise VerificationError("missing signature header")
    _check_timestamp(ts)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + raw_body, hashlib.sha256).digest()
    want = "v1," + base64.b64encode(mac).decode()
    if not any(hmac.compare_digest(entry, want) for entry in sig.split(" ")):
        raise VerificationError("invalid signature")


def verify_hmac(raw_body, headers, secret):
    """hmac: X-Webhook-Signature is sha256=<hex HMAC-SHA256(secret, raw body)>."""
    want = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    got = [headers.get("x-webhook-signature"), headers.get("x-webhook-signature-previous")]
    if not any(g and hmac.compare_digest(g, want) for g in got):
        raise VerificationError("invalid signature")


if __name__ == "__main__":
    # Used by the repository's tests: python3 verify.py cases.json where
    # cases.json is [{"scheme", "headers", "body" (base64), "key" (JWKS
    # object or secret), "accountId"}]; prints one "verified" /
    # "rejected: ..." line each.
    import sys

    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for c in cases:
        hdrs = {k.lower(): v for k, v in c["headers"].items()}
        body = base64.b64decode(c["body"])
        try:
            if c["scheme"] == "rsa":
                verify_rsa(body, hdrs, c["key"], c["accountId"])
            elif c["scheme"] == "standard":
                verify_standard(body, hdrs, c["key"])
            elif c["scheme"] == "hmac":
                verify_hmac(body, hdrs, c["key"])
            else:
                raise VerificationError("unknown scheme " + c["scheme"])
            print("verified")
        except VerificationError as e:
            print("rejected: " + str(e))
