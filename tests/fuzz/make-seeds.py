#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Writes the seeds of fuzz-ciphertext and fuzz-verify that must succeed (real ciphertexts under
# the target's fixed AES key, real signatures by fixed test keys) and the near misses next to
# them, and prints the tables the two targets embed (the public keys, the tags and the
# signatures they expect to succeed). Not part of the build: run it once by hand, commit the
# files and paste the tables. ECDSA signatures are randomized, so a rerun gives other files and
# other tables: commit both together. Needs python3-cryptography.
#
#   tests/fuzz/make-seeds.py tests/fuzz/corpus
#
# The private keys are derived from fixed strings below: they are test keys, known to all.

import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# fuzz-ciphertext.c: key_bytes
AES_KEY = bytes(range(1, 33))
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def c_list(data, indent):
    return "\n".join(indent + ", ".join("0x%02x" % b for b in data[i:i + 12]) + ","
                     for i in range(0, len(data), 12))


def c_bytes(name, data):
    return "static const guint8 %s[%d] = {\n%s\n};" % (name, len(data), c_list(data, "\t"))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---- fuzz-ciphertext: owner u32 | name len u8 | name | context len u16 | context | ciphertext

def ct_input(owner, name, context, version, iv, plaintext):
    header = b"TKMS" + bytes([1, 1, 0, 0]) + struct.pack(">I", version)
    aad = (b"tkms-aead-v1\0" + header + struct.pack(">I", owner) + bytes([len(name)]) + name +
           struct.pack(">I", len(context)) + context)
    sealed = AESGCM(AES_KEY).encrypt(iv, plaintext, aad)
    prefix = struct.pack(">I", owner) + bytes([len(name)]) + name + struct.pack(">H", len(context)) + context
    return prefix + header + iv + sealed, sealed[-16:]


def ciphertext_seeds(out):
    os.makedirs(out, exist_ok=True)
    good = [
        ("hello.bin", 1000, b"backup", b"db=prod", 1, b"hello"),
        ("one-byte.bin", 0, b"k", b"", 0, b"\x00"),
        ("long.bin", 4294967294, b"n" * 64, bytes(range(256)) + b"ctx" * 20, 0xFFFFFFFF,
         b"tkms fuzz seed: a longer plaintext " * 40),
    ]
    table = []
    for i, (fname, owner, name, context, version, plaintext) in enumerate(good):
        iv = hashlib.sha256(b"tkms fuzz iv %d" % i).digest()[:12]
        data, tag = ct_input(owner, name, context, version, iv, plaintext)
        write(os.path.join(out, fname), data)
        table.append((tag, plaintext))
    # near misses, all of hello.bin (whatever the fuzzer undoes, it finds a seed again): one
    # bit of the tag, one of the body, another context
    with open(os.path.join(out, "hello.bin"), "rb") as f:
        data = f.read()
    prefix_len = 4 + 1 + 6 + 2 + 7
    write(os.path.join(out, "tag-flipped.bin"), data[:-1] + bytes([data[-1] ^ 1]))
    body_at = prefix_len + 12 + 12
    write(os.path.join(out, "body-flipped.bin"),
          data[:body_at] + bytes([data[body_at] ^ 0x80]) + data[body_at + 1:])
    write(os.path.join(out, "other-context.bin"),
          data[:prefix_len - 4] + b"test" + data[prefix_len:])
    print("/* fuzz-ciphertext.c: make-seeds.py */")
    print("static const Genuine genuine[] = {")
    for fname, (tag, plaintext) in zip((g[0] for g in good), table):
        print("\t/* %s: tag, length, SHA-256 */\n\t{\n\t\t{%s},\n\t\t%d,\n"
              "\t\t{\n%s\n\t\t},\n\t}," %
              (fname, ", ".join("0x%02x" % b for b in tag), len(plaintext),
               c_list(hashlib.sha256(plaintext).digest(), "\t\t\t")))
    print("};")


# ---- fuzz-verify: selector u8 (bit 0 RSA, bit 1 prehashed) | sig len u16 | signature | data

def is_probable_prime(n):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71):
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def fixed_prime(label):
    n = int.from_bytes(hashlib.shake_256(label).digest(128), "big") | (3 << 1022) | 1
    while not (is_probable_prime(n) and (n - 1) % 65537 != 0):
        n += 2
    return n


