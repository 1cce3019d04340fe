"""TANDEM_REDIS_URL: several processes need one shared database, so SQLite refuses it."""

import pytest

from server.settings import Settings


def test_unset_means_one_process(tmp_path) -> None:
    assert Settings.from_env({"TANDEM_DATA_DIR": str(tmp_path)}).redis_url == ""


def test_with_postgresql_it_is_kept(tmp_path) -> None:
    s = Settings.from_env(
        {
            "TANDEM_DATA_DIR": str(tmp_path),
            "TANDEM_DATABASE_URL": "postgresql+psycopg://localhost/test",
            "TANDEM_REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert s.redis_url == "redis://127.0.0.1:6379/0"


def test_with_sqlite_it_is_refused_with_the_reason(tmp_path) -> None:
    with pytest.raises(SystemExit) as err:
        Settings.from_env(
            {"TANDEM_DATA_DIR": str(tmp_path), "TANDEM_REDIS_URL": "redis://127.0.0.1:6379/0"}
        )
    assert "PostgreSQL" in str(err.value) and "SQLite" in str(err.value)


def test_a_url_that_is_not_redis_is_refused(tmp_path) -> None:
    with pytest.raises(SystemExit, match="redis://"):
        Settings.from_env(
            {
                "TANDEM_DATA_DIR": str(tmp_path),
                "TANDEM_DATABASE_URL": "postgresql+psycopg://localhost/test",
                "TANDEM_REDIS_URL": "http://127.0.0.1:6379",
            }
        )
