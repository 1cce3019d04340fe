"""The plan domain, without Starlette: plan creation from templates (catalog), the plan list,
the materialiser that turns the live document into tables, its projection, the summary, and
the domain's refusals (``ApiError``)."""

from .catalog import TEMPLATE_COPIES as TEMPLATE_COPIES
from .catalog import create_plan as create_plan
from .catalog import list_templates as list_templates
from .catalog import reusable_content as reusable_content
from .catalog import template_content as template_content
from .catalog import template_json as template_json
from .errors import ApiError as ApiError
from .listing import ListQuery as ListQuery
from .listing import customers as customers
from .listing import parse_query as parse_query
from .listing import plan_rows as plan_rows
from .materialise import Materialiser as Materialiser
from .materialise import rebuild as rebuild
from .summary import summarise as summarise
from .summary import task_json as task_json
