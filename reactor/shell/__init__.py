"""The I/O shell around the pure rules: read fresh state, evaluate, apply, remember, audit.

- ``turn``        a competition's turn: one holder at a time takes its pending items in rounds
- ``intake``      what a round's deliveries come to: changes to judge, records of the rest
- ``decide``      reads what a round's changes need, judges them, remembers the outcome
- ``apply``       performs a Decision's actions as delta writes, checking the lease first
- ``repair``      a reconcile, made inside the competition's turn
- ``schedule``    changes handed on to a later round or another scope
- ``reads``       a competition's issues, read fresh from GitHub
- ``repoconfig``  ``.github/reactor.yml``, cached and re-read when pushed
- ``reconciler``  ``reactor reconcile`` and the sweep's per-repository pass
- ``sweep``       the periodic sweep, per installation and within a call budget
"""
