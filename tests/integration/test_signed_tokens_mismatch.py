"""Signed tokens stay off when the plugin and the core disagree on the
secret (docs/api.md "Signed tokens", where the secret comes from): the
janus.jcfg in Janus's configuration folder (what the plugin reads) names
one token_auth_secret, while the core was started with `-C` pointing at
another file with another secret. (Janus 1.1.2's --token-auth-secret
cannot stage this: its option table declares it an integer and stores it
in a string pointer.) The plugin's start-up check (a token of its own
realm signed with janus.jcfg's secret, passed to the core's verifier
auth_is_signature_valid) finds out: one warning, `tokens: false` in
health, and a therapist_token signed with either secret is refused with
475, while keys keep working."""
import secrets

import pytest

from conftest import _start_checked, _stop_checked
from harness.alliance import PLUGIN, Scope, create_visit, expect_error
from harness.api import SEEN_SECRETS
from harness.janus import alliance_server, sign_token

FILE_SECRET = "ap-file-" + secrets.token_hex(12)
CORE_SECRET = "ap-core-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def janus(net, keys, tmp_path_factory, module_db):
    srv = alliance_server(net, tmp_path_factory.mktemp("mismatch"), keys, db_path=module_db,
                          token_secret=FILE_SECRET)
    write = srv.write_config

    def write_both():
        write()                                    # conf/janus.jcfg: FILE_SECRET (the plugin's)
        text = (srv.confdir / "janus.jcfg").read_text().replace(FILE_SECRET, CORE_SECRET)
        (srv.confdir / "core.jcfg").write_text(text)
    srv.write_config = write_both
    srv.extra_args = ["-C", str(srv.confdir / "core.jcfg")]   # the last -C wins
    srv.api_token = sign_token(CORE_SECRET, [PLUGIN])          # what the core takes
    _start_checked(srv)
    try:
        yield srv
    finally:
        _stop_checked(srv, secrets=list(keys.therapists.values()) + list(SEEN_SECRETS)
                      + [FILE_SECRET, CORE_SECRET])


async def test_tokens_off_when_the_core_uses_another_secret(janus, keys):
    log = janus.wait_log("verifies with another secret")
    assert "the Janus core verifies with another secret" in log
    assert "signed tokens accepted in place of keys" not in log
    assert janus.health()["tokens"] is False
    async with Scope(janus) as sc:
        for secret in (FILE_SECRET, CORE_SECRET):
            h = await sc.handle()
            tok = sign_token(secret, [PLUGIN, "alliance.therapist=T-01"])
            d = expect_error(await h.request({"request": "create", "therapist_token": tok,
                                               "client_code": "C-MIS"}), 475)
            assert "not enabled" in d["error"], d
        created = await create_visit(await sc.handle(), keys.therapist("T-01"), "C-MIS")
        assert "client_token" not in created, "no client token while tokens are off"
