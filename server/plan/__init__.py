"""The plan domain, without Starlette: plan creation from templates (catalog), the plan list,
the materialiser that turns the live document into tables, its projection, the summary, and
the domain's refusals (``ApiError``)."""

from .catalog import TEMPLATE_COPIES as TEMPLATE_COPIES
from .catalog import create_plan as create_plan
from .catalog import list_templates as list_templates
from .catalog import new_plan as new_plan
from .catalog import reusable_content as reusable_content
from .catalog import template_content as template_content
from .catalog import template_json as template_json
from .errors import ApiError as ApiError
from .events import Changed as Changed
from .events import KeyResultValueChanged as KeyResultValueChanged
from .events import RiskSeverityChanged as RiskSeverityChanged
from .events import TaskCompleted as TaskCompleted
from .events import TaskCreated as TaskCreated
from .events import TaskDueMoved as TaskDueMoved
from .events import TaskReassigned as TaskReassigned
from .events import TaskRemoved as TaskRemoved
from .events import TaskReopened as TaskReopened
from .events import TaskStatusChanged as TaskStatusChanged
from .fields import INT_MAX as INT_MAX
from .fields import int_param as int_param
from .fields import lone_surrogate as lone_surrogate
from .fields import text_field as text_field
from .listing import ListQuery as ListQuery
from .listing import customers as customers
from .listing import parse_query as parse_query
from .listing import plan_rows as plan_rows
from .materialise import Assign as Assign
from .materialise import Materialiser as Materialiser
from .materialise import Tables as Tables
from .materialise import assign_through as assign_through
from .materialise import rebuild as rebuild
from .status import MAX_REASON as MAX_REASON
from .status import RAGS as RAGS
from .status import clear_status as clear_status
from .status import override_status as override_status
from .status import plan_summary as plan_summary
from .summary import TASK_SIDES as TASK_SIDES
from .summary import summarise as summarise
from .summary import task_json as task_json
