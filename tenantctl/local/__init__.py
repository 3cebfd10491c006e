"""Local mode: the whole platform as processes on this machine (`tenantctl up`): platform.py starts and
stops it, launchers.py builds each process, supervisor.py restarts what exits; configs.py, prometheus.py
and alertmanager.py render what the services read; model_server.py and embedding_model.py are the
embedded CPU models; state.py is what a running platform leaves for the other commands; report.py draws
a tenant's dashboard from Prometheus."""
