"""`datalease api-token create|list|revoke` through the real console script: the token is printed once
and only its sha256 is stored; list shows scopes and revocation; a bad scope or an unknown id is one
error line naming the input."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cli_harness import expect, rows, run, single_error


def test_create_list_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = expect(run("api-token", "create", "settings-app", "--scope", "platform:write", home=home), 0)
    token = made.out.strip()
    assert token.startswith("dla_"), made.describe()
    stored = rows(home, "SELECT token_id, scopes, token_sha256 FROM api_tokens")
    assert len(stored) == 1
    token_id, scopes, digest = stored[0]
    assert scopes == "platform:write" and digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (home / "datalease.db").read_bytes().decode("latin-1")
    listed = expect(run("api-token", "list", "--json", home=home), 0).json()
    assert [(t["id"], t["scopes"], t["revoked_at"]) for t in listed] == [(token_id, ["platform:write"], None)]
    expect(run("api-token", "revoke", token_id, home=home), 0)
    listed = expect(run("api-token", "list", "--json", home=home), 0).json()
    assert listed[0]["revoked_at"] is not None
    message = single_error(run("api-token", "create", "x", "--scope", "platform:delete", home=home))
    assert "--scope 'platform:delete'" in message
    message = single_error(run("api-token", "revoke", "0123456789abcdef", home=home))
    assert "no such API token" in message
