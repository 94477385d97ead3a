"""tickloom ops: the op contract (``nodes.contract``) and the op library.

The lowest room: it imports nothing else of the project. Every other room builds on the contract defined here.
"""
