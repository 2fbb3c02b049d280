"""Simulated hardware, good enough to run the demo and the tests.

``dockd.sim.recorders`` holds virtual body-worn recorders speaking the real control protocols on
pseudo-terminals, plus :func:`dockd.sim.recorders.make_sample_volume` for their SD-card content.
"""
