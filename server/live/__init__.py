"""The live editing session: the websocket protocol, one connection, the room (group commits,
awareness) and the room manager, and the recheck that closes connections whose credentials
went away. Imports nothing from ``server.http``."""

from .connection import RAW_SEND as RAW_SEND
from .connection import Connection as Connection
from .events import Closing as Closing
from .events import Committed as Committed
from .fanout import Bus as Bus
from .fanout import fanout_lag as fanout_lag
from .fanout import redis_fanout as redis_fanout
from .keys import RoomKey as RoomKey
from .keys import room_key as room_key
from .keys import room_keys as room_keys
from .keys import split_key as split_key
from .lag import LAG_BUCKETS as LAG_BUCKETS
from .lag import Applied as Applied
from .lag import LoopLag as LoopLag
from .protocol import Close as Close
from .protocol import FrameError as FrameError
from .recheck import CredentialRecheck as CredentialRecheck
from .rooms import Room as Room
from .rooms import RoomManager as RoomManager
