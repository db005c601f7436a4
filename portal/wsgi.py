"""WSGI entry point for production servers: gunicorn -c python:portal.gunicorn_config portal.wsgi:app"""

import logging
import sys

from .app import create_app
from .deployment import DeploymentMismatch

try:
    app = create_app()
except DeploymentMismatch as mismatch:
    # A node set up unlike its portal: one sentence in the log, not a traceback, and exit code 3
    # (gunicorn's "worker failed to boot"), which stops the master instead of restarting workers.
    logging.getLogger("portal").critical("%s", mismatch)
    sys.exit(3)
