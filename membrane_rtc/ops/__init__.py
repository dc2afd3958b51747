"""The operators' side: the ``membrane-rtc`` command, the admin client and its channel, the
table of admin operations, where settings come from, the state file, logs, metrics, webhooks
and ``--reload``.
"""
