"""Notifications: mail from events (approval requests, access alerts, status mail, ops tasks), links only."""
