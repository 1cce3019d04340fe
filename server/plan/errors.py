"""The plan domain's refusals: ``ApiError``, from ``server/errors.py`` (the identity wing
raises it too)."""

from server.errors import ApiError as ApiError
