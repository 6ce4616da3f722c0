"""What agents act with: repository access, code search, edits, and running tests."""

from turnout.tools._chunking import Chunk
from turnout.tools.code_index import CodeIndex, Hit, IndexStats, Reference

__all__ = ["Chunk", "CodeIndex", "Hit", "IndexStats", "Reference"]
