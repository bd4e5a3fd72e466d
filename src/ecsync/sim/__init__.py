"""The marketplace simulator: Amazon SP-API + LWA, BASE and eBay over HTTP on loopback.

ecsync can never reach the real services from its test and demo environments, so this
package serves their APIs faithfully (paths, shapes, errors, rate limits, token lifetimes)
over a deterministic, seeded market, plus a control API under ``/_sim/``. Entry points:
``ecsync.sim.server.running_simulator`` (tests, demo), ``ecsync.sim.server.serve`` and
``ecsync.sim.command.sim_command`` (``ecsync sim``).
"""
