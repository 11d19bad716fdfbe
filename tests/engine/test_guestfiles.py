"""Hostname, root password and SSH keys written into guests, running or stopped."""

import pytest

from contexts import passwords
from contexts.engine import guestfiles
from contexts.engine.errors import InvalidSpec
from contexts.engine.safefile import UnsafePath
from tests.engine.conftest import inside

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm1c2VyLWtleS1mb3ItdGVzdHMtb25seS0wMDAwMDAw alice@laptop"


def test_shadow_edit_replaces_only_roots_password():
    shadow = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
    edited = guestfiles.with_root_password(shadow, "$6$saltsalt$" + "a" * 86)
    root, daemon = edited.splitlines()
    assert root.startswith("root:$6$saltsalt$") and daemon == "daemon:*:19000:0:99999:7:::"
    assert guestfiles.with_root_password("", "$6$saltsalt$" + "b" * 86).startswith("root:$6$")


@pytest.mark.parametrize("bad", ["hunter2", "$6$x$y\nroot2::0:0", "$6$salt:salt$abc", "", None])
def test_anything_but_a_crypt_hash_is_refused(bad):
    with pytest.raises(InvalidSpec):
        guestfiles.check_password_hash(bad)


@pytest.mark.parametrize("bad", ["ssh-ed25519", "rm -rf /", KEY + "\nssh-rsa AAAA", "ssh-dss AAAAB3Nza x"])
def test_malformed_ssh_keys_are_refused(bad):
    with pytest.raises(InvalidSpec):
        guestfiles.check_ssh_keys([bad])


@pytest.mark.parametrize("running", [True, False])
def test_password_keys_and_hostname_reach_the_guest(engine, make_context, running):
    name = make_context(start=running)
    password_hash = passwords.crypt_hash("s3cret-Pass")
    engine.set_root_password(name, password_hash)
    engine.set_ssh_keys(name, [KEY])
    engine.set_hostname(name, "web.example.com")
    if not running:
        engine.start(name)
    out = inside(
        engine,
        name,
        "grep ^root: /etc/shadow; cat /root/.ssh/authorized_keys; hostname; cat /etc/hostname; stat -c %a /root/.ssh",
    ).stdout.splitlines()
    assert out[0].split(":")[1] == password_hash
    assert out[1] == KEY
    assert out[2:4] == ["web.example.com", "web.example.com"]
    assert out[4] == "700"
    assert engine.status(name)["hostname"] == "web.example.com"
    lower_shadow = engine.state.context_dir(name) / "lower/etc/shadow"
    if lower_shadow.exists():  # the template's hard-linked file is never written through
        assert password_hash not in lower_shadow.read_text()


def test_a_guest_symlink_does_not_redirect_the_write(engine, make_context, tmp_path):
    name = make_context()
    outside = tmp_path / "victim"
    outside.write_text("host file\n")
    inside(engine, name, f"rm -rf /root/.ssh; ln -s {outside} /root/.ssh")
    with pytest.raises(UnsafePath):
        engine.set_ssh_keys(name, [KEY])
    assert outside.read_text() == "host file\n"
