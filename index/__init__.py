"""Indexing half of PolicyQA: documents -> clauses -> chunks -> vectors."""
