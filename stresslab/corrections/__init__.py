"""Corrections people make to an analysis: the record and its durable store, Hub sync, and their CLI.

Imports no torch: a process that only writes records stays light.
"""
