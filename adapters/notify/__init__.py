"""Notification delivery: the port (:mod:`ports`), its adapters and their configuration.

    smtp.SmtpNotifier        e-mail over SMTP (Message-ID from the idempotency key)
    webhook.WebhookNotifier  JSON POST to a WeCom / DingTalk group robot or any receiver
    sms.SmsNotifier          an HTTP SMS gateway, URL and body described by configuration
    file.FileNotifier        JSON lines in a file, or the console (demo)
    config.load(path)        one YAML file → adapters per channel, retry policy, redactor
"""
from adapters.notify.ports import Notification, Notifier, Recipient

__all__ = ["Notification", "Notifier", "Recipient"]
