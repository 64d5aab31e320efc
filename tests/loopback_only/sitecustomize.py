"""On PYTHONPATH of the processes the object-store tests start: they may reach loopback only."""

from emokd.testing.loopback import install

install()
