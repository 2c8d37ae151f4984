"""The project's own Gymnasium environments.

Importing this package registers them with Gymnasium (``rl.envs`` does it on demand). Later modules add
their tasks here with ``gymnasium.register``; none is registered yet.
"""
