"""Answering half of PolicyQA: question -> hits -> cited answer."""
