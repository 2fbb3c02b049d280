"""Bays and their sessions: the state machine of one docked recorder."""
