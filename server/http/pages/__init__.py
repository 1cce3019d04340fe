"""Server-rendered pages, one module per concept; imported only by the URL table."""
