"""Matching: who may be introduced to whom (one rule), how well two members fit (one score with its
reasons), the suggestions one member asks for, and the rounds that pair a whole server.

Plain data in and out (``model.py``); numpy does the work over many members at once, and numba the
round's hot loops (``kernels.py``).
"""
