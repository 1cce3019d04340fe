"""The JSON API, one module per concept; imported only by the URL table."""
