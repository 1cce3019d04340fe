"""Notifications: rules from the plan's typed events to an outbox of rows, a dispatcher that
sends them with retries, the email channel, and the signed links people act on from a message.
No Starlette here: the pages for the links are in ``server/http/notify.py``."""

from .calendar import calendar as calendar
from .calendar import create_feed as create_feed
from .calendar import feed_created as feed_created
from .calendar import feed_url as feed_url
from .calendar import read_feed as read_feed
from .calendar import revoke_feed as revoke_feed
from .clock import Clock as Clock
from .clock import Queued as Queued
from .clock import run_pass as run_pass
from .dispatcher import Dispatcher as Dispatcher
from .email import EmailChannel as EmailChannel
from .email import SmtpConfig as SmtpConfig
from .email import deliver as deliver
from .links import ACTIONS as ACTIONS
from .links import ActionClaim as ActionClaim
from .links import Links as Links
from .people import Person as Person
from .people import reachable as reachable
from .people import task_of as task_of
from .service import Notifier as Notifier
from .service import subscribers as subscribers
from .setup import Notifications as Notifications
from .setup import build as build
from .setup import links as links
from .setup import smtp as smtp
