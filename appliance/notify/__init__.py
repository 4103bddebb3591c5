"""Notifications through a transactional outbox, delivered to webhooks by a job."""
