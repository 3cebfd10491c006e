"""Pieces both HTTP services (the gateway and the tenant proxy) share."""
