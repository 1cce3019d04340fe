"""Who is asking: the Identity, roles and sides, sign-in (sessions, API tokens, passwords),
signed tokens, the access rules (policy) and rate limits. No HTTP here."""

from .acting import Acting as Acting
from .acting import log_access as log_access
from .auth import SESSION_COOKIE as SESSION_COOKIE
from .auth import Auth as Auth
from .auth import Credentials as Credentials
from .auth import hash_password as hash_password
from .identity import CUSTOMER as CUSTOMER
from .identity import EDITOR as EDITOR
from .identity import LINK_ROLES as LINK_ROLES
from .identity import OWNER as OWNER
from .identity import ROLES as ROLES
from .identity import SIDES as SIDES
from .identity import VENDOR as VENDOR
from .identity import VIEWER as VIEWER
from .identity import Identity as Identity
from .limits import Limits as Limits
from .people import MAX_EMAIL as MAX_EMAIL
from .people import MIN_PASSWORD as MIN_PASSWORD
from .people import password_errors as password_errors
from .people import password_too_short as password_too_short
from .people import valid_email as valid_email
from .people import visitor_name as visitor_name
from .policy import Rule as Rule
from .policy import actor as actor
from .policy import allowed as allowed
from .policy import plan_nav as plan_nav
from .policy import vendor_owner as vendor_owner
from .tokens import CODE_MINUTES as CODE_MINUTES
from .tokens import INVITE_DAYS as INVITE_DAYS
from .tokens import VISIT_DAYS as VISIT_DAYS
from .tokens import Signer as Signer
