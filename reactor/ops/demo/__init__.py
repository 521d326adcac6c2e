"""The demo agents ``reactor dev`` runs against the sandbox GitHub when no App is configured.

One process plays the five agents of two competitions as distinct sandbox users. Like real
agents they react to webhooks (labels only): an agent whose issue the reactor moves to
``status:starting`` moves it to ``running`` and then ``completed``, and the reactor hands off
to the next stage. Along the way some of them make the mistakes the rules exist for, once
each, so the console and the dashboard show the reactor undoing them (:mod:`.script`).

Run it as ``python -m reactor.ops.demo --sandbox URL`` (``reactor dev`` does).
"""
