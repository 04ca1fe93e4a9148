"""Requests from this machine to the deployed endpoint: one request (ask) and the sampling rules."""
