"""WSGI entry point for production servers: gunicorn -c python:portal.gunicorn_config portal.wsgi:app"""
from .app import create_app

app = create_app()
