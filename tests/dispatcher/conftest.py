"""The API tests share the web tests' fixtures: a migrated database, a fleet, a real server."""

from tests.web.conftest import app_url, base_url, db, fleet, open_incident, web_db

__all__ = ["app_url", "base_url", "db", "fleet", "open_incident", "web_db"]
