import pytest
from sqlalchemy import select

from collectors.index.auth_models import tokens_table, users_table
from console.auth.roles import allows
from console.auth.throttle import LoginThrottle
from console.stores import auth as auth_store


def test_roles_are_ordered() -> None:
    assert allows("admin", "operator") and allows("operator", "viewer")
    assert not allows("viewer", "operator") and not allows("operator", "admin")
    assert allows("viewer", "public") and not allows("nobody", "viewer")


def test_users_are_stored_with_argon2id_and_authenticate(index_db) -> None:
    engine = index_db.engine
    auth_store.create_user(engine, "alice", "correct horse battery", "operator")
    with engine.connect() as connection:
        stored = connection.execute(select(users_table.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert auth_store.authenticate(engine, "ALICE", "correct horse battery")["role"] == "operator"
    assert auth_store.authenticate(engine, "alice", "wrong password!!") is None
    assert auth_store.authenticate(engine, "nobody", "correct horse battery") is None
    with pytest.raises(ValueError, match="exists"):
        auth_store.create_user(engine, "Alice", "another password", "viewer")
    with pytest.raises(ValueError, match="at least"):
        auth_store.create_user(engine, "bob", "short", "viewer")
    with pytest.raises(ValueError, match="unknown role"):
        auth_store.create_user(engine, "carol", "long enough pw", "root")


def test_disabling_a_user_ends_their_sessions(index_db) -> None:
    engine = index_db.engine
    user_id = auth_store.create_user(engine, "dave", "a long password", "viewer")
    token, csrf = auth_store.create_session(engine, user_id, "127.0.0.1")
    principal = auth_store.session_principal(engine, token)
    assert principal is not None and principal.csrf_token == csrf
    auth_store.update_user(engine, "dave", disabled=True)
    assert auth_store.session_principal(engine, token) is None
    assert auth_store.authenticate(engine, "dave", "a long password") is None


def test_api_tokens_are_hashed_shown_once_and_revocable(index_db) -> None:
    engine = index_db.engine
    token_id, token = auth_store.create_token(engine, "ci", "operator", "admin")
    with engine.connect() as connection:
        stored = connection.execute(select(tokens_table.c.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64
    assert "token_hash" not in auth_store.list_tokens(engine)[0]
    principal = auth_store.token_principal(engine, token)
    assert principal is not None and principal.role == "operator"
    assert auth_store.token_principal(engine, token + "x") is None
    assert auth_store.revoke_token(engine, token_id)
    assert auth_store.token_principal(engine, token) is None


def test_first_start_creates_the_admin_once(index_db) -> None:
    engine = index_db.engine
    generated = auth_store.ensure_admin(engine, None)
    assert generated and auth_store.authenticate(engine, "admin", generated)["role"] == "admin"
    assert auth_store.ensure_admin(engine, "another password") is None


def test_login_throttle_backs_off_and_resets() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    keys = ["user:alice", "addr:1.2.3.4"]
    for _ in range(5):
        assert throttle.retry_after(keys) == 0
        throttle.failed(keys)
    assert throttle.retry_after(keys) == pytest.approx(1.0)
    throttle.failed(keys)
    assert throttle.retry_after(keys) == pytest.approx(2.0)
    now[0] += 3
    assert throttle.retry_after(keys) == 0
    throttle.succeeded(keys)
    assert throttle.retry_after(["user:alice"]) == 0
