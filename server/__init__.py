"""Inflow backend: job aids for the page a learner is on."""
