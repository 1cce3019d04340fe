"""The plan as a pycrdt document and pure functions over it. Depends on pycrdt only."""

from .markdown import markdown_from_prosemirror as markdown_from_prosemirror
from .markdown import to_markdown as to_markdown
from .prosemirror import to_prosemirror as to_prosemirror
from .prosemirror import write_prosemirror as write_prosemirror
from .reader import StructureReader as StructureReader
from .reader import read_structure as read_structure
from .restore import restore_content as restore_content
from .schema import FRAGMENT as FRAGMENT
from .schema import MAX_DEPTH as MAX_DEPTH
from .schema import SchemaGuard as SchemaGuard
from .schema import doc_from_updates as doc_from_updates
from .schema import fragment as fragment
from .schema import new_doc as new_doc
from .schema import schema_repair as schema_repair
from .structure import Structure as Structure
from .structure import assign_ids as assign_ids
from .structure import missing_ids as missing_ids