def rsa_key():
    p, q = fixed_prime(b"tkms fuzz rsa p"), fixed_prime(b"tkms fuzz rsa q")
    e = 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    pub = rsa.RSAPublicNumbers(e, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                 rsa.rsa_crt_iqmp(p, q), pub).private_key()


def der_len(n):
    return bytes([n]) if n < 0x80 else bytes([0x81, n])


def der_int(v):
    b = v.to_bytes((v.bit_length() + 8) // 8, "big")  # a leading 0 when the top bit is set
    return b"\x02" + der_len(len(b)) + b


def der_sig(r, s):
    body = der_int(r) + der_int(s)
    return b"\x30" + der_len(len(body)) + body


def v_input(selector, sig, data):
    return bytes([selector]) + struct.pack(">H", len(sig)) + sig + data


def verify_seeds(out):
    os.makedirs(out, exist_ok=True)
    eckey = ec.derive_private_key(int.from_bytes(hashlib.sha256(b"tkms fuzz p256").digest(),
                                                 "big") % P256_N, ec.SECP256R1())
    rkey = rsa_key()
    msg = b"tkms fuzz verify seed"
    digest = hashlib.sha256(b"a digest the caller computed").digest()
    valid = []

    def ecdsa(data, prehashed, want):
        # want(r, s): the form a seed must have (low or high S, long r, ...)
        while True:
            if prehashed:
                der = eckey.sign(data, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            else:
                der = eckey.sign(data, ec.ECDSA(hashes.SHA256()))
            r, s = utils.decode_dss_signature(der)
            if s > P256_N // 2:
                s = P256_N - s
            for cand in ((r, s), (r, P256_N - s)):
                if want(*cand):
                    return der_sig(*cand)

    def seed(fname, selector, sig, data, ok):
        write(os.path.join(out, fname), v_input(selector, sig, data))
        if ok:
            valid.append(sig)

    low = ecdsa(msg, False, lambda r, s: s <= P256_N // 2 and r.bit_length() <= 255)
    seed("ecc-msg.bin", 0, low, msg, True)
    seed("ecc-digest.bin", 2, ecdsa(digest, True, lambda r, s: True), digest, True)
    seed("ecc-high-s.bin", 0, ecdsa(msg, False, lambda r, s: s > P256_N // 2), msg, True)
    seed("ecc-r33.bin", 0, ecdsa(msg, False, lambda r, s: r.bit_length() == 256), msg, True)
    seed("ecc-short-r.bin", 0, ecdsa(msg, False, lambda r, s: r.bit_length() <= 248), msg, True)
    # defect 7 and its relatives: none of these is a signature
    seed("ecc-trailing.bin", 0, low + b"\x00", msg, False)
    seed("ecc-long-length.bin", 0, b"\x30\x81" + low[1:], msg, False)
    r, s = utils.decode_dss_signature(low)
    rb = r.to_bytes((r.bit_length() + 8) // 8, "big")
    padded = b"\x02" + bytes([len(rb) + 1]) + b"\x00" + rb + der_int(s)
    seed("ecc-padded-r.bin", 0, b"\x30" + der_len(len(padded)) + padded, msg, False)
    seed("ecc-other-msg.bin", 0, low, msg + b"!", False)
    rsa_msg = rkey.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    seed("rsa-msg.bin", 1, rsa_msg, msg, True)
    seed("rsa-digest.bin", 3, rkey.sign(digest, padding.PKCS1v15(),
                                        utils.Prehashed(hashes.SHA256())), digest, True)
    seed("rsa-trailing.bin", 1, rsa_msg + b"\x00", msg, False)
    seed("rsa-other-msg.bin", 1, rsa_msg, msg + b"!", False)

    pub = eckey.public_key().public_numbers()
    print("/* fuzz-verify.c: make-seeds.py */")
    print(c_bytes("ecc_x", pub.x.to_bytes(32, "big")))
    print(c_bytes("ecc_y", pub.y.to_bytes(32, "big")))
    print(c_bytes("rsa_n", rkey.public_key().public_numbers().n.to_bytes(256, "big")))
    print("/* SHA-256 of each signature that must verify */")
    print("static const guint8 valid_sha256[][32] = {")
    for sig in valid:
        print("\t{\n%s\n\t}," % c_list(hashlib.sha256(sig).digest(), "\t\t"))
    print("};")


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    ciphertext_seeds(os.path.join(root, "ciphertext"))
    verify_seeds(os.path.join(root, "verify"))
