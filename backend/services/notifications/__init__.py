"""Notifications when a run ends (``cpt_contract/notifications.py`` has the events and formats).

- ``channels.py``: create, list, delete a channel (a webhook's URL goes to the secret store).
- ``outbox.py``: a run's status change queues one delivery per matching channel, in the same
  transaction (an ORM hook, so every path that ends a run is covered).
- ``payloads.py``: the run's summary and link, and each body (Slack, Discord, generic JSON,
  e-mail) made from it.
- ``deliver.py``: one attempt at one delivery (HTTP POST or SMTP), with a short timeout.
- ``drain.py``: the API's background task that delivers what is due, retrying with backoff.
"""
