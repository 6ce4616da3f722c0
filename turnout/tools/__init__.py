"""What agents act with: repository access, code search, edits, and running tests."""
