"""The HTTP wing, the only one that knows Starlette's requests and responses: the URL table
(``routes.py``), the ``@rule`` guard, pages and JSON API, errors, security headers, transport
limits and static assets."""

from .application import manifest as manifest
from .application import web_app as web_app
from .responses import make_templates as make_templates
from .transport import forwarded_allow_ips as forwarded_allow_ips
from .transport import with_header_timeout as with_header_timeout
