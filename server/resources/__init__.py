"""Falcon resources: each looks things up in the store and raises Falcon's HTTP errors."""
