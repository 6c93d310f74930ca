"""Monitoring tied to money: metrics, drift and cost-weighted alerts (see docs/monitoring.md)."""
