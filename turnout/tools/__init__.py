"""What agents act with: repository access, code search, edits, codemods, and running tests."""

from turnout.tools._chunking import Chunk
from turnout.tools.code_index import CodeIndex, Hit, IndexStats, Reference
from turnout.tools.codemods import (
    CodemodError,
    CodemodName,
    CodemodResult,
    CodemodSpec,
    Mention,
    available_codemods,
    convert_to_fstrings,
    move_function,
    rename_symbol,
)
from turnout.tools.edits import (
    EditError,
    EditReport,
    SearchReplace,
    apply_search_replace,
    apply_unified_diff,
    replace_definition,
)
from turnout.tools.test_runner import TestCommandError, TestReport, detect_test_command, run_tests
from turnout.tools.workspace import RepositoryChanged, Workspace, WorkspaceError, tree_fingerprint

__all__ = [
    "Chunk", "CodeIndex", "CodemodError", "CodemodName", "CodemodResult", "CodemodSpec", "EditError",
    "EditReport", "Hit", "IndexStats", "Mention", "Reference", "RepositoryChanged", "SearchReplace",
    "TestCommandError", "TestReport", "Workspace", "WorkspaceError", "apply_search_replace",
    "apply_unified_diff", "available_codemods", "convert_to_fstrings", "detect_test_command",
    "move_function", "rename_symbol", "replace_definition", "run_tests", "tree_fingerprint",
]
