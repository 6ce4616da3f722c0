"""Tests for what agents act with: the code index, its chunks, search and symbols."""
