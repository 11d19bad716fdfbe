"""Root passwords for guests: generated here, shown to the customer once, sent to the host only as a
crypt hash (the broker is no secret store), and never stored in clear."""

import ctypes
import secrets
import string
import threading

ALPHABET = string.ascii_letters + string.digits
SALT_ALPHABET = string.ascii_letters + string.digits + "./"
_lock = threading.Lock()  # crypt(3) returns a static buffer
_libcrypt = None


def generate(length: int = 20) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def crypt_hash(password: str) -> str:
    """SHA-512 crypt ($6$), which every glibc guest verifies, with a fresh random salt."""
    global _libcrypt
    if "\0" in password:
        raise ValueError("A password cannot contain NUL.")
    salt = "$6$" + "".join(secrets.choice(SALT_ALPHABET) for _ in range(16)) + "$"
    with _lock:
        if _libcrypt is None:
            _libcrypt = ctypes.CDLL("libcrypt.so.1")
            _libcrypt.crypt.restype = ctypes.c_char_p
            _libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        result = _libcrypt.crypt(password.encode(), salt.encode())
    if not result or not result.startswith(b"$6$"):
        raise RuntimeError("libcrypt could not hash the password.")
    return result.decode()
