"""Tandem's server: routes, rooms, auth and the CLI; the only package that knows both crdt/ and
persistence/. The app is built by ``server.app.create_app`` (the composition root)."""

from .settings import Settings as Settings
