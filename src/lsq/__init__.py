"""LSQ: run, supervise and route a microservice app on one machine."""

__version__ = "0.1.0"
