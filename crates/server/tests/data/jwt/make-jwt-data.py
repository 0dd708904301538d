"""Builds the JWT test data: a cluster-like JWKS (RSA-2048 RS256, P-256, Ed25519) and one
Kubernetes-like service-account token per key, signed by the openssl command-line tool
(an independent signer), with fixed times so the tests verify them at a fixed instant;
and a JWKS holding an RSA-1024 key, which must be refused. The private keys are made in
a temporary directory and not kept.

    python3 make-jwt-data.py crates/server/tests/data/jwt
"""
import base64, hashlib, json, os, subprocess, sys, tempfile

def run(*args, data=None):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def spki(pem):
    return run("openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER")

def kid(pem):
    return b64(hashlib.sha256(spki(pem)).digest())

def rsa_jwk(pem, alg):
    modulus = bytes.fromhex(run("openssl", "rsa", "-in", pem, "-noout", "-modulus").decode().strip().split("=")[1])
    text = run("openssl", "rsa", "-in", pem, "-noout", "-text").decode()
    exponent = int(text.split("publicExponent: ")[1].split()[0])
    e = exponent.to_bytes((exponent.bit_length() + 7) // 8, "big")
    return {"use": "sig", "kty": "RSA", "kid": kid(pem), "alg": alg, "n": b64(modulus.lstrip(b"\0")), "e": b64(e)}

def ec_jwk(pem):
    point = spki(pem)[-65:]
    assert point[0] == 4
    return {"use": "sig", "kty": "EC", "kid": kid(pem), "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])}

def ed_jwk(pem):
    return {"kty": "OKP", "kid": kid(pem), "crv": "Ed25519", "x": b64(spki(pem)[-32:])}

def der_to_raw(der, size):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, short form lengths (P-256).
    assert der[0] == 0x30
    i = 2
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        length = der[i + 1]
        value = der[i + 2:i + 2 + length].lstrip(b"\0")
        out += value.rjust(size, b"\0")
        i += 2 + length
    return out

def sign(pem, alg, message):
    open("input", "wb").write(message)
    if alg == "RS256":
        return run("openssl", "dgst", "-sha256", "-sign", pem, "input")
    if alg == "ES256":
        return der_to_raw(run("openssl", "dgst", "-sha256", "-sign", pem, "input"), 32)
    if alg == "EdDSA":
        return run("openssl", "pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in", "input")
    raise ValueError(alg)

def token(pem, alg, key_id, claims):
    header = {"alg": alg, "kid": key_id}
    signing_input = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing_input + "." + b64(sign(pem, alg, signing_input.encode()))

ISSUED = 1767225600  # 2026-01-01T00:00:00Z
claims = {
    "aud": ["carimbo"],
    "exp": ISSUED + 3600,
    "iat": ISSUED,
    "iss": "https://kubernetes.default.svc",
    "kubernetes.io": {
        "namespace": "ml",
        "pod": {"name": "trainer-7d9f", "uid": "0b5b7c1e-4a8e-4d8b-9d1e-2f3a4b5c6d7e"},
        "serviceaccount": {"name": "trainer", "uid": "5f0b6d2c-1e2f-4a3b-8c4d-5e6f7a8b9c0d"},
    },
    "nbf": ISSUED,
    "sub": "system:serviceaccount:ml:trainer",
}
out = os.path.abspath(sys.argv[1])
workdir = tempfile.TemporaryDirectory()  # removed, with the private keys, at exit
os.chdir(workdir.name)
run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pem")
run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa1024.pem")
run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem")
run("openssl", "genpkey", "-algorithm", "ED25519", "-out", "ed.pem")
jwks = {"keys": [rsa_jwk("rsa.pem", "RS256"), ec_jwk("ec.pem"), ed_jwk("ed.pem")]}
open(f"{out}/cluster-jwks.json", "w").write(json.dumps(jwks, indent=2) + "\n")
for pem, alg, name in [("rsa.pem", "RS256", "rs256"), ("ec.pem", "ES256", "es256"), ("ed.pem", "EdDSA", "eddsa")]:
    open(f"{out}/cluster-{name}.jwt", "w").write(token(pem, alg, kid(pem), claims) + "\n")
open(f"{out}/rsa1024-jwks.json", "w").write(json.dumps({"keys": [rsa_jwk("rsa1024.pem", "RS256")]}, indent=2) + "\n")
