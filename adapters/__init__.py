"""The outside world, behind small ports: notification delivery (``adapters.notify``: e-mail,
webhook, SMS, file) and imports of records from other systems (telephony call records, …)."""
