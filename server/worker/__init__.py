"""The worker: derived work (the plans' tables and commitment history, and the reactions to
come) in a process of its own that follows the update log, and, in the serving process, its
supervisor (``WorkerChild``), the wait for its tables (``WorkerTables``) and its credential."""

from .child import WorkerChild as WorkerChild
from .credential import ASSIGN_IDS as ASSIGN_IDS
from .credential import bearer as bearer
from .credential import mint as mint
from .credential import valid as valid
from .early import fork_worker as fork_worker
from .follower import LogFollower as LogFollower
from .process import die_with_parent as die_with_parent
from .process import run_worker as run_worker
from .tables import WorkerTables as WorkerTables
from .writeback import AssignThroughServer as AssignThroughServer
